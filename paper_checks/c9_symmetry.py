"""C9: the symmetry (η, λ, ρ₀) → (cη, λ/c, √c·ρ₀) leaves every direction w/ρ of a real net unchanged, exactly.

Two nets with the same seed are trained in float64 on the same minibatches: the second one with its SI weights
multiplied by √c at initialisation and with ``lr·c``, ``wd/c`` (:func:`theory.symmetric_config`); the head and the
other non-SI parameters are left as they are. By :mod:`theory.symmetry` the SI weights then stay ``w'_t = √c·w_t``
at every step, so the directions ``ŵ_t = w_t/ρ_t`` agree up to rounding. A control with a non-symmetric map (λ not
divided by c) must drift apart.

``RunSpec`` has no field for rescaling the initial SI weights (no other claim needs one), so the nets are built
with :func:`empirical.runs.build_trainer` and their SI parameters (``trainer.si_params``) are multiplied by √c in
place before training. The directions are recorded by the trainer's ``after_step``, so training is the trainer's own.

BatchNorm's ``eps`` makes the loss only approximately scale-invariant (``x/√(var + eps)`` is not 0-homogeneous),
which breaks the law at the level of ``eps/var`` per step; the check sets every BatchNorm's ``eps`` to the smallest
normal float (as :func:`empirical.scale_invariance.find_si_groups` does) unless ``settings["bn_eps"]`` keeps it.

The scale is c = 4, so that √c = 2 and the scaled runs round exactly like the reference: the law can then be held
to rounding for hundreds of steps. With a c whose root is inexact the law still holds, but rounding differences of
1e-16 are amplified by the chaotic dynamics at every destabilisation until the runs differ at order one, so a
tolerance would have to follow that amplification rather than the law.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from bnwd import theory
from bnwd.empirical.runs import build_trainer, run_id
from bnwd.empirical.scale_invariance import exact_batchnorm_
from bnwd.paper_checks.common import CheckContext, PlannedRun, Verdict

__all__ = ["CLAIM", "DETECTOR_BAND", "SETTINGS", "TITLE", "plan", "run"]

CLAIM = "C9"
TITLE = "The symmetry (η, λ, ρ₀) → (cη, λ/c, √c·ρ₀) leaves every direction w/ρ of a real net unchanged"
DETECTOR_BAND = "not evaluated: the check detects no destabilisation"

_RUN = {"model": "convnet_si", "width": 8, "data": "digits", "batch_size": 128, "dtype": "float64", "eval_points": 0}

SETTINGS = {
    "tiny": {
        "run": {**_RUN, "width": 4, "lr": 0.5, "wd": 0.01, "steps": 30, "train_subset": 256, "batch_size": 64},
        "scale": 4.0,
        "compare_every": 1,
        "bn_eps": "tiny",
        "max_direction_gap": 1e-8,
        "min_control_gap": 1e-4,
    },
    "small": {
        "run": {**_RUN, "lr": 1.0, "wd": 0.01, "steps": 200},
        "scale": 4.0,
        "compare_every": 1,
        "bn_eps": "tiny",
        # with √c = 2 every scaled quantity is exact in binary floating point: the runs agree to rounding of the
        # final division w/ρ (1e-16); 1e-8 leaves room for library kernels that round differently at other scales
        "max_direction_gap": 1e-8,
        # a wrong map changes ηλ by the factor c: the directions separate at the O(ηλ·t) level, far above rounding
        "min_control_gap": 1e-4,
    },
    "paper": {
        "run": {**_RUN, "width": 32, "data": "cifar10", "lr": 1.0, "wd": 1e-3, "steps": 2000},
        "scale": 4.0,
        "compare_every": 10,
        "bn_eps": "tiny",
        "max_direction_gap": 1e-8,
        "min_control_gap": 1e-4,
    },
}


def _directions(ctx: CheckContext, spec, si_scale: float, settings: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Train ``spec`` with its initial SI weights multiplied by ``si_scale``; return the recorded steps and the SI
    directions ``ŵ_t = w_t/ρ_t`` after those steps, shape (n_recorded, n_si_weights), float64. A replay that reads
    every step starts from the beginning each time, so it writes no checkpoints."""
    spec = spec.replace(checkpoint_every=0)
    trainer = build_trainer(spec, ctx.out / "c9" / f"{run_id(spec)}-{name}")
    if settings["bn_eps"] == "tiny":
        exact_batchnorm_(trainer.model)
    with torch.no_grad():
        torch._foreach_mul_(trainer.si_params, si_scale)
    steps, directions = [], []

    def record(step: int) -> None:
        # called after the update of ``step``: the weights are those after it
        if (step + 1) % settings["compare_every"] == 0:
            w = torch.cat([p.detach().reshape(-1) for p in trainer.si_params]).to(torch.float64)
            steps.append(step + 1)
            directions.append((w / w.norm()).cpu().numpy())

    trainer.run(progress=ctx.progress, after_step=record)
    return np.array(steps), np.array(directions)


