"""The equilibrium of SGD with weight decay: the norm at which gradients and weight decay balance.

Without momentum the equilibrium follows from the exact norm recursion. With heavy-ball momentum β
(torch's SGD: ``b⁺ = βb + ∇L(w) + λw``, ``w⁺ = w − ηb⁺``) it follows from stationarity of three scalars,
``ρ_t² = ‖w_t‖²``, ``V_t = ‖v_t‖²`` and ``a_t = w_{t−1}·v_t`` with ``v_t = w_t − w_{t−1}``: the recursions of
those scalars are proved exactly and then solved for a steady state.
"""

from __future__ import annotations

import sympy as sp

from bnwd.theory.sgd import ANGULAR_UPDATE, EFFECTIVE_LR, SI_NORM_AFTER_STEP
from bnwd.theory.symbolic import (
    Statement,
    dot,
    eff_grad_norm,
    elr,
    grad_norm,
    lr,
    lr_wd,
    momentum,
    orthogonal_part,
    prove,
    si_norm,
    wd,
)

__all__ = [
    "EQUILIBRIUM_ANGULAR_UPDATE",
    "EQUILIBRIUM_ANGULAR_UPDATE_LEADING",
    "EQUILIBRIUM_ELR",
    "EQUILIBRIUM_SI_NORM",
    "STATEMENTS",
    "equilibrium_angular_update",
    "equilibrium_elr",
    "equilibrium_norm",
    "momentum_equilibrium_angular_update",
]

EQUILIBRIUM_SI_NORM = (lr * eff_grad_norm**2 / (wd * (2 - lr * wd))) ** sp.Rational(1, 4)
"""ρ* = (η‖g̃‖² / (λ(2−ηλ)))^{1/4}."""
EQUILIBRIUM_ELR = sp.sqrt(lr * wd * (2 - lr * wd)) / eff_grad_norm
"""η̃* = √(ηλ(2−ηλ)) / ‖g̃‖."""
EQUILIBRIUM_ANGULAR_UPDATE = 2 * sp.asin(sp.sqrt(lr * wd / (2 * (1 + momentum))))
"""θ* = arccos(1 − ηλ/(1+β)) = 2 arcsin √(ηλ/(2(1+β))), exact for a steady state (the arcsin form keeps full
precision at small ηλ)."""
EQUILIBRIUM_ANGULAR_UPDATE_LEADING = sp.sqrt(2 * lr * wd / (1 + momentum))
"""θ* ≈ √(2ηλ/(1+β)), the leading order in ηλ."""

_BALANCE = "the norm recursion at a fixed point ρ⁺ = ρ with ‖g̃‖ held constant; 0 < ηλ < 1"


def equilibrium_norm() -> Statement:
    r"""``ρ*⁴ = η‖g̃‖²/(λ(2−ηλ))``, solved from ``ρ⁺ = ρ`` in the norm recursion with ``‖∇L‖ = ‖g̃‖/ρ``."""

    def residual():
        fourth_power = sp.Symbol("P", positive=True)
        balance = (SI_NORM_AFTER_STEP**2 - si_norm**2).subs(grad_norm, eff_grad_norm / si_norm)
        (solution,) = sp.solve((balance * si_norm**2).subs(si_norm, fourth_power ** sp.Rational(1, 4)), fourth_power)
        return solution - EQUILIBRIUM_SI_NORM**4

    return prove(
        "equilibrium_norm",
        "Equilibrium norm, where gradient growth and weight decay cancel",
        r"\rho_*^4 = \frac{\eta\,\|\tilde g\|^2}{\lambda\,(2-\eta\lambda)}",
        _BALANCE,
        residual,
    )


def equilibrium_elr() -> Statement:
    r"""``η̃*‖g̃‖ = √(ηλ(2−ηλ))``, with ``η̃* = η/ρ*²``."""
    return prove(
        "equilibrium_elr",
        "At equilibrium the effective step η̃‖g̃‖ is set by ηλ alone",
        r"\tilde\eta_*\,\|\tilde g\| = \sqrt{\eta\lambda\,(2-\eta\lambda)}",
        _BALANCE,
        lambda: EFFECTIVE_LR.subs(si_norm, EQUILIBRIUM_SI_NORM) - EQUILIBRIUM_ELR,
    )


