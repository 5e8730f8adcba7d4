"""C10: the catapult simulator, fed the constants of one run, predicts the mean period at every other ηλ.

For each of C3's runs (:func:`paper_checks.c3_frequency.measure_grid`, so nothing is trained again) with at least
:data:`analysis.catapult.MIN_CATAPULTS` catapults, its constants (:func:`analysis.catapult.catapult_constants`: η̃ at
a destabilisation, the far gradient, the landing angle, the spike's length, the quiet ‖g̃‖'s relaxation) feed the
catapult simulator (:mod:`simulate.catapult`), which predicts the mean period of every run at another product ηλ
(:func:`simulate.catapult.one_run_calibrations`). Nothing of a predicted run but its (η, λ, β) enters its prediction.

Beside it, scored on the same runs: the baseline ``T·ηλ = const`` through the same calibration run, and the
two-parameter power law ``a·(ηλ)^(−b)`` fitted on every run but the predicted one (it needs two runs where the
simulator needs one); the control, which must do worse, feeds the simulator constants shuffled in from the other
runs. The verdict passes when the median over calibration runs of the held-out median |relative error| is within
the tolerance and below the constant product's, the control's is above it, and the predicted spread of the periods
is within a factor of the measured one.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from bnwd.analysis.catapult import MIN_CATAPULTS
from bnwd.paper_checks import c3_frequency
from bnwd.paper_checks.common import CheckContext, PlannedRun, Verdict
from bnwd.simulate.catapult import calibrate_on_runs, measured_periods

__all__ = ["CLAIM", "HEADLINE", "SETTINGS", "TITLE", "plan", "run"]

CLAIM = "C10"
TITLE = "The catapult simulator, fed one run's constants, predicts the mean period at every other ηλ"
HEADLINE = ("median_abs_relative_error",)

_TOLERANCES = {
    "period_tolerance": 0.1,  # median over calibration runs of the held-out median |predicted − measured|/measured
    "spread_factor": 1.5,  # predicted over measured spread of the periods, within this factor (median over runs)
    "min_periods": 4,  # counted periods a run needs for its mean period to count
}
SETTINGS = {
    scale: {
        "run": c3_frequency.SETTINGS[scale]["run"],
        "grid": c3_frequency.SETTINGS[scale]["grid"],
        "seeds": 8,
        "simulated_budgets": 4,
    }
    | _TOLERANCES
    for scale in ("tiny", "small", "paper")
}


def plan(settings: dict) -> list[PlannedRun]:
    """C3's grid (trained once, shared)."""
    return c3_frequency.plan(settings)


