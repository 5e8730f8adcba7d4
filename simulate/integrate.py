"""Batched integrators: torch's SGD (coupled weight decay, heavy-ball momentum) on a toy scale-invariant model.

All configurations advance together as rows of one ``(n_configs, dim)`` array. Per step the update is exactly
``torch.optim.SGD``'s: ``d = ∇L_B(w) + λw``, ``b ← βb + d`` (the empty first buffer is ``b = d``, i.e. ``b₀ = 0``),
``w ← w − ηb``; in ``fixed_norm`` mode every row is then projected back to its initial norm ρ₀, so η̃ = η/ρ₀² is
constant (the fixed-ELR mode is fixed_norm with ``lr = elr·ρ₀²``: :func:`lr_for_fixed_elr`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from tqdm.auto import tqdm

from bnwd import theory
from bnwd.analysis.schema import SERIES
from bnwd.simulate.models import row_norms

__all__ = ["MODES", "Mode", "Trajectory", "initial_weights", "integrate", "lr_for_fixed_elr"]

Mode = Literal["free", "fixed_norm"]
MODES: tuple[Mode, ...] = get_args(Mode)


@dataclass(frozen=True)
class Trajectory:
    """The recorded run of a batch of configurations.

    Attributes
    ----------
    lr, wd, momentum : ndarray, shape (n_configs,)
        Hyper-parameters per configuration.
    steps : ndarray of int, shape (n_records,)
        Step index of each record.
    series : dict[str, ndarray]
        One ``(n_configs, n_records)`` array per name in :data:`SERIES`; NaN after a divergence.
    diverged_at : ndarray of int, shape (n_configs,)
        First step with a non-finite weight or loss, −1 if none.
    final_weights : ndarray, shape (n_configs, dim)
        Weights after the last step.
    """

    lr: np.ndarray
    wd: np.ndarray
    momentum: np.ndarray
    steps: np.ndarray
    series: dict
    diverged_at: np.ndarray
    final_weights: np.ndarray


def lr_for_fixed_elr(elr, si_norm0):
    """Learning rate that gives effective learning rate ``elr`` on the sphere of radius ρ₀ (η = η̃ρ₀²)."""
    elr, si_norm0 = theory.validate(elr=elr, si_norm=si_norm0)
    return elr * si_norm0**2


def initial_weights(n_configs: int, dim: int, si_norm0, seed: int) -> np.ndarray:
    """Seeded Gaussian directions scaled to norms ``si_norm0``: ``(n_configs, dim)``, row i the same for any n."""
    (si_norm0,) = theory.validate(si_norm=si_norm0)
    w = np.random.default_rng(seed).standard_normal((n_configs, dim))
    return w / row_norms(w)[:, None] * np.broadcast_to(si_norm0, (n_configs,))[:, None]


def _angle(w: np.ndarray, w_next: np.ndarray, rho: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Angle between rows of ``w`` (norms ``rho``) and ``w_next``, accurate for tiny angles.

    arctan2 of the parts of ``w_next`` orthogonal and parallel to ``w``; the orthogonal part is formed explicitly
    (in ``scratch``, shaped like ``w``), not as a difference of squared norms, which would cancel catastrophically
    when the step is nearly radial. :class:`empirical.monitor.Monitor` forms the same on the device, in torch.
    """
    along = np.einsum("nd,nd->n", w, w_next) / rho**2
    orthogonal = np.subtract(w_next, np.multiply(w, along[:, None], out=scratch), out=scratch)
    return np.arctan2(row_norms(orthogonal), along * rho)


def _on_finite(fn, *arrays):
    """``fn(*arrays)`` where every input is finite, NaN elsewhere (diverged configurations)."""
    arrays = np.broadcast_arrays(*arrays)
    ok = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    out = np.full(arrays[0].shape, np.nan)
    out[ok] = fn(*(a[ok] for a in arrays))
    return out


