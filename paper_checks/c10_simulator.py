"""C10: the reduced simulator predicts a run's mean period and regime at a product ηλ it was not calibrated on.

The reduced model (:mod:`simulate.reduced`: one unstable direction, the flat rest, gradient noise, torch's SGD) has
one free parameter against a net, its noise σ/s̃ (only η̃·s̃ and σ/s̃ enter its dynamics). For each of C3's runs
(:func:`paper_checks.c3_frequency.measure_grid`, so nothing is trained again), σ is calibrated on the runs at the
*other* products ηλ — the one whose predicted mean periods are nearest theirs in log — and the model then predicts
the held-out run's mean period and regime (:func:`simulate.reduced.held_out_periods`). Nothing of the held-out run
but its (η, λ, β) enters its prediction.

Beside it: the baseline ``T·ηλ = const`` fitted on the same other runs (the period law's scaling), and a control that
must do worse if the model's dependence on ηλ carries information, its period at the ηλ farthest from the run's
own. The verdict passes when the median |relative error| of the held-out mean periods is within the tolerance,
below the baseline's and above neither the control's, and every predicted regime is the measured one.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from bnwd.analysis.periods import score_predictions
from bnwd.paper_checks import c3_frequency
from bnwd.paper_checks.common import CheckContext, PlannedRun, Verdict
from bnwd.simulate.reduced import NOISE_GRID, held_out_rows

__all__ = ["CLAIM", "HEADLINE", "SETTINGS", "TITLE", "plan", "run"]

CLAIM = "C10"
TITLE = "The reduced simulator, calibrated at other ηλ, predicts a run's mean period and regime (held out)"
HEADLINE = ("median_abs_relative_error",)

_TOLERANCES = {
    "period_tolerance": 0.2,  # median |predicted − measured|/measured over the held-out runs
    "min_periods": 4,  # counted periods a run needs for its mean period to count
}
SETTINGS = {
    scale: {"run": c3_frequency.SETTINGS[scale]["run"], "grid": c3_frequency.SETTINGS[scale]["grid"], "dim": 64}
    | _TOLERANCES
    for scale in ("tiny", "small", "paper")
}


def plan(settings: dict) -> list[PlannedRun]:
    """C3's grid (trained once, shared)."""
    return c3_frequency.plan(settings)


def run(ctx: CheckContext, settings: dict) -> Verdict:
    """Hold out each product ηλ of C3's grid in turn and predict its runs (see the module)."""
    runs = c3_frequency.measure_grid(ctx, settings)
    rows = [r.summary for r in runs]
    lr = np.array([r["lr"] for r in rows])
    wd = np.array([r["wd"] for r in rows])
    found = held_out_rows(rows, min_periods=settings["min_periods"], dim=settings["dim"])
    measured = found["measured"]
    counted = np.isfinite(measured)
    tolerance = {key: settings[key] for key in _TOLERANCES}
    distinct = np.unique(np.round(np.log(lr * wd), 9)[counted]).size
    if distinct < 2:
        _plot(lr * wd, measured, None, ctx.figure_path(CLAIM))
        return Verdict(
            claim=CLAIM,
            title=TITLE,
            passed=False,
            summary=f"{counted.sum()} runs with ≥ {settings['min_periods']} periods at {distinct} products ηλ: "
            "nothing to hold out",
            numbers={"n_runs": int(counted.sum()), "n_products": int(distinct)},
            tolerance=tolerance,
            figure=ctx.figure_path(CLAIM).name,
        )
    scored = counted & np.isfinite(found["predicted"])
    scores = score_predictions(
        found["predicted"][scored],
        {"constant_period_times_lr_wd": found["baseline"][scored]},
        {"farthest_lr_wd": found["control"][scored]},
        measured[scored],
    )
    errors = scores.errors
    regimes_match = [found["regime"][i] == rows[i]["regime"] for i in range(len(rows))]
    at_edge = bool(np.any(np.isin(found["noise"][scored], [min(NOISE_GRID), max(NOISE_GRID)])))
    mine = errors["prediction"]
    passed = bool(
        scored.sum() == counted.sum()
        and mine <= settings["period_tolerance"]
        and scores.beats_baselines
        and scores.controls_fail
        and all(regimes_match)
    )
    _plot(lr * wd, measured, found, ctx.figure_path(CLAIM))
    summary = (
        f"held-out mean periods: median |error| {mine:.0%} over {scored.sum()} runs (need ≤ "
        f"{settings['period_tolerance']:.0%} and below the baseline T·ηλ = const, "
        f"{errors['constant_period_times_lr_wd']:.0%}; control at the farthest ηλ "
        f"{errors['farthest_lr_wd']:.0%}); regimes "
        f"{sum(regimes_match)}/{len(rows)} as measured; calibrated σ/s̃ "
        + ", ".join(f"{n / 2:.0e}" for n in found["noise"][scored])
        + (" (the grid's edge: the fit asks for less noise than the grid has)" if at_edge else "")
    )
    numbers = {
        "median_abs_relative_error": mine,
        "errors": errors,
        "n_runs": int(scored.sum()),
        "noise_at_grid_edge": at_edge,
        "runs": [
            {
                "lr": float(lr[i]),
                "wd": float(wd[i]),
                "lr_wd": float(lr[i] * wd[i]),
                "period_measured": float(measured[i]),
                "period_predicted": float(found["predicted"][i]),
                "period_baseline": float(found["baseline"][i]),
                "period_control": float(found["control"][i]),
                "noise_calibrated": float(found["noise"][i]),
                "regime_measured": rows[i]["regime"],
                "regime_predicted": str(found["regime"][i]),
            }
            for i in range(len(rows))
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


def _plot(lr_wd: np.ndarray, measured: np.ndarray, found: dict | None, path) -> None:
    """Mean period against ηλ: measured, held-out prediction, the baseline T·ηλ = const."""
    fig = Figure(figsize=(5.4, 4.2), dpi=120)
    ax = fig.subplots()
    ax.plot(lr_wd, measured, "o", color="C0", label="measured")
    if found is not None:
        ax.plot(lr_wd, found["predicted"], "s", mfc="none", color="C3", label="reduced model, held out")
        ax.plot(lr_wd, found["baseline"], "x", color="0.4", label="T·ηλ = const, held out")
    if np.any(np.isfinite(measured) & (measured > 0)):
        ax.set(xscale="log", yscale="log")
    else:
        ax.text(0.5, 0.5, "no run with enough periods", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="ηλ", ylabel="mean period (steps)", title="Held-out mean period")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
