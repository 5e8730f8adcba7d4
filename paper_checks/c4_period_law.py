"""C4: each period predicted from its first quarter, out of sample, against baselines and controls.

A prediction of period k (destabilisation ``e_k`` to ``e_{k+1}``) is made at its horizon, a quarter of the mean past
period after ``e_k``, from what is known then (:mod:`analysis.periods`): η̃ after the jump and the theory's complete
period ``(b_k − e_k) + period_length(η̃_s, η̃_c)`` to a threshold η̃_c that does not look at the period's end:

* **theory** (decides the verdict): ``η̃_c = θ(η, λ, β)/s̃`` with s̃ measured by the horizon (a run of the grid
  repeated with ``sharpness_every``: measuring s̃ leaves the training bit-identical, so its periods are the same);
* **law to the past threshold** (reported): ``η̃_c`` the median η̃ at the destabilisations before, on every run
  of C3's grid.

Each is scored by the median |predicted − measured|/measured over the periods, beside the baselines *previous
period* and *mean of the other periods* (which sees the future), and the controls that must do worse if the
period's own input carries information: that input (s̃, or η̃ after the jump) averaged over the periods, or shuffled
between them. The verdict passes when the theory's prediction beats both baselines and both controls do worse.

What the old C4 compared is kept as a decomposition, not a prediction: the law fed the η̃ measured after the jump
and *at the period's own end* gives, by the exact ELR map, the share of the period that weight decay alone explains
(``pure_decay_share``; the rest is the gradients' share of the norm's growth).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
from matplotlib.figure import Figure

from bnwd.analysis.periods import (
    LABELS,
    THRESHOLDS,
    HorizonPredictions,
    PredictionScores,
    Threshold,
    horizon_inputs,
    horizon_predictions,
    periods_in_hindsight,
    score_predictions,
)
from bnwd.paper_checks import c3_frequency
from bnwd.paper_checks.common import CheckContext, PlannedRun, Verdict

__all__ = ["CLAIM", "HEADLINE", "SETTINGS", "TITLE", "plan", "pure_decay_share", "run"]

CLAIM = "C4"
TITLE = "Each period, predicted from its first quarter (η̃ after the jump, s̃ then), beats the baselines"
HEADLINE = ("median_abs_relative_error",)

_TOLERANCES = {
    "min_periods": 8,  # scored periods (over all runs) the verdict needs
}
SETTINGS = {
    scale: {
        "run": c3_frequency.SETTINGS[scale]["run"],
        "grid": c3_frequency.SETTINGS[scale]["grid"],
        "sharpness_run": c3_frequency.SETTINGS[scale]["grid"][index],
        "sharpness_every": every,
        **_TOLERANCES,
    }
    for scale, index, every in (("tiny", 0, 5), ("small", 1, 10), ("paper", 1, 50))
}


def pure_decay_share(elr: np.ndarray, row: dict, lr: float, wd: float, momentum: float) -> np.ndarray:
    """Per counted period, the period law fed η̃ after the jump and η̃ at the period's own end, over the measured
    period: the share of the period weight decay alone explains (an identity of the ELR map, not a prediction).

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
    ndarray, shape (len(row["periods"]),)
    """
    events = np.asarray(row["events"], dtype=int)
    n = len(row["periods"])
    if n == 0:
        return np.zeros(0)
    law = periods_in_hindsight(elr, events, lr, wd, momentum, elr[events[1:]])[-n:]
    return law / np.diff(events)[-n:]


def _scored(run, lr: float, wd: float, momentum: float, threshold: Threshold) -> HorizonPredictions:
    """:func:`analysis.periods.horizon_predictions` of one run's periods at ``threshold``."""
    measured = [r for r in run.records if "eff_sharpness" in r]
    inputs = horizon_inputs(
        run.steps,
        run.series["elr"],
        run.summary["events"],
        [r["step"] for r in measured],
        [r["eff_sharpness"] for r in measured],
    )
    return horizon_predictions(inputs, lr=lr, wd=wd, momentum=momentum, threshold=threshold)


def _pooled(found: list[HorizonPredictions]) -> tuple[PredictionScores, int]:
    """:func:`analysis.periods.score_predictions` over the scored periods of all runs together, and their number."""

    def joined(part: str) -> dict:
        names = getattr(found[0], part)
        return {name: np.concatenate([getattr(f, part)[name][f.scored] for f in found]) for name in names}

    scores = score_predictions(
        np.concatenate([f.predicted[f.scored] for f in found]),
        joined("baselines"),
        joined("controls"),
        np.concatenate([f.measured[f.scored] for f in found]),
    )
    return scores, int(sum(f.n_scored for f in found))