def integrate(
    model,
    lr,
    wd,
    *,
    steps: int,
    momentum=0.0,
    mode: Mode = "free",
    si_norm0=1.0,
    seed: int = 0,
    record_every: int = 1,
    progress: bool = False,
) -> Trajectory:
    """Run torch-style SGD with weight decay on ``model`` for all configurations at once.

    Parameters
    ----------
    model
        A toy model from :mod:`simulate.models` (``dim``, ``loss_and_grad``).
    lr, wd, momentum : array_like, broadcast to (n_configs,)
        η > 0, λ ≥ 0 with ηλ < 1, β in [0, 1).
    steps : int
        Number of optimiser steps, ≥ 1.
    mode : {"free", "fixed_norm"}
        ``fixed_norm`` projects every row back to its initial norm after each step.
    si_norm0 : array_like
        Initial norms ρ₀ > 0, broadcast to (n_configs,).
    seed : int
        Seeds the initial directions (shared by all configs with the same index) and the minibatch noise.
    record_every : int
        Record one step in this many (the last step is always recorded).
    progress : bool
        Show a progress bar over steps.

    Returns
    -------
    Trajectory
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    if int(steps) != steps or steps < 1 or int(record_every) != record_every or record_every < 1:
        raise ValueError(f"steps and record_every must be integers >= 1; got {steps!r}, {record_every!r}")
    lr, wd, momentum, si_norm0 = np.broadcast_arrays(
        *theory.validate(lr=lr, wd=wd, momentum=momentum, si_norm=si_norm0)
    )
    lr, wd, momentum, si_norm0 = (np.array(a, ndmin=1, dtype=np.float64) for a in (lr, wd, momentum, si_norm0))
    n = lr.size
    rng = np.random.default_rng([seed, 1])
    w = initial_weights(n, model.dim, si_norm0, seed)
    buffer, scratch = np.zeros_like(w), np.empty_like(w)
    record_steps = np.unique(np.r_[np.arange(0, steps, record_every), steps - 1])
    recorded = {name: np.empty((n, record_steps.size)) for name in ("loss", "si_norm", "grad_norm", "angular_update")}
    diverged_at = np.full(n, -1)
    rho = row_norms(w)
    column = 0
    with np.errstate(all="ignore"):
        for step in tqdm(range(steps), disable=not progress, desc="simulate", unit="step", leave=False):
            loss, grad = model.loss_and_grad(w, rng)
            # In place: every temporary of this size costs a fresh allocation per step.
            if momentum.any():
                buffer *= momentum[:, None]
                buffer += grad
            else:
                buffer[...] = grad
            buffer += np.multiply(w, wd[:, None], out=scratch)
            w_next = w - np.multiply(buffer, lr[:, None], out=scratch)
            rho_next = row_norms(w_next)  # non-finite iff some weight is
            if mode == "fixed_norm":
                w_next *= (si_norm0 / rho_next)[:, None]
                rho_next = np.where(np.isfinite(rho_next), si_norm0, rho_next)
            diverged_at[~(np.isfinite(loss) & np.isfinite(rho_next)) & (diverged_at < 0)] = step
            if step == record_steps[column]:
                recorded["loss"][:, column] = loss
                recorded["si_norm"][:, column] = rho
                recorded["grad_norm"][:, column] = row_norms(grad)
                recorded["angular_update"][:, column] = _angle(w, w_next, rho, scratch)
                column += 1
            w, rho = w_next, rho_next
    for values in recorded.values():
        values[(diverged_at[:, None] >= 0) & (record_steps[None, :] >= diverged_at[:, None])] = np.nan
    series = {
        **recorded,
        "elr": _on_finite(theory.effective_lr, lr[:, None], recorded["si_norm"]),
        "eff_grad_norm": _on_finite(theory.effective_grad_norm, recorded["grad_norm"], recorded["si_norm"]),
    }
    return Trajectory(lr, wd, momentum, record_steps, {k: series[k] for k in SERIES}, diverged_at, w)
