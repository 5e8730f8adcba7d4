"""C7: the two older views are special cases of the periodic behaviour, at the ends of the ηλ range.

Three runs of one net that differ in (η, λ):

- tiny ηλ: the weight decay is too slow to bring ρ down to instability within the budget, so training simply
  converges: no destabilisation, regime ``"convergent"``, and the loss falls (final loss below
  ``max_converged_loss_ratio`` times the initial one) and stays down;
- moderate ηλ: regime ``"periodic"``;
- large ηλ: the norm sits at the equilibrium of gradient growth and weight decay: regime ``"equilibrium"`` (no
  periods), with ``η̃‖g̃‖ ≈ √(ηλ(2−ηλ))`` (η̃ = :func:`theory.equilibrium_elr` times ‖g̃‖) and the angular
  update per step ≈ :func:`theory.equilibrium_angular_update` ``= arccos(1−ηλ)`` (≈ √(2ηλ)).

The regimes are the runs' ``summary["regime"]`` (:func:`analysis.regimes.classify`, with the numbers that
decided each in the verdict). The equilibrium
numbers are measured over the last third of the large-ηλ run as root mean squares: the equilibrium balances the
mean square of the per-step update, ``E[η̃²‖g̃‖²] = ηλ(2−ηλ)`` (from ρ⁺² = (1−ηλ)²ρ² + η²‖∇L‖² at constant ρ),
so with SGD's minibatch noise the RMS, not a single step, is the theory's quantity; the medians are reported
too. Each ratio to theory must lie within ``equilibrium_tolerance`` of 1.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from bnwd import theory
from bnwd.paper_checks.c1_periodic import loss_ratio
from bnwd.paper_checks.common import CheckContext, PlannedRun, Run, Verdict
from bnwd.paper_checks.figures import draw_phase, draw_rho, run_label, save_figure

__all__ = ["CLAIM", "EXPECTED", "SETTINGS", "TITLE", "equilibrium_numbers", "plan", "run"]

CLAIM = "C7"
TITLE = "Convergence (tiny ηλ) and equilibrium η̃‖g̃‖ ≈ √(2ηλ) (large ηλ) are the ends of the periodic regime"

EXPECTED = {"small_lr_wd": "convergent", "moderate_lr_wd": "periodic", "large_lr_wd": "equilibrium"}
"""The regime each of the three runs must be in."""

_TOLERANCES = {"equilibrium_tolerance": 0.25, "max_converged_loss_ratio": 0.1}
SETTINGS = {
    "tiny": {
        "base": {"model": "convnet_si", "width": 4, "data": "digits", "train_subset": 256, "batch_size": 64,
                 "steps": 200, "eval_points": 4},
        "runs": {"small_lr_wd": {"lr": 0.1, "wd": 1e-3}, "moderate_lr_wd": {"lr": 1.0, "wd": 0.03},
                 "large_lr_wd": {"lr": 3.0, "wd": 0.1}},
        **_TOLERANCES,
    },
    "small": {
        "base": {"model": "convnet_si", "width": 8, "data": "digits", "steps": 2500},
        "runs": {"small_lr_wd": {"lr": 0.1, "wd": 1e-3}, "moderate_lr_wd": {"lr": 1.0, "wd": 0.01},
                 "large_lr_wd": {"lr": 1.0, "wd": 0.1}},
        **_TOLERANCES,
    },
    "paper": {
        "base": {"model": "convnet_si", "width": 32, "data": "cifar10", "epochs": 1001},
        "runs": {"small_lr_wd": {"lr": 0.001, "wd": 1e-3}, "moderate_lr_wd": {"lr": 0.03, "wd": 1e-3},
                 "large_lr_wd": {"lr": 1.0, "wd": 1e-3}},
        **_TOLERANCES,
    },
}  # fmt: skip


def equilibrium_numbers(run: Run) -> dict:
    """η̃‖g̃‖ and the angular update over the last third of ``run``, against the theory's equilibrium.

    Returns
    -------
    dict
        ``elr_times_grad_rms`` / ``_median`` and its ratio to ``√(ηλ(2−ηλ))`` (``elr_times_grad_ratio``);
        ``angular_update_rms`` / ``_median`` and its ratio to :func:`theory.equilibrium_angular_update`
        (``angular_update_ratio``). Ratios use the RMS.
    """
    spec = run.spec
    tail = slice(2 * len(run.steps) // 3, None)
    product = (run.series["elr"] * run.series["eff_grad_norm"])[tail]
    angle = run.series["angular_update"][tail]
    # η̃*‖g̃‖ at any ‖g̃‖ is the line's constant √(ηλ(2−ηλ)); evaluated at ‖g̃‖ = 1.
    product_theory = float(theory.equilibrium_elr(1.0, spec.lr, spec.wd))
    angle_theory = float(theory.equilibrium_angular_update(spec.lr, spec.wd, spec.momentum))
    product_rms, angle_rms = (float(np.sqrt(np.mean(x**2))) for x in (product, angle))
    return {
        "elr_times_grad_rms": product_rms,
        "elr_times_grad_median": float(np.median(product)),
        "elr_times_grad_theory": product_theory,
        "elr_times_grad_ratio": product_rms / product_theory,
        "angular_update_rms": angle_rms,
        "angular_update_median": float(np.median(angle)),
        "angular_update_theory": angle_theory,
        "angular_update_ratio": angle_rms / angle_theory,
    }


def plan(settings: dict) -> list[PlannedRun]:
    """One run per regime."""
    return [
        PlannedRun(f"expected {EXPECTED[name]}", settings["base"] | values) for name, values in settings["runs"].items()
    ]


def run(ctx: CheckContext, settings: dict) -> Verdict:
    """Train the three runs, read their regimes and measure the equilibrium of the large-ηλ one."""
    trained = ctx.train_many([ctx.spec(**settings["base"], **values) for values in settings["runs"].values()])
    runs = dict(zip(settings["runs"], trained, strict=True))
    numbers: dict = {
        name: {
            "lr_wd": r.spec.lr * r.spec.wd,
            "regime": r.summary["regime"],
            "expected_regime": EXPECTED[name],
            "n_destabilizations": int(r.summary["n_destabilizations"]),
        }
        for name, r in runs.items()
    }
    numbers["small_lr_wd"]["final_over_initial_loss"] = loss_ratio(runs["small_lr_wd"])
    numbers["large_lr_wd"].update(equilibrium_numbers(runs["large_lr_wd"]))
    tolerance = {k: settings[k] for k in _TOLERANCES}

    regimes_ok = all(numbers[name]["regime"] == expected for name, expected in EXPECTED.items())
    small = numbers["small_lr_wd"]
    converged_ok = (
        small["n_destabilizations"] == 0 and small["final_over_initial_loss"] <= tolerance["max_converged_loss_ratio"]
    )
    large = numbers["large_lr_wd"]
    within = tolerance["equilibrium_tolerance"]
    equilibrium_ok = all(abs(large[k] - 1) <= within for k in ("elr_times_grad_ratio", "angular_update_ratio"))
    passed = regimes_ok and converged_ok and equilibrium_ok
    regimes = ", ".join(
        f"ηλ={numbers[name]['lr_wd']:.0e}: {numbers[name]['regime']} (need {expected})"
        for name, expected in EXPECTED.items()
    )
    summary = (
        f"{regimes}; tiny ηλ: {small['n_destabilizations']} destabilisations (need 0), loss "
        f"×{small['final_over_initial_loss']:.2g} of initial (need ≤ {tolerance['max_converged_loss_ratio']}); "
        f"large ηλ: RMS η̃‖g̃‖/√(ηλ(2−ηλ)) = "
        f"{large['elr_times_grad_ratio']:.2f}, angular update/arccos(1−ηλ) = {large['angular_update_ratio']:.2f} "
        f"(need within {within:.0%} of 1)"
    )

    ordered = [runs[name] for name in EXPECTED]
    labels = [f"{run_label(r)} (ηλ={r.spec.lr * r.spec.wd:.0e})" for r in ordered]
    fig = Figure(figsize=(12, 4.5), dpi=110)
    phase_ax, rho_ax = fig.subplots(1, 2)
    draw_phase(phase_ax, ordered, labels)
    draw_rho(rho_ax, ordered, labels)
    path = save_figure(fig, ctx.figure_path(CLAIM))
    return Verdict(CLAIM, TITLE, bool(passed), summary, numbers, tolerance, figure=path.name)
