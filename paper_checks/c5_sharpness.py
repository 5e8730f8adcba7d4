"""C5: a destabilisation happens when η̃·s̃ crosses 2(1−ηλ) (full-batch gradient descent).

Linearised GD with weight decay on the sphere, ``w⁺ = (1−ηλ)w − η∇L``, diverges along the top Hessian
direction once ``η̃·s̃ > 2(1−ηλ)`` (η̃ = η/ρ², s̃ = ρ²·λ_max the effective sharpness). One full-batch run measures s̃
at least every ``sharpness_every`` steps and locates each upward crossing of the threshold to one step
(:mod:`empirical.tracking`).

What is compared, and why: the summary's η̃·s̃ at the last measurement before each event is reported, but it is
not the decision. Once the threshold is crossed the unstable mode grows and carries the weights off the valley
floor, where the measured s̃ itself grows by factors per step (the summary's per-event table shows it on any run
with ``sharpness_every``). The linear theory predicts the
*crossing*: η̃·s̃ goes from below 2(1−ηλ) to above it (two measurements at most ``max_measure_gap`` steps apart)
and the event follows within the time the unstable mode needs to grow. While it grows, η̃ rises by (1−ηλ)⁻² per
step, so η̃·s̃ rises by about 4ηλ per step near 2, the mode's growth rate ≈ η̃s̃ − 2 rises linearly, and growing by
the factor A takes ``t_max = √(ln A / 2ηλ)`` steps; A is at most the float32 range from rounding to O(1)
(``ln A = ln(1/ε₃₂) ≈ 15.9``). An event is *on threshold* when such a crossing precedes it by at most ``t_max``
steps (since the previous event). Events that happen while η̃·s̃ has stayed above the threshold since the previous
jump (the recovery after a catapult, far from any minimum, where the linear criterion does not apply) are counted
as not on threshold. The trainer's summary lists, per event, the last measurement and the last crossing
(:func:`analysis.summary.threshold_crossings`); this check only applies the two limits to them.

Minibatch SGD, reported beside the decision and not part of it: a second run measures the top eigenvalue of each
step's *batch* loss (the same tracking) and the batch sharpness ``E_B[g_BᵀH_B g_B/‖g_B‖²]``
(:func:`empirical.curvature.batch_sharpness`), which for plain SGD without BatchNorm is reported to settle at
``2/η`` (arXiv 2412.20553). Whether its effective form times η̃ sits at 2(1−ηλ) here is the hypothesis; the check
states where it stands (median ratio to the threshold over the run, the ratio before each event) and applies the
same crossing test to both.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from bnwd import theory
from bnwd.analysis.summary import threshold_crossings
from bnwd.paper_checks.common import CheckContext, PlannedRun, Verdict

__all__ = ["CLAIM", "HEADLINE", "SETTINGS", "TITLE", "growth_steps", "plan", "run", "threshold_test"]

CLAIM = "C5"
TITLE = "A destabilisation happens when η̃·s̃ crosses 2(1−ηλ) (full-batch GD)"
HEADLINE = ("n_events",)

_RUN = {"model": "convnet_si", "width": 8, "data": "digits", "full_batch": True, "batch_size": 128, "eval_points": 0}
_MINIBATCH = {
    **_RUN,
    "full_batch": False,
    "lr": 1.0,
    "wd": 0.03,
    "train_subset": 512,
    "batch_size": 64,
    "sharpness_every": 50,
    "batch_sharpness_every": 25,
}
_DECISION = {
    # ln of the largest growth of the unstable mode: float32 rounding (ε ≈ 1.2e-7) to O(1)
    "log_amplification": -math.log(np.finfo(np.float32).eps),
    # the trainer locates the latest upward crossing before each event to adjacent steps (empirical.tracking)
    "max_measure_gap": 1,
    "min_fraction": 0.75,
}

SETTINGS = {
    "tiny": {
        "run": {
            **_RUN,
            "width": 4,
            "lr": 1.0,
            "wd": 0.03,
            "steps": 110,
            "train_subset": 64,
            "batch_size": 64,
            "sharpness_every": 40,
        },
        "minibatch_run": {**_MINIBATCH, "width": 2, "steps": 60, "train_subset": 128, "batch_size": 32},
        "min_events": 1,
        **_DECISION,
    },
    "small": {
        "run": {**_RUN, "lr": 1.0, "wd": 0.03, "steps": 750, "train_subset": 128, "sharpness_every": 50},
        "minibatch_run": {**_MINIBATCH, "steps": 600},
        "min_events": 3,
        **_DECISION,
    },
    "paper": {
        "run": {
            **_RUN,
            "width": 32,
            "data": "cifar10",
            "lr": 1.0,
            "wd": 1e-3,
            "steps": 4000,  # ~4.9 periods by the paper's mean periods (bnwd check --plan), 3 needed
            "train_subset": 5000,
            "sharpness_every": 50,
        },
        "minibatch_run": {**_MINIBATCH, "width": 32, "data": "cifar10", "wd": 1e-3, "steps": 3000},
        "min_events": 3,
        **_DECISION,
    },
}


def growth_steps(lr: float, wd: float, log_amplification: float) -> float:
    """``√(ln A / 2ηλ)``: steps for an unstable mode to grow by the factor A after η̃·s̃ crosses 2(1−ηλ)."""
    return math.sqrt(log_amplification / (2 * lr * wd)) if lr * wd > 0 else math.inf


def plan(settings: dict) -> list[PlannedRun]:
    """The full-batch run with s̃ measured, and the minibatch run beside it."""
    return [
        PlannedRun("full-batch GD, s̃ measured", settings["run"]),
        PlannedRun("minibatch SGD, s̃ and batch sharpness", settings["minibatch_run"]),
    ]


def run(ctx: CheckContext, settings: dict) -> Verdict:
    """Train full-batch GD with sharpness measurements; compare η̃·s̃ before each destabilisation with 2(1−ηλ).

    An event is *on threshold* when η̃·s̃ crossed 2(1−ηλ) upwards (measurements at most ``max_measure_gap`` steps
    apart) since the previous event and at most :func:`growth_steps` steps before it. Passes when there are
    ≥ ``min_events`` events and at least ``min_fraction`` of them are on threshold. The minibatch run's numbers
    are reported under ``minibatch`` and do not enter the decision.
    """
    spec = ctx.spec(**settings["run"])
    result = ctx.train(spec)
    found = threshold_test(result, "elr_times_sharpness", settings)
    events, per_event, threshold = found["events"], found["per_event"], found["threshold"]
    passed = len(events) >= settings["min_events"] and found["fraction"] >= settings["min_fraction"]
    minibatch = ctx.train(ctx.spec(**settings["minibatch_run"]))
    batch = {
        name: threshold_test(minibatch, key, settings)
        for name, key in (("lambda_max", "elr_times_sharpness"), ("batch_sharpness", "elr_times_batch_sharpness"))
    }
    numbers = {
        "n_events": len(events),
        "n_on_threshold": found["n_on"],
        "fraction_on_threshold": found["fraction"],
        "n_without_crossing": sum(e["crossing_at"] is None for e in per_event),
        "threshold": threshold,
        "steps_crossing_to_event": found["lags"],
        "last_ratios": [e["last_ratio"] for e in per_event],
        "events": per_event,
        "n_sharpness_measurements": len(found["measured"]),
        "minibatch": {name: {k: v for k, v in b.items() if k != "measured"} for name, b in batch.items()},
    }
    tolerance = {
        "max_steps_crossing_to_event": found["t_max"],
        "log_amplification": settings["log_amplification"],
        "max_measure_gap": settings["max_measure_gap"],
        "min_events": settings["min_events"],
        "min_fraction": settings["min_fraction"],
    }
    line = (
        f"{len(events)} destabilisations (need ≥ {settings['min_events']}); {found['n_on']}/{len(events)} preceded by "
        f"an upward crossing of η̃·s̃ = 2(1−ηλ) within {found['t_max']:.0f} steps (need ≥ "
        f"{settings['min_fraction']:.0%}); crossing→event {found['lags']} steps; {numbers['n_without_crossing']} "
        f"without a crossing since the previous event; η̃·s̃/2(1−ηλ) at the last measurement: "
        f"{', '.join(f'{r:.2f}' for r in numbers['last_ratios'] if r is not None)}. Minibatch SGD (reported, not "
        f"decided): {len(batch['lambda_max']['events'])} events; η̃·s̃/2(1−ηλ) median "
        f"{_text(batch['lambda_max']['median_ratio'])} with λ_max of the step's batch, "
        f"{_text(batch['batch_sharpness']['median_ratio'])} with the batch sharpness; events on threshold "
        f"{batch['lambda_max']['n_on']} and {batch['batch_sharpness']['n_on']} of them"
    )
    figure = ctx.figure_path(CLAIM)
    _plot(figure, result, minibatch, found, batch)
    return Verdict(CLAIM, TITLE, bool(passed), line, numbers, tolerance, figure=figure.name)


def threshold_test(result, key: str, settings: dict) -> dict:
    """The crossing test on one run's measurements of ``key`` (η̃ times an effective sharpness) against 2(1−ηλ).

    Returns
    -------
    dict
        ``events``, ``threshold``, ``t_max`` (:func:`growth_steps`), ``measured`` (list of (step, value)),
        ``per_event`` (:func:`analysis.summary.threshold_crossings` with the ratios to the threshold and
        ``on_threshold``), ``n_on``, ``fraction`` (0 without events), ``lags`` (crossing → event, steps) and
        ``median_ratio`` (the median over all measurements of value / threshold; None without any).
    """
    spec = result.spec
    events = [int(e) for e in result.summary["events"]]
    threshold = float(theory.stability_threshold(spec.lr, spec.wd, spec.momentum))
    t_max = growth_steps(spec.lr, spec.wd, settings["log_amplification"])
    measured = [(r["step"], r[key]) for r in result.records if math.isfinite(r.get(key, math.nan))]
    steps, values = zip(*measured, strict=True) if measured else ((), ())
    per_event = []
    for found in threshold_crossings(steps, values, events, threshold):
        crossing = found["crossing_at"]
        resolved = crossing is not None and crossing - found["below_at"] <= settings["max_measure_gap"]
        per_event.append(
            {
                **found,
                "last_ratio": _ratio(found["last"], threshold),
                "below_ratio": _ratio(found["below"], threshold),
                "crossing_ratio": _ratio(found["crossing"], threshold),
                "on_threshold": bool(resolved and found["steps_crossing_to_event"] <= t_max),
            }
        )
    n_on = sum(e["on_threshold"] for e in per_event)
    return {
        "events": events,
        "threshold": threshold,
        "t_max": t_max,
        "measured": measured,
        "per_event": per_event,
        "n_on": n_on,
        "fraction": n_on / len(events) if events else 0.0,
        "lags": [e["steps_crossing_to_event"] for e in per_event if e["steps_crossing_to_event"] is not None],
        "median_ratio": float(np.median(values) / threshold) if measured else None,
    }


def _text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _ratio(value: float | None, threshold: float) -> float | None:
    return None if value is None else value / threshold


def _plot(path, result, minibatch, found, batch) -> None:
    """Left: the full-batch run (η̃·s̃ and the loss, events in red); right: the minibatch run's two measures."""
    fig = Figure(figsize=(12, 6))
    axes = fig.subplots(2, 2, sharex="col")
    columns = (
        (result, found, [("η̃·s̃", found)], "full-batch GD (decided; red: events)"),
        (
            minibatch,
            batch["lambda_max"],
            [
                ("η̃·ρ²λ_max(H_B), the step's batch", batch["lambda_max"]),
                ("η̃·ρ²·batch sharpness", batch["batch_sharpness"]),
            ],
            "minibatch SGD (reported)",
        ),
    )
    for (upper, lower), (run, test, measures, title) in zip(axes.T, columns, strict=True):
        for label, measure in measures:
            if measure["measured"]:
                steps, values = np.array(measure["measured"]).T
                upper.plot(steps, values, ".", ms=3, label=label)
        upper.axhline(test["threshold"], color="k", ls="--", lw=0.8, label="2(1−ηλ)")
        lower.semilogy(run.steps, run.series["loss"], lw=0.8, label="train loss")
        for ax in (upper, lower):
            for e in test["events"]:
                ax.axvline(e, color="r", lw=0.6, alpha=0.6)
        upper.set(yscale="symlog", title=f"{CLAIM}: {title}", ylabel="η̃ × sharpness")
        upper.legend(fontsize=8)
        lower.set(xlabel="step", ylabel="loss")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
