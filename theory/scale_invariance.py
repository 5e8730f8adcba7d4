"""Identities of a scale-invariant loss ``L(cw) = L(w)``, proved for the generic ``L(w) = f(w/‖w‖)``.

Each function takes the loss as an argument (default: the generic scale-invariant one), so that the same
proof applied to a loss that is *not* scale-invariant visibly fails.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from bnwd.theory.symbolic import (
    Statement,
    at,
    dot,
    generic_si_loss,
    gradient,
    hessian,
    norm,
    prove,
    scale,
    weights,
)

__all__ = [
    "STATEMENTS",
    "Loss",
    "effective_gradient",
    "gradient_orthogonality",
    "gradient_scaling",
    "hessian_euler",
    "hessian_scaling",
    "loss_invariance",
]

Loss = Callable[[sp.Matrix], sp.Expr]

_SI = "L(w) = f(w/‖w‖) with f arbitrary and twice differentiable, w ≠ 0, c > 0"


def loss_invariance(loss: Loss = generic_si_loss) -> Statement:
    r"""``L(cw) = L(w)`` for every ``c > 0``."""
    return prove(
        "loss_invariance",
        "The loss does not change when the weights are rescaled",
        r"L(c\,w) = L(w)",
        _SI,
        lambda: loss(scale * weights) - loss(weights),
    )


def gradient_scaling(loss: Loss = generic_si_loss) -> Statement:
    r"""``∇L(cw) = ∇L(w)/c``."""
    g = gradient(loss(weights))
    return prove(
        "gradient_scaling",
        "The gradient at c·w is the gradient at w divided by c",
        r"\nabla L(c\,w) = \nabla L(w) / c",
        _SI,
        lambda: at(g, scale * weights) - g / scale,
    )


def gradient_orthogonality(loss: Loss = generic_si_loss) -> Statement:
    r"""``w·∇L(w) = 0``: the gradient is tangent to the sphere ``‖w‖ = ρ``."""
    return prove(
        "gradient_orthogonality",
        "The gradient is orthogonal to the weights",
        r"w^\top \nabla L(w) = 0",
        _SI,
        lambda: dot(weights, gradient(loss(weights))),
    )


def hessian_scaling(loss: Loss = generic_si_loss) -> Statement:
    r"""``H(cw) = H(w)/c²``."""
    h = hessian(loss(weights))
    return prove(
        "hessian_scaling",
        "The Hessian at c·w is the Hessian at w divided by c²",
        r"H(c\,w) = H(w) / c^2",
        _SI,
        lambda: at(h, scale * weights) - h / scale**2,
    )


def hessian_euler(loss: Loss = generic_si_loss) -> Statement:
    r"""``H(w)w = −∇L(w)`` (differentiate ``w·∇L(w) = 0``)."""
    return prove(
        "hessian_euler",
        "The Hessian maps the weights to minus the gradient",
        r"H(w)\,w = -\nabla L(w)",
        _SI,
        lambda: hessian(loss(weights)) * weights + gradient(loss(weights)),
    )


def effective_gradient(loss: Loss = generic_si_loss) -> Statement:
    r"""``g̃ := ∇L(w/ρ) = ρ∇L(w)`` and so ``‖g̃‖ = ρ‖∇L(w)‖``, ``ρ = ‖w‖``."""
    g = gradient(loss(weights))
    rho = norm(weights)
    return prove(
        "effective_gradient",
        "The gradient at the unit-norm point w/ρ is ρ times the gradient at w",
        r"\tilde g := \nabla L(w/\rho) = \rho\,\nabla L(w),\quad \|\tilde g\| = \rho\,\|\nabla L(w)\|",
        _SI + ", ρ = ‖w‖",
        lambda: at(g, weights / rho) - rho * g,
    )


STATEMENTS = (
    loss_invariance,
    gradient_scaling,
    gradient_orthogonality,
    hessian_scaling,
    hessian_euler,
    effective_gradient,
)