def plan(settings: dict) -> list[PlannedRun]:
    """The reference, its image under the symmetry and the control (see :func:`run`)."""
    return [PlannedRun(name, values) for name, (values, _) in _variants(settings).items()]


def _variants(settings: dict) -> dict[str, tuple[dict, float]]:
    """``{name: (RunSpec fields, factor of the initial SI weights)}`` of the reference ``(η, λ, ρ₀)``, its symmetric
    image ``(cη, λ/c, √c·ρ₀)`` and the control ``(cη, λ, √c·ρ₀)``."""
    base, c = settings["run"], settings["scale"]
    lr_c, wd_c, root_c = (float(v) for v in theory.symmetric_config(base["lr"], base["wd"], 1.0, c))
    return {
        "reference": (base, 1.0),
        "symmetric": (base | {"lr": lr_c, "wd": wd_c}, root_c),
        "control": (base | {"lr": lr_c}, root_c),
    }


def run(ctx: CheckContext, settings: dict) -> Verdict:
    """Train the reference net, its symmetric image and a non-symmetric control; compare their directions.

    The verdict passes when ``max_t ‖ŵ_t − ŵ'_t‖ ≤ max_direction_gap`` for the symmetric map and
    ``max_t ‖ŵ_t − ŵ^ctl_t‖ ≥ min_control_gap`` for the control ``(cη, λ, √c·ρ₀)``.
    """
    variants = {name: (ctx.spec(**values), si_scale) for name, (values, si_scale) in _variants(settings).items()}
    (base, _), (symmetric, root_c) = variants["reference"], variants["symmetric"]
    c, lr_c, wd_c = settings["scale"], symmetric.lr, symmetric.wd
    steps, directions = {}, {}
    for name, (spec, si_scale) in variants.items():
        steps[name], directions[name] = _directions(ctx, spec, si_scale, settings, name)
    gaps = {
        name: np.linalg.norm(directions[name] - directions["reference"], axis=1) for name in ("symmetric", "control")
    }
    sym_gap, control_gap = float(gaps["symmetric"].max()), float(gaps["control"].max())
    passed = sym_gap <= settings["max_direction_gap"] and control_gap >= settings["min_control_gap"]
    numbers = {
        "scale": c,
        "steps_compared": len(steps["reference"]),
        "max_direction_gap_symmetric": sym_gap,
        "max_direction_gap_control": control_gap,
        "final_direction_gap_control": float(gaps["control"][-1]),
        "config_reference": {"lr": base.lr, "wd": base.wd},
        "config_symmetric": {"lr": lr_c, "wd": wd_c, "si_init_scale": root_c},
        "config_control": {"lr": lr_c, "wd": base.wd, "si_init_scale": root_c},
        "bn_eps": settings["bn_eps"],
    }
    tolerance = {"max_direction_gap": settings["max_direction_gap"], "min_control_gap": settings["min_control_gap"]}
    summary = (
        f"max_t ‖ŵ−ŵ'‖ = {sym_gap:.1e} over {len(steps['reference'])} steps for (cη, λ/c, √c·ρ₀), c = {c:g} "
        f"(need ≤ {settings['max_direction_gap']:.0e}); control (cη, λ, √c·ρ₀): {control_gap:.1e} "
        f"(need ≥ {settings['min_control_gap']:.0e})"
    )
    figure = ctx.figure_path(CLAIM)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    floor = np.finfo(float).tiny
    ax.semilogy(steps["symmetric"], np.maximum(gaps["symmetric"], floor), label="symmetric (cη, λ/c, √c·ρ₀)")
    ax.semilogy(steps["control"], np.maximum(gaps["control"], floor), label="control (cη, λ, √c·ρ₀)")
    ax.axhline(settings["max_direction_gap"], color="k", ls="--", lw=0.8, label="tolerance")
    ax.set_xlabel("step")
    ax.set_ylabel("‖ŵ − ŵ'‖")
    ax.set_title(f"{CLAIM}: directions under the symmetry, c = {c:g}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(figure, dpi=110)
    return Verdict(CLAIM, TITLE, passed, summary, numbers, tolerance, figure=figure.name)