def plan(settings: dict) -> list[PlannedRun]:
    """C3's grid, and one of its runs again with s̃ measured."""
    values = settings["run"] | settings["sharpness_run"] | {"sharpness_every": settings["sharpness_every"]}
    return [*c3_frequency.plan(settings), PlannedRun("a grid run with s̃ measured", values)]


def run(ctx: CheckContext, settings: dict) -> Verdict:
    """Predict every period of C3's runs from its first quarter, and one run's again with s̃ (see the module)."""
    grid = c3_frequency.measure_grid(ctx, settings)
    spec = ctx.spec(**settings["run"], **settings["sharpness_run"], sharpness_every=settings["sharpness_every"])
    with_sharpness = ctx.train(spec)
    theory_found = [_scored(with_sharpness, spec.lr, spec.wd, spec.momentum, "sharpness")]
    past_found = [_scored(r, r.spec.lr, r.spec.wd, r.spec.momentum, "past_events") for r in grid]
    (theory_pooled, n_theory), (past_pooled, n_past) = _pooled(theory_found), _pooled(past_found)
    shares = [pure_decay_share(r.series["elr"], r.summary, r.spec.lr, r.spec.wd, r.spec.momentum) for r in grid]
    share = np.concatenate(shares) if shares else np.zeros(0)
    enough = n_theory >= settings["min_periods"]
    passed = enough and theory_pooled.beats_baselines and theory_pooled.controls_fail

    _plot(theory_found[0], past_found, [f"η={r.spec.lr:g}, λ={r.spec.wd:.3g}" for r in grid], ctx.figure_path(CLAIM))
    errors, past_errors = theory_pooled.errors, past_pooled.errors
    summary = (
        f"theory (s̃ at a quarter of the period): median |error| {errors['prediction']:.0%} over "
        f"{n_theory} periods; baselines and controls "
        + ", ".join(f"{LABELS[k]} {v:.0%}" for k, v in errors.items() if k != "prediction")
        + f" (need to beat both baselines, both controls worse, ≥ {settings['min_periods']} periods); law to the past "
        f"threshold {past_errors['prediction']:.0%} (baselines "
        f"{past_errors['previous_period']:.0%}, "
        f"{past_errors['mean_of_others']:.0%}); weight decay alone explains "
        f"{np.median(share) if share.size else float('nan'):.0%} of a period (median, fed its end: an identity)"
    )
    sharpness = theory_found[0]
    numbers = {
        "median_abs_relative_error": errors["prediction"],
        "n_periods": n_theory,
        "theory": {"fed": THRESHOLDS["sharpness"], **asdict(theory_pooled), "n_scored": n_theory},
        "sharpness_spread": sharpness.sharpness_spread,
        "n_missing_sharpness": sharpness.n_missing_sharpness,
        "n_ended_early": sharpness.n_ended_early + sum(f.n_ended_early for f in past_found),
        "law_to_past_threshold": {"fed": THRESHOLDS["past_events"], **asdict(past_pooled), "n_scored": n_past},
        "pure_decay_share_median": float(np.median(share)) if share.size else None,
        "runs": [
            {
                "lr": r.spec.lr,
                "wd": r.spec.wd,
                "lr_wd": r.spec.lr * r.spec.wd,
                "errors_law_to_past_threshold": f.scores.errors,
                "pure_decay_share": s.tolist(),
            }
            for r, f, s in zip(grid, past_found, shares, strict=True)
        ],
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


def _plot(theory_found: HorizonPredictions, past_found: list[HorizonPredictions], labels: list[str], path) -> None:
    """Predicted against measured period: the theory's on the s̃ run, the law to the past threshold on each run."""
    fig = Figure(figsize=(9.6, 4.4), dpi=120)
    axes = fig.subplots(1, 2)
    panels = (
        (axes[0], [theory_found], ["s̃ run"], "theory: θ/s̃ at a quarter of the period"),
        (axes[1], past_found, labels, "law to the threshold met before"),
    )
    for ax, found, names, title in panels:
        values = []
        for i, (f, label) in enumerate(zip(found, names, strict=True)):
            x, y = f.measured[f.scored], f.predicted[f.scored]
            ax.plot(x, y, "o", color=f"C{i % 10}", ms=4, alpha=0.8, label=label)
            values.extend([*x, *y])
        values = np.asarray(values, dtype=float)
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            span = np.array([values.min() / 1.3, values.max() * 1.3])
            ax.plot(span, span, "-", color="0.4", lw=1, label="y = x")
            ax.set(xscale="log", yscale="log")
        else:
            ax.text(0.5, 0.5, "no period scored", ha="center", va="center", transform=ax.transAxes)
        ax.set(xlabel="measured period (steps)", ylabel="predicted period (steps)", title=title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
