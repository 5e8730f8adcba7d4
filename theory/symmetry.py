"""The exact symmetry (η, λ, ρ₀) → (cη, λ/c, √c·ρ₀) of SGD with weight decay on scale-invariant weights.

By induction over steps: if ``w'_t = √c·w_t`` and the momentum buffers satisfy ``b'_t = b_t/√c`` (true at
the start, where torch's buffer is empty), one step of torch's SGD keeps both relations, because
``∇L(√c·w) = ∇L(w)/√c``. The same minibatch sequence is assumed; each minibatch loss is scale-invariant.
"""

from __future__ import annotations

import sympy as sp

from bnwd.theory.sgd import EFFECTIVE_LR
from bnwd.theory.symbolic import (
    Statement,
    at,
    generic_si_loss,
    gradient,
    lr,
    momentum,
    norm,
    prove,
    scale,
    si_norm,
    wd,
    weights,
)

__all__ = ["STATEMENTS", "SYMMETRIC_CONFIG", "symmetry_invariants", "symmetry_step"]

SYMMETRIC_CONFIG = (scale * lr, wd / scale, sp.sqrt(scale) * si_norm)
"""(η', λ', ρ₀') = (cη, λ/c, √c·ρ₀)."""

_ASSUMES = "torch's SGD with momentum β ≥ 0 and coupled weight decay, same minibatches, c > 0"


def _torch_sgd_step(w: sp.Matrix, buffer: sp.Matrix, lr_, wd_):
    """``b⁺ = βb + ∇L(w) + λw``, ``w⁺ = w − ηb⁺`` (torch.optim.SGD, no dampening, no Nesterov)."""
    g = at(gradient(generic_si_loss(weights)), w)
    buffer_next = momentum * buffer + g + wd_ * w
    return w - lr_ * buffer_next, buffer_next


def symmetry_step() -> Statement:
    r"""One step maps ``(√c·w, b/√c)`` under ``(cη, λ/c)`` to ``(√c·w⁺, b⁺/√c)``."""

    def residual():
        buffer = sp.Matrix(sp.symbols("b1:4", real=True))
        lr_c, wd_c, _ = SYMMETRIC_CONFIG
        root = sp.sqrt(scale)
        w_next, b_next = _torch_sgd_step(weights, buffer, lr, wd)
        w_next_c, b_next_c = _torch_sgd_step(root * weights, buffer / root, lr_c, wd_c)
        return (w_next_c - root * w_next).col_join(b_next_c - b_next / root)

    return prove(
        "symmetry_step",
        "Rescaling (η, λ, w, b) → (cη, λ/c, √c·w, b/√c) commutes with an SGD step",
        r"(c\eta,\ \lambda/c,\ \sqrt{c}\,w_t,\ b_t/\sqrt{c}) \mapsto "
        r"(\sqrt{c}\,w_{t+1},\ b_{t+1}/\sqrt{c})",
        _ASSUMES,
        residual,
    )


def symmetry_invariants() -> Statement:
    r"""Under ``w' = √c·w``, ``(η', λ') = (cη, λ/c)``: ``η̃' = η̃``, ``η'λ' = ηλ``, ``w'/ρ' = w/ρ``."""

    def residual():
        lr_c, wd_c, _ = SYMMETRIC_CONFIG
        w_c = sp.sqrt(scale) * weights
        elr_of = EFFECTIVE_LR.subs
        return sp.Matrix(
            [
                elr_of({lr: lr_c, si_norm: norm(w_c)}) - elr_of(si_norm, norm(weights)),
                lr_c * wd_c - lr * wd,
            ]
        ).col_join(w_c / norm(w_c) - weights / norm(weights))

    return prove(
        "symmetry_invariants",
        "The symmetry leaves the effective learning rate, ηλ and every direction unchanged",
        r"\tilde\eta'_t = \tilde\eta_t,\quad \eta'\lambda' = \eta\lambda,\quad "
        r"\frac{w'_t}{\rho'_t} = \frac{w_t}{\rho_t}\quad \text{for all } t",
        _ASSUMES + "; follows from symmetry_step by induction",
        residual,
    )


STATEMENTS = (symmetry_step, symmetry_invariants)
