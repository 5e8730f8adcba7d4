"""C4: the period law, fed with measured thresholds, predicts the length of each period.

For a period from destabilisation ``e_k`` to ``e_{k+1}``, η̃ bottoms out at ``t_k`` after the jump; from there the
law says pure weight decay carries it to the threshold in ``period_length(η̃(t_k), η̃_c) = ln(η̃_c/η̃(t_k)) /
(−2 ln(1−ηλ))`` steps. With η̃_c the η̃ measured at ``e_{k+1}`` (the threshold the run actually met) the predicted
period is ``(t_k − e_k) + period_length(η̃(t_k), η̃(e_{k+1}))`` (:func:`simulate.analysis.predicted_periods`): what
it tests is that η̃ grows between jumps by weight decay alone, the gradient's share of the norm being negligible.

The runs are C3's (:func:`paper_checks.c3_frequency.measure_grid` with C3's run fields and grid), so after C3 this
check trains nothing; the transient period C3 drops is dropped here too.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from paper_checks import c3_frequency
from paper_checks.common import CheckContext, Verdict
from simulate.analysis import predicted_periods

CLAIM = "C4"
TITLE = "The period law with the measured η̃ after each jump and the measured threshold predicts each period"
HEADLINE = ("median_abs_relative_error",)

_TOLERANCES = {
    # Median over all periods of |predicted − measured| / measured. Events are placed to about ±1 step, and the
    # shortest periods of the small grid (ηλ = 0.03) are ~20 steps long: ±2 steps of the two ends are already 10 %.
    "median_error_tolerance": 0.15,
    "min_periods": 8,  # periods (over all runs) the verdict needs
}

SETTINGS = {
    scale: {"run": c3_frequency.SETTINGS[scale]["run"], "grid": c3_frequency.SETTINGS[scale]["grid"], **_TOLERANCES}
    for scale in ("tiny", "small", "paper")
}


def period_errors(elr: np.ndarray, row: dict, lr: float, wd: float, momentum: float) -> tuple[np.ndarray, np.ndarray]:
    """Measured and predicted length of each period of one run that C3 counts (the transient dropped).

    Parameters
    ----------
    elr : ndarray, shape (n_steps,)
        η̃ per step.
    row : dict
        The run's summary (``events``; ``periods`` after the transient rule).
    lr, wd, momentum : float
        η, λ, β.

    Returns
    -------
    measured, predicted : ndarray, shape (len(row["periods"]),)
        ``e_{k+1} − e_k`` and the law's period with threshold ``η̃(e_{k+1})``.
    """
    events = np.asarray(row["events"], dtype=int)
    n = len(row["periods"])
    if n == 0:
        return np.zeros(0), np.zeros(0)
    predicted = predicted_periods(elr, events, lr, wd, momentum, elr[events[1:]])[-n:]
    return np.diff(events)[-n:].astype(float), predicted


def run(ctx: CheckContext, settings: dict) -> Verdict:
    """Predict every measured period of C3's runs and compare (see the module)."""
    per_run, measured_all, predicted_all, labels = [], [], [], []
    for run in c3_frequency.measure_grid(ctx, settings):
        spec = run.spec
        measured, predicted = period_errors(run.series["elr"], run.summary, spec.lr, spec.wd, spec.momentum)
        errors = (predicted - measured) / measured
        per_run.append(
            {
                "lr": spec.lr,
                "wd": spec.wd,
                "lr_wd": spec.lr * spec.wd,
                "period_measured": measured.tolist(),
                "period_predicted": predicted.tolist(),
                "relative_error": errors.tolist(),
                "median_abs_relative_error": float(np.median(np.abs(errors))) if errors.size else None,
            }
        )
        measured_all.append(measured)
        predicted_all.append(predicted)
        labels.append(f"η={spec.lr:g}, λ={spec.wd:.3g}")
    measured, predicted = np.concatenate(measured_all), np.concatenate(predicted_all)
    errors = (predicted - measured) / measured
    median = float(np.median(np.abs(errors))) if errors.size else float("nan")
    enough = errors.size >= settings["min_periods"]
    passed = enough and median <= settings["median_error_tolerance"]

    _plot(measured_all, predicted_all, labels, ctx.figure_path(CLAIM))
    summary = (
        f"median |relative error| of the predicted period {median:.1%} over {errors.size} periods (need ≤ "
        f"{settings['median_error_tolerance']:.0%} over ≥ {settings['min_periods']}); mean signed error "
        f"{np.mean(errors) if errors.size else float('nan'):+.1%}"
    )
    numbers = {
        "n_periods": int(errors.size),
        "median_abs_relative_error": median,
        "mean_relative_error": float(np.mean(errors)) if errors.size else None,
        "max_abs_relative_error": float(np.max(np.abs(errors))) if errors.size else None,
        "runs": per_run,
    }
    return Verdict(
        claim=CLAIM,
        title=TITLE,
        passed=bool(passed),
        summary=summary,
        numbers=numbers,
        tolerance={key: settings[key] for key in _TOLERANCES},
        figure=ctx.figure_path(CLAIM).name,
    )


def _plot(measured: list[np.ndarray], predicted: list[np.ndarray], labels: list[str], path) -> None:
    """Predicted against measured period, one colour per run, with the line y = x."""
    fig = Figure(figsize=(5.2, 4.6), dpi=120)
    ax = fig.subplots()
    for i, (x, y, label) in enumerate(zip(measured, predicted, labels, strict=True)):
        ax.plot(x, y, "o", color=f"C{i % 10}", ms=4, alpha=0.8, label=label)
    values = np.concatenate([*measured, *predicted])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size:
        span = np.array([values.min() / 1.3, values.max() * 1.3])
        ax.plot(span, span, "-", color="0.4", lw=1, label="y = x")
        ax.set(xscale="log", yscale="log")
    else:
        ax.text(0.5, 0.5, "no period measured", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="measured period (steps)", ylabel="predicted period (steps)", title="Period law per period")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
