"""C5: a destabilisation happens when η̃·s̃ crosses 2(1−ηλ) (full-batch gradient descent).

Linearised GD with weight decay on the sphere, ``w⁺ = (1−ηλ)w − η∇L``, diverges along the top Hessian
direction once ``η̃·s̃ > 2(1−ηλ)`` (η̃ = η/ρ², s̃ = ρ²·λ_max the effective sharpness). One full-batch run measures s̃
every ``sharpness_every`` steps and at every step near the threshold (:class:`empirical.trainer.TrainConfig`).

What is compared, and why: the summary's η̃·s̃ at the last measurement before each event is reported, but it is
not the decision. Once the threshold is crossed the unstable mode grows and carries the weights off the valley
floor, where the measured s̃ itself grows by factors per step (256 digits, full batch: η̃·s̃ was 1.05 × the
threshold six steps before an event, 6.7 × the step before it, 2800 × at it). The linear theory predicts the
*crossing*: η̃·s̃ goes from below 2(1−ηλ) to above it (two measurements at most ``max_measure_gap`` steps apart)
and the event follows within the time the unstable mode needs to grow. While it grows, η̃ rises by (1−ηλ)⁻² per
step, so η̃·s̃ rises by about 4ηλ per step near 2, the mode's growth rate ≈ η̃s̃ − 2 rises linearly, and growing by
the factor A takes ``t_max = √(ln A / 2ηλ)`` steps; A is at most the float32 range from rounding to O(1)
(``ln A = ln(1/ε₃₂) ≈ 15.9``). An event is *on threshold* when such a crossing precedes it by at most ``t_max``
steps (since the previous event). Events that happen while η̃·s̃ has stayed above the threshold since the previous
jump (the recovery after a catapult, far from any minimum, where the linear criterion does not apply) are counted
as not on threshold. The trainer's summary lists, per event, the last measurement and the last crossing
(:func:`simulate.analysis.threshold_crossings`); this check only applies the two limits to them.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from paper_checks.common import CheckContext, Verdict

CLAIM = "C5"
TITLE = "A destabilisation happens when η̃·s̃ crosses 2(1−ηλ) (full-batch GD)"
HEADLINE = ("n_events",)

_RUN = {"model": "convnet_si", "width": 8, "data": "digits", "full_batch": True, "batch_size": 128, "eval_points": 0}
_DECISION = {
    # ln of the largest growth of the unstable mode: float32 rounding (ε ≈ 1.2e-7) to O(1)
    "log_amplification": -math.log(np.finfo(np.float32).eps),
    # the trainer measures at every step while η̃·s̃ is predicted within 0.8–1.5 × the threshold
    # (empirical.trainer.DENSE_BAND): a crossing is resolved to one step; 2 allows one skipped step
    "max_measure_gap": 2,
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
        "min_events": 1,
        **_DECISION,
    },
    "small": {
        "run": {**_RUN, "lr": 1.0, "wd": 0.03, "steps": 750, "train_subset": 128, "sharpness_every": 50},
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
            "steps": 3000,
            "train_subset": 5000,
            "sharpness_every": 50,
        },
        "min_events": 3,
        **_DECISION,
    },
}


def growth_steps(lr: float, wd: float, log_amplification: float) -> float:
    """``√(ln A / 2ηλ)``: steps for an unstable mode to grow by the factor A after η̃·s̃ crosses 2(1−ηλ)."""
    return math.sqrt(log_amplification / (2 * lr * wd)) if lr * wd > 0 else math.inf


def run(ctx: CheckContext, settings: dict) -> Verdict:
    """Train full-batch GD with sharpness measurements; compare η̃·s̃ before each destabilisation with 2(1−ηλ).

    An event is *on threshold* when η̃·s̃ crossed 2(1−ηλ) upwards (measurements at most ``max_measure_gap`` steps
    apart) since the previous event and at most :func:`growth_steps` steps before it. Passes when there are
    ≥ ``min_events`` events and at least ``min_fraction`` of them are on threshold.
    """
    spec = ctx.spec(**settings["run"])
    result = ctx.train(spec)
    events = [int(e) for e in result.summary["events"]]
    threshold = result.summary["elr_times_sharpness_threshold"]
    t_max = growth_steps(spec.lr, spec.wd, settings["log_amplification"])
    measured = [(r["step"], r["elr_times_sharpness"]) for r in result.records if "elr_times_sharpness" in r]
    per_event = []
    for found in result.summary["elr_times_sharpness_before_destabilization"]:
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
    fraction = n_on / len(events) if events else 0.0
    passed = len(events) >= settings["min_events"] and fraction >= settings["min_fraction"]
    lags = [e["steps_crossing_to_event"] for e in per_event if e["steps_crossing_to_event"] is not None]
    numbers = {
        "n_events": len(events),
        "n_on_threshold": n_on,
        "fraction_on_threshold": fraction,
        "n_without_crossing": sum(e["crossing_at"] is None for e in per_event),
        "threshold": threshold,
        "steps_crossing_to_event": lags,
        "last_ratios": [e["last_ratio"] for e in per_event],
        "events": per_event,
        "n_sharpness_measurements": len(measured),
    }
    tolerance = {
        "max_steps_crossing_to_event": t_max,
        "log_amplification": settings["log_amplification"],
        "max_measure_gap": settings["max_measure_gap"],
        "min_events": settings["min_events"],
        "min_fraction": settings["min_fraction"],
    }
    line = (
        f"{len(events)} destabilisations (need ≥ {settings['min_events']}); {n_on}/{len(events)} preceded by an upward "
        f"crossing of η̃·s̃ = 2(1−ηλ) within {t_max:.0f} steps (need ≥ {settings['min_fraction']:.0%}); crossing→event "
        f"{lags} steps; {numbers['n_without_crossing']} without a crossing since the previous event; η̃·s̃/2(1−ηλ) at "
        f"the last measurement: {', '.join(f'{r:.2f}' for r in numbers['last_ratios'] if r is not None)}"
    )
    figure = ctx.figure_path(CLAIM)
    _plot(figure, result, measured, threshold, events)
    return Verdict(CLAIM, TITLE, bool(passed), line, numbers, tolerance, figure=figure.name)


def _ratio(value: float | None, threshold: float) -> float | None:
    return None if value is None else value / threshold


def _plot(path, result, measured, threshold, events) -> None:
    fig = Figure(figsize=(7, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    if measured:
        steps, values = np.array(measured).T
        top.plot(steps, values, ".", ms=3, label="η̃·s̃ (measured)")
    top.axhline(threshold, color="k", ls="--", lw=0.8, label="2(1−ηλ)")
    bottom.semilogy(result.steps, result.series["loss"], lw=0.8, label="train loss")
    for ax in (top, bottom):
        for e in events:
            ax.axvline(e, color="r", lw=0.6, alpha=0.6)
    top.set_yscale("log")
    top.set_ylabel("η̃·s̃")
    top.set_title(f"{CLAIM}: η̃·s̃ before destabilisations (red: events)")
    top.legend()
    bottom.set_ylabel("loss")
    bottom.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
