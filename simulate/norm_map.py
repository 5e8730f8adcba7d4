"""The lightweight simulator of norm evolution: the exact norm and ELR maps of :mod:`theory`, replayed.

Given the series of gradient norms of any run of SGD without momentum (simulated or measured), these maps
rebuild its ρ and η̃ series exactly, one step at a time and vectorised over configurations. With a model of
‖g̃_t‖ instead of a measured one they are a simulator of the norm dynamics on their own.
"""

from __future__ import annotations

import numpy as np

from bnwd import theory

__all__ = ["replay_elr", "replay_si_norm"]


def _replay(step, start, drive, lr, wd) -> np.ndarray:
    """Iterate ``x_{t+1} = step(x_t, drive_t, lr, wd)`` from ``start``; rows are configurations."""
    drive = np.atleast_2d(np.asarray(drive, dtype=np.float64))
    out = np.empty((drive.shape[0], drive.shape[1] + 1))
    out[:, 0] = start
    for t in range(drive.shape[1]):
        out[:, t + 1] = step(out[:, t], drive[:, t], lr, wd)
    return out


def replay_elr(eff_grad_norm, lr, wd, elr0) -> np.ndarray:
    """Effective learning rates from the exact map ``η̃_{t+1} = η̃_t/((1−ηλ)² + η̃_t²‖g̃_t‖²)``.

    Parameters
    ----------
    eff_grad_norm : array_like, shape (n_configs, n_steps) or (n_steps,)
        ‖g̃_t‖ = ρ_t‖∇L_B(w_t)‖ of the gradient used at each step.
    lr, wd : array_like, broadcast to (n_configs,)
        η > 0, λ ≥ 0 with ηλ < 1.
    elr0 : array_like, broadcast to (n_configs,)
        η̃_0 > 0.

    Returns
    -------
    ndarray, shape (n_configs, n_steps + 1)
        η̃_0 … η̃_{n_steps}.
    """
    lr, wd, elr0 = theory.validate(lr=lr, wd=wd, elr=elr0)
    return _replay(theory.elr_after_step, elr0, eff_grad_norm, lr, wd)


def replay_si_norm(grad_norm, lr, wd, si_norm0) -> np.ndarray:
    """Norms from the exact recursion ``ρ_{t+1} = √((1−ηλ)²ρ_t² + η²‖∇L_B(w_t)‖²)``.

    Parameters
    ----------
    grad_norm : array_like, shape (n_configs, n_steps) or (n_steps,)
        ‖∇L_B(w_t)‖ of the gradient used at each step.
    lr, wd : array_like, broadcast to (n_configs,)
        η > 0, λ ≥ 0 with ηλ < 1.
    si_norm0 : array_like, broadcast to (n_configs,)
        ρ_0 > 0.

    Returns
    -------
    ndarray, shape (n_configs, n_steps + 1)
        ρ_0 … ρ_{n_steps}.
    """
    lr, wd, si_norm0 = theory.validate(lr=lr, wd=wd, si_norm=si_norm0)
    return _replay(theory.si_norm_after_step, si_norm0, grad_norm, lr, wd)