def run(ctx: CheckContext, settings: dict) -> Verdict:
    """Calibrate on each run in turn and predict the others (see the module)."""
    runs = c3_frequency.measure_grid(ctx, settings)
    rows = [r.summary for r in runs]
    lr = np.array([r["lr_effective"] for r in rows])
    wd = np.array([r["wd"] for r in rows])
    measured = measured_periods(rows, settings["min_periods"])
    calibrations = calibrate_on_runs(
        [(r.steps, r.series, r.summary) for r in runs],
        min_periods=settings["min_periods"],
        budgets=settings["simulated_budgets"],
        seeds=settings["seeds"],
    )
    calibrating = {c.calibration for c in calibrations}
    tolerance = {key: settings[key] for key in _TOLERANCES}
    scored = [c for c in calibrations if c.held_out.any()]
    _plot(lr * wd, measured, scored, ctx.figure_path(CLAIM))
    if not scored:
        return Verdict(
            claim=CLAIM,
            title=TITLE,
            passed=False,
            summary=f"{len(calibrations)} runs with ≥ {MIN_CATAPULTS} catapults and ≥ {settings['min_periods']} "
            f"periods to calibrate on, {int(np.isfinite(measured).sum())} with a measured period; none with a run to "
            "predict at another ηλ or β: nothing to score",
            numbers={"n_calibration_runs": len(calibrations), "n_runs": int(np.isfinite(measured).sum())},
            tolerance=tolerance,
            figure=ctx.figure_path(CLAIM).name,
        )
    names = ("prediction", "constant_period_times_lr_wd", "shuffled_constants")
    errors = {name: float(np.median([c.scores.errors.get(name, np.nan) for c in scored])) for name in names}
    errors["power_law"] = float(np.median([c.power_law_error for c in scored]))
    measured_std = np.array([r["period_std"] for r in rows])
    spread_ratio = float(
        np.nanmedian(np.concatenate([c.predicted_std[c.held_out] / measured_std[c.held_out] for c in scored]))
    )
    mine = errors["prediction"]
    spread_ok = 1 / settings["spread_factor"] <= spread_ratio <= settings["spread_factor"]
    passed = bool(
        mine <= settings["period_tolerance"]
        and mine < errors["constant_period_times_lr_wd"]
        and errors["shuffled_constants"] > mine
        and spread_ok
    )
    summary = (
        f"one-run calibration over {len(scored)} calibration runs: held-out mean periods missed by a median "
        f"{mine:.0%} (need ≤ {settings['period_tolerance']:.0%} and below T·ηλ = const through the same run, "
        f"{errors['constant_period_times_lr_wd']:.0%}); the power law through the other runs "
        + (f"{errors['power_law']:.0%}" if np.isfinite(errors["power_law"]) else "— (fewer than three products)")
        + f"; the control with shuffled constants {errors['shuffled_constants']:.0%} (must be above); "
        f"predicted/measured spread of the periods {spread_ratio:.2f} (need within ×{settings['spread_factor']:g})"
    )
    numbers = {
        "median_abs_relative_error": mine,
        "errors": errors,
        "spread_ratio": spread_ratio,
        "n_calibration_runs": len(scored),
        "n_runs": int(np.isfinite(measured).sum()),  # runs with a measured mean period
        "runs": [
            {
                "lr": float(lr[i]),
                "wd": float(wd[i]),
                "lr_wd": float(lr[i] * wd[i]),
                "period_measured": float(measured[i]),
                "period_std_measured": float(measured_std[i]),
                "calibrates": i in calibrating,
            }
            for i in range(len(rows))
        ],
        "calibrations": [
            {
                "calibration_run": c.calibration,  # index into runs
                "calibration_lr_wd": float(lr[c.calibration] * wd[c.calibration]),
                "errors": c.scores.errors,
                "period_predicted": c.predicted.tolist(),
                "period_std_predicted": c.predicted_std.tolist(),
                "period_constant_product": c.constant_product.tolist(),
                "period_shuffled_constants": c.shuffled.tolist(),
                "held_out": c.held_out.tolist(),
            }
            for c in scored
        ],
    }
    return Verdict(
        claim=CLAIM,
        title=TITLE,
        passed=passed,
        summary=summary,
        numbers=numbers,
        tolerance=tolerance,
        figure=ctx.figure_path(CLAIM).name,
    )


def _plot(lr_wd: np.ndarray, measured: np.ndarray, calibrations: list, path) -> None:
    """Mean period against ηλ: measured, and the simulator's prediction from each calibration run."""
    fig = Figure(figsize=(5.4, 4.2), dpi=120)
    ax = fig.subplots()
    ax.plot(lr_wd, measured, "o", color="C0", label="measured", zorder=3)
    order = np.argsort(lr_wd)
    for k, c in enumerate(calibrations):
        label = "simulator, one calibration run (★) each" if k == 0 else None
        ax.plot(lr_wd[order], c.predicted[order], "-", color="C3", alpha=0.5, label=label)
        ax.plot(lr_wd[c.calibration], measured[c.calibration], "*", color="C3", ms=9)
    if np.any(np.isfinite(measured) & (measured > 0)):
        ax.set(xscale="log", yscale="log")
    else:
        ax.text(0.5, 0.5, "no run with enough periods", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="ηλ", ylabel="mean period (steps)", title="Mean period from one run's constants")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
