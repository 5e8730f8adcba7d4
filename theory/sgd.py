"""SGD with torch's coupled weight decay on scale-invariant weights: norm, effective LR, angle.

One step is ``w⁺ = (1 − ηλ) w − η ∇L(w)``. The formulas below are the ones the numeric layer exports;
each statement proves one of them from that update on the generic scale-invariant loss.
"""

from __future__ import annotations

import sympy as sp

from bnwd.theory.symbolic import (
    Statement,
    at,
    dot,
    eff_grad_norm,
    elr,
    generic_si_loss,
    grad_norm,
    gradient,
    lr,
    norm,
    prove,
    si_norm,
    wd,
    weights,
)

__all__ = [
    "ANGULAR_UPDATE",
    "EFFECTIVE_GRAD_NORM",
    "EFFECTIVE_LR",
    "ELR_AFTER_STEP",
    "SI_NORM_AFTER_STEP",
    "STATEMENTS",
    "angular_update",
    "effective_lr",
    "elr_map",
    "norm_recursion",
]

EFFECTIVE_LR = lr / si_norm**2
"""η̃ = η/ρ²."""
EFFECTIVE_GRAD_NORM = si_norm * grad_norm
"""‖g̃‖ = ρ‖∇L(w)‖."""
SI_NORM_AFTER_STEP = sp.sqrt((1 - lr * wd) ** 2 * si_norm**2 + lr**2 * grad_norm**2)
"""ρ⁺ = √((1−ηλ)²ρ² + η²‖∇L‖²)."""
ELR_AFTER_STEP = elr / ((1 - lr * wd) ** 2 + elr**2 * eff_grad_norm**2)
"""η̃⁺ = η̃ / ((1−ηλ)² + η̃²‖g̃‖²)."""
ANGULAR_UPDATE = sp.atan(elr * eff_grad_norm / (1 - lr * wd))
"""θ = arctan(η̃‖g̃‖/(1−ηλ)), the angle between w and w⁺."""

_ASSUMES = "one SGD step w⁺ = (1−ηλ)w − η∇L(w) on the generic scale-invariant L, ρ = ‖w‖"


def _sgd_step(w: sp.Matrix) -> sp.Matrix:
    return (1 - lr * wd) * w - lr * gradient(generic_si_loss(w), w)


def _on_weights(formula):
    """``formula`` with ρ, ‖∇L‖, η̃ and ‖g̃‖ replaced by their values at the generic weights."""
    g = gradient(generic_si_loss(weights))
    rho = norm(weights)
    return formula.subs({elr: EFFECTIVE_LR, eff_grad_norm: EFFECTIVE_GRAD_NORM}).subs(
        {si_norm: rho, grad_norm: norm(g)}
    )


def norm_recursion() -> Statement:
    r"""``ρ⁺² = (1−ηλ)²ρ² + η²‖∇L(w)‖²`` exactly: the cross term vanishes because ``w·∇L = 0``."""

    def residual():
        w_next = _sgd_step(weights)
        return dot(w_next, w_next) - _on_weights(SI_NORM_AFTER_STEP) ** 2

    return prove(
        "norm_recursion",
        "Exact norm recursion of SGD with weight decay",
        r"\rho_{+}^2 = (1-\eta\lambda)^2\rho^2 + \eta^2\|\nabla L(w)\|^2",
        _ASSUMES,
        residual,
    )


def effective_lr() -> Statement:
    r"""``w⁺/ρ = (1−ηλ) ŵ − η̃ g̃`` with ``ŵ = w/ρ``, ``η̃ = η/ρ²``, ``g̃ = ∇L(ŵ)``.

    So the direction moves as a point on the unit sphere would under learning rate η̃ (up to the common
    factor 1−ηλ, which normalisation removes).
    """

    def residual():
        rho = norm(weights)
        unit = weights / rho
        g_unit = at(gradient(generic_si_loss(weights)), unit)
        return _sgd_step(weights) / rho - ((1 - lr * wd) * unit - _on_weights(EFFECTIVE_LR) * g_unit)

    return prove(
        "effective_lr",
        "The step seen on the unit sphere has learning rate η̃ = η/ρ² along g̃",
        r"\frac{w_{+}}{\rho} = (1-\eta\lambda)\,\hat w - \tilde\eta\,\tilde g,\quad"
        r"\tilde\eta = \frac{\eta}{\rho^2},\ \hat w = \frac{w}{\rho}",
        _ASSUMES,
        residual,
    )


def elr_map() -> Statement:
    r"""``η̃⁺ = η̃ / ((1−ηλ)² + η̃²‖g̃‖²)`` exactly."""

    def residual():
        w_next = _sgd_step(weights)
        return lr / dot(w_next, w_next) - _on_weights(ELR_AFTER_STEP)

    return prove(
        "elr_map",
        "Exact one-step map of the effective learning rate",
        r"\tilde\eta_{+} = \frac{\tilde\eta}{(1-\eta\lambda)^2 + \tilde\eta^2\|\tilde g\|^2}",
        _ASSUMES,
        residual,
    )


def angular_update() -> Statement:
    r"""``tan θ = η̃‖g̃‖/(1−ηλ)``, θ the angle between ``w`` and ``w⁺``; ``w·w⁺ = (1−ηλ)ρ² > 0``."""

    def residual():
        w_next = _sgd_step(weights)
        cos_numerator = dot(weights, w_next)
        tan_sq = sp.tan(_on_weights(ANGULAR_UPDATE)) ** 2
        # 1 + tan²θ = 1/cos²θ with cos θ = w·w⁺/(ρρ⁺); the sign of w·w⁺ fixes θ < π/2.
        return sp.Matrix(
            [
                dot(weights, weights) * dot(w_next, w_next) - (1 + tan_sq) * cos_numerator**2,
                cos_numerator - (1 - lr * wd) * dot(weights, weights),
            ]
        )

    return prove(
        "angular_update",
        "Angle turned by the weights in one step",
        r"\tan\theta = \frac{\tilde\eta\,\|\tilde g\|}{1-\eta\lambda},\quad"
        r"\cos\theta = \frac{w^\top w_{+}}{\rho\,\rho_{+}}",
        _ASSUMES,
        residual,
    )


STATEMENTS = (norm_recursion, effective_lr, elr_map, angular_update)
