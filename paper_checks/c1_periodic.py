"""C1: training a scale-invariant net with SGD and weight decay at a constant learning rate is periodic.

A ConvNetSI with SGD, constant η and no augmentation destabilises again and again; between destabilisations the
SI weight norm ρ shrinks (weight decay dominates the vanishing gradients), at each one it jumps up and the loss
spikes. Measured on one run:

- the number of destabilisations (``summary["n_destabilizations"]``, detected on ρ by the trainer);
- the shrink fraction: over every period, from the highest ρ after its destabilisation to the next one, the
  fraction of steps at which ρ decreases (pooled over periods);
- the ρ jump: median over events ``e`` of ``max ρ[e+1 … e+W] / ρ[e]``;
- the loss spike: median over events of ``max loss[e+1 … e+W] / median loss[e−W … e]``,

with ``W = jump_window`` steps. The claim holds when each reaches its threshold in the settings.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from bnwd.paper_checks.common import CheckContext, PlannedRun, Run, Verdict
from bnwd.paper_checks.figures import four_panels

__all__ = [
    "CLAIM",
    "HEADLINE",
    "SETTINGS",
    "TITLE",
    "loss_ratio",
    "periodic_numbers",
    "periodic_verdict",
    "plan",
    "run",
]

CLAIM = "C1"
TITLE = "SGD with BN + weight decay at constant lr is periodic: ρ shrinks between destabilisations, jumps at them"
HEADLINE = ("n_destabilizations", "period")

_TOLERANCES = {"min_destabilizations": 3, "min_shrink_fraction": 0.8, "min_rho_jump": 1.2, "min_loss_spike": 10.0}
SETTINGS = {
    "tiny": {
        "run": {"model": "convnet_si", "width": 4, "data": "digits", "train_subset": 256, "batch_size": 64,
                "lr": 1.0, "wd": 0.03, "steps": 200, "eval_points": 4},
        "jump_window": 10,
        **_TOLERANCES,
        "min_destabilizations": 2,
    },
    "small": {
        "run": {"model": "convnet_si", "width": 8, "data": "digits", "lr": 1.0, "wd": 0.01, "steps": 3000},
        "jump_window": 20,
        **_TOLERANCES,
    },
    "paper": {
        "run": {"model": "convnet_si", "width": 32, "data": "cifar10", "lr": 0.03, "wd": 1e-3, "epochs": 1001},
        "jump_window": 1173,  # 3 epochs of 391 steps
        **_TOLERANCES,
    },
}  # fmt: skip


def loss_ratio(run: Run) -> float:
    """How far training brought the loss down: the median minibatch loss of the last tenth of ``run`` over the
    median of its first tenth."""
    loss = run.series["loss"]
    tenth = max(len(loss) // 10, 1)
    return float(np.median(loss[-tenth:]) / np.median(loss[:tenth]))


def periodic_numbers(run: Run, jump_window: int) -> dict:
    """The measured signs of periodic behaviour of ``run`` (see the module docstring for each definition).

    Parameters
    ----------
    run : Run
        A finished run; its ``summary["events"]`` index its per-step series.
    jump_window : int
        ``W``: steps after an event in which the jump and the spike are looked for, and before it for the loss
        level.

    Returns
    -------
    dict
        ``n_destabilizations``, ``shrink_fraction`` (NaN with fewer than 2 events), ``rho_jump`` and
        ``loss_spike`` (medians over events; NaN without events), ``period`` (mean, from the summary).
    """
    events = np.asarray(run.summary["events"], dtype=int)
    rho, loss = run.series["si_norm"], run.series["loss"]
    shrinking, counted = 0, 0
    for start, end in itertools.pairwise(events):
        peak = start + int(np.argmax(rho[start : end + 1]))
        falls = np.diff(rho[peak : end + 1])
        shrinking, counted = shrinking + int((falls < 0).sum()), counted + falls.size
    after = [e for e in events if e + 1 < rho.size]
    jumps = [np.max(rho[e + 1 : e + 1 + jump_window]) / rho[e] for e in after]
    spikes = [
        np.max(loss[e + 1 : e + 1 + jump_window]) / np.median(loss[max(e - jump_window, 0) : e + 1]) for e in after
    ]
    return {
        "n_destabilizations": int(run.summary["n_destabilizations"]),
        "shrink_fraction": shrinking / counted if counted else math.nan,
        "rho_jump": float(np.median(jumps)) if jumps else math.nan,
        "loss_spike": float(np.median(spikes)) if spikes else math.nan,
        "period": run.summary["period_measured"],
    }


def periodic_verdict(numbers: dict, settings: dict) -> tuple[bool, str, dict]:
    """Compare :func:`periodic_numbers` with the thresholds of ``settings``; return (passed, summary, tolerance).

    Each of ``min_destabilizations``, ``min_shrink_fraction``, ``min_rho_jump``, ``min_loss_spike`` that
    ``settings`` holds is a lower bound on its number; one that it leaves out is reported but not judged.
    """
    tolerance = {k: settings[k] for k in _TOLERANCES if k in settings}
    checks = {
        "n_destabilizations": ("min_destabilizations", "{} destabilisations (need ≥ {})"),
        "shrink_fraction": ("min_shrink_fraction", "ρ shrinks in {:.0%} of inter-event steps (need ≥ {:.0%})"),
        "rho_jump": ("min_rho_jump", "median ρ jump ×{:.2f} (need ≥ ×{})"),
        "loss_spike": ("min_loss_spike", "median loss spike ×{:.1f} (need ≥ ×{})"),
    }
    passed, parts = True, []
    for name, (limit, text) in checks.items():
        if limit not in tolerance:
            continue
        value = numbers[name]
        if not math.isfinite(value):
            passed = False
            parts.append(f"{name} unmeasured (need ≥ {tolerance[limit]})")
            continue
        passed &= value >= tolerance[limit]
        parts.append(text.format(value, tolerance[limit]))
    return bool(passed), "; ".join(parts), tolerance


def plan(settings: dict) -> list[PlannedRun]:
    """The one run of the check."""
    return [PlannedRun("the periodic run", settings["run"])]


def run(ctx: CheckContext, settings: dict) -> Verdict:
    """Train the run of ``settings["run"]`` and judge its periodicity (see the module docstring)."""
    trained = ctx.train(ctx.spec(**settings["run"]))
    numbers = periodic_numbers(trained, settings["jump_window"])
    passed, summary, tolerance = periodic_verdict(numbers, settings)
    figure = four_panels([trained], ctx.figure_path(CLAIM))
    return Verdict(CLAIM, TITLE, passed, summary, numbers, tolerance, figure=figure.name)