def _leading_order(exact, leading, order_term):
    """Residuals for ``exact/leading → 1`` as ηλ → 0 and for the next-order term of that ratio."""
    ratio = (exact / leading).subs(wd, lr_wd / lr)
    return [
        sp.limit(ratio, lr_wd, 0, "+") - 1,
        sp.series(ratio, lr_wd, 0, 2).removeO() - (1 + order_term),
    ]


def equilibrium_angular_update() -> Statement:
    r"""``cos θ* = 1 − ηλ`` exactly, so ``θ* = √(2ηλ)(1 + ηλ/12 + O((ηλ)²))``."""
    without_momentum = EQUILIBRIUM_ANGULAR_UPDATE.subs(momentum, 0)

    def residual():
        at_equilibrium = ANGULAR_UPDATE.subs(elr, EQUILIBRIUM_ELR)
        return sp.Matrix(
            [
                sp.cos(at_equilibrium) - sp.cos(without_momentum),
                *_leading_order(without_momentum, EQUILIBRIUM_ANGULAR_UPDATE_LEADING.subs(momentum, 0), lr_wd / 12),
            ]
        )

    return prove(
        "equilibrium_angular_update",
        "Angular update per step at equilibrium",
        r"\cos\theta_* = 1-\eta\lambda,\quad \theta_* = \sqrt{2\eta\lambda}"
        r"\left(1 + \tfrac{\eta\lambda}{12} + O\!\left((\eta\lambda)^2\right)\right)",
        _BALANCE,
        residual,
    )


def momentum_equilibrium_angular_update() -> Statement:
    r"""With momentum β: ``cos θ* = 1 − ηλ/(1+β)``, so ``θ* ≈ √(2ηλ/(1+β))``.

    Proof: with ``v⁺ = βv − η(g + λw)``, ``w·g = 0``, exactly ``a⁺ = β(a + V) − ηλρ²`` and
    ``ρ⁺² = ρ² + 2a⁺ + V⁺``; a steady state (a, V, ρ constant) solves to ``V = 2ηλρ²/(1+β)``,
    ``a = −ηλρ²/(1+β)``, and ``cos θ = w·w⁺/ρ² = 1 + a/ρ²``.
    """

    def residual():
        w_prev, v, u = (sp.Matrix(sp.symbols(f"{n}1:4", real=True)) for n in ("p", "v", "u"))
        w = w_prev + v
        v_next = momentum * v - lr * (orthogonal_part(u, w) + wd * w)
        a, a_next, volume = dot(w_prev, v), dot(w, v_next), dot(v, v)
        recursions = [
            a_next - (momentum * (a + volume) - lr * wd * dot(w, w)),
            dot(w + v_next, w + v_next) - (dot(w, w) + 2 * a_next + dot(v_next, v_next)),
        ]
        a_s, v_s = sp.symbols("a V", real=True)
        steady = sp.solve([a_s - (momentum * (a_s + v_s) - lr * wd * si_norm**2), 2 * a_s + v_s], [a_s, v_s])
        cos_theta = (si_norm**2 + steady[a_s]) / si_norm**2
        exact = EQUILIBRIUM_ANGULAR_UPDATE
        return sp.Matrix(
            [
                *recursions,
                cos_theta - sp.cos(exact),
                *_leading_order(exact, EQUILIBRIUM_ANGULAR_UPDATE_LEADING, lr_wd / (12 * (1 + momentum))),
                steady[v_s].subs(momentum, 0) - 2 * lr * wd * si_norm**2,
            ]
        )

    return prove(
        "momentum_equilibrium_angular_update",
        "Angular update at equilibrium with heavy-ball momentum β (torch's SGD)",
        r"\cos\theta_* = 1-\frac{\eta\lambda}{1+\beta},\quad \theta_* = \sqrt{\frac{2\eta\lambda}{1+\beta}}"
        r"\left(1 + \tfrac{\eta\lambda}{12(1+\beta)} + O\!\left((\eta\lambda)^2\right)\right)",
        "steady state of ρ², ‖w_t − w_{t−1}‖² and w_{t−1}·(w_t − w_{t−1}); gradients orthogonal to w",
        residual,
    )


STATEMENTS = (equilibrium_norm, equilibrium_elr, equilibrium_angular_update, momentum_equilibrium_angular_update)
