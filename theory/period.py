"""The period law: how long the norm takes to decay from one destabilisation to the next.

While the net sits near a minimum its gradients are negligible, so weight decay alone shrinks the norm
geometrically and the effective learning rate grows geometrically, until it reaches the critical η̃_c
(see :mod:`theory.stability`). The time that takes is the period; its inverse, the frequency, is ∝ ηλ.
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import log1p

from bnwd.theory.sgd import ELR_AFTER_STEP, SI_NORM_AFTER_STEP
from bnwd.theory.symbolic import (
    Statement,
    eff_grad_norm,
    elr,
    elr_critical,
    elr_start,
    grad_norm,
    in_domain,
    lr,
    lr_wd,
    momentum,
    prove,
    si_norm,
    wd,
)

__all__ = [
    "NORM_DECAY_FACTOR",
    "NORM_DECAY_RATE",
    "PERIOD_LENGTH",
    "PERIOD_LENGTH_LEADING",
    "STATEMENTS",
    "as_log",
    "decay_matrix",
    "frequency_law",
    "momentum_decay",
    "momentum_period",
    "period_approximation",
    "period_length",
    "pure_decay",
]

_z = sp.Symbol("z")
_b = sp.Symbol("b", real=True)


def decay_matrix(curvature: sp.Expr = wd) -> sp.Matrix:
    """Jacobian of one step of torch's SGD on a coordinate and its buffer ``(x, b)`` under the linear force
    ``curvature·x``: ``b⁺ = βb + curvature·x``, ``x⁺ = x − ηb⁺``. With ``curvature = λ`` it is the norm's
    recurrence when the gradient is zero (w ∥ b)."""
    b_next = momentum * _b + curvature * si_norm
    return sp.Matrix([si_norm - lr * b_next, b_next]).jacobian([si_norm, _b])


def _dominant_root() -> sp.Expr:
    roots = sp.solve(decay_matrix().charpoly(_z).as_expr(), _z)
    inside = {momentum: sp.Rational(1, 4), lr: 1, wd: sp.Rational(1, 10)}  # real roots there
    return max(roots, key=lambda root: root.subs(inside))


# The discriminant (1+β−ηλ)² − 4β in factored form, and 1 − z₊ through the conjugate: both free of the
# cancellation that makes the textbook root lose digits at small ηλ and turn NaN where the roots meet.
_DISCRIMINANT = ((1 - sp.sqrt(momentum)) ** 2 - lr * wd) * ((1 + sp.sqrt(momentum)) ** 2 - lr * wd)
NORM_DECAY_RATE = 2 * lr * wd / (1 - momentum + lr * wd + sp.sqrt(_DISCRIMINANT))
"""1 − z₊ = 2ηλ/(1−β+ηλ+√((1+β−ηλ)² − 4β)): the fraction of the norm lost per step with zero gradient."""
NORM_DECAY_FACTOR = 1 - NORM_DECAY_RATE
"""z₊ = ((1+β−ηλ) + √((1+β−ηλ)² − 4β))/2: per-step norm factor with zero gradient (1−ηλ when β = 0)."""
PERIOD_LENGTH = sp.log(elr_critical / elr_start) / (-2 * log1p(-NORM_DECAY_RATE))
"""T = ln(η̃_c/η̃_s) / (−2 ln z₊): steps for η̃ to grow from η̃_s to η̃_c by pure decay."""
PERIOD_LENGTH_LEADING = (1 - momentum) * sp.log(elr_critical / elr_start) / (2 * lr * wd)
"""T ≈ (1−β) ln(η̃_c/η̃_s) / (2ηλ), the leading order in ηλ."""

_t = sp.Symbol("t", integer=True, nonnegative=True)
_DECAY = "zero gradient between destabilisations (‖g̃‖ = 0); 0 < ηλ < 1"


def as_log(expr):
    """``expr`` with ``log1p(x)`` written as ``log(1 + x)``, for sympy's simplification, series and limits."""
    return expr.replace(log1p, lambda x: sp.log(1 + x))


def _on_derived_root(expr):
    """``expr`` with the numerically stable decay rate replaced by ``1 −`` the root as solved (equal by
    ``momentum_decay``), in log form."""
    return as_log(expr.subs(NORM_DECAY_RATE, 1 - _dominant_root()))


def _by_lr_wd(expr):
    """``expr`` as a function of the product ηλ, for series and limits in it (β in its domain)."""
    return in_domain(expr.subs(wd, lr_wd / lr), lr_wd_too=False)


def pure_decay() -> Statement:
    r"""With ``‖∇L‖ = 0``: ``ρ_t = ρ_s(1−ηλ)^t`` and ``η̃_t = η̃_s(1−ηλ)^{−2t}``, solved by ``rsolve``."""

    def residual():
        rho, eta_t = sp.Function("rho"), sp.Function("eta_t")
        rho_t = sp.rsolve(
            rho(_t + 1) - SI_NORM_AFTER_STEP.subs({grad_norm: 0, si_norm: rho(_t)}),
            rho(_t),
            {rho(0): si_norm},
        )
        elr_t = sp.rsolve(
            eta_t(_t + 1) - ELR_AFTER_STEP.subs({eff_grad_norm: 0, elr: eta_t(_t)}),
            eta_t(_t),
            {eta_t(0): elr_start},
        )
        return sp.Matrix(
            [
                in_domain(rho_t - si_norm * (1 - lr * wd) ** _t),
                in_domain(elr_t - elr_start * (1 - lr * wd) ** (-2 * _t)),
            ]
        )

    return prove(
        "pure_decay",
        "Without gradients the norm decays geometrically and the effective learning rate grows geometrically",
        r"\rho_t = \rho_s (1-\eta\lambda)^t,\quad \tilde\eta_t = \tilde\eta_s (1-\eta\lambda)^{-2t}",
        _DECAY,
        residual,
    )


def period_length() -> Statement:
    r"""``T = ln(η̃_c/η̃_s)/(−2 ln(1−ηλ))``, the solution of ``η̃_s(1−ηλ)^{−2T} = η̃_c``."""

    def residual():
        period = sp.Symbol("T", positive=True)
        (solution,) = sp.solve(in_domain(elr_start * (1 - lr * wd) ** (-2 * period) - elr_critical), period)
        return solution - in_domain(as_log(PERIOD_LENGTH.subs(momentum, 0)))

    return prove(
        "period_length",
        "Steps needed for the effective learning rate to grow from η̃_s to the critical η̃_c",
        r"T = \frac{\ln(\tilde\eta_c/\tilde\eta_s)}{-2\ln(1-\eta\lambda)}",
        _DECAY,
        residual,
    )


def period_approximation() -> Statement:
    r"""``T ≈ ln(η̃_c/η̃_s)/(2ηλ)`` overestimates T by the factor ``1 + ηλ/2 + (ηλ)²/3 + O((ηλ)³)``."""

    def residual():
        overestimate = _by_lr_wd(_on_derived_root(PERIOD_LENGTH_LEADING / PERIOD_LENGTH).subs(momentum, 0))
        return sp.series(overestimate, lr_wd, 0, 3).removeO() - (1 + lr_wd / 2 + lr_wd**2 / 3)

    return prove(
        "period_approximation",
        "Error of the approximation T ≈ ln(η̃_c/η̃_s)/(2ηλ)",
        r"\frac{\ln(\tilde\eta_c/\tilde\eta_s)}{2\eta\lambda} = T\left(1 + \frac{\eta\lambda}{2} + "
        r"\frac{(\eta\lambda)^2}{3} + O\!\left((\eta\lambda)^3\right)\right)",
        _DECAY,
        residual,
    )


def frequency_law() -> Statement:
    r"""``1/T = 2ηλ/ln(η̃_c/η̃_s) · (1 + O(ηλ))``: at fixed thresholds the frequency is ∝ ηλ."""

    def residual():
        frequency = 1 / _by_lr_wd(_on_derived_root(PERIOD_LENGTH).subs(momentum, 0))
        return sp.limit(frequency / lr_wd, lr_wd, 0, "+") - 2 / sp.log(elr_critical / elr_start)

    return prove(
        "frequency_law",
        "The frequency of destabilisations is proportional to ηλ",
        r"\lim_{\eta\lambda\to 0} \frac{1/T}{\eta\lambda} = \frac{2}{\ln(\tilde\eta_c/\tilde\eta_s)}",
        _DECAY + "; the thresholds η̃_s, η̃_c do not depend on η and λ",
        residual,
    )


def momentum_decay() -> Statement:
    r"""With momentum β and zero gradient the norm decays by ``z₊ = 1 − ηλ/(1−β) + O((ηλ)²)`` per step.

    ``z₊`` is the larger root of the characteristic polynomial ``z² − (1+β−ηλ)z + β`` of torch's SGD on
    ``(ρ, b)``, the root that dominates after a transient of order ``(β/z₊)^t``. The exported form
    ``1 − 2ηλ/(1−β+ηλ+√D)`` equals it: with ``S = √D``, the difference has a numerator that vanishes modulo
    ``S² − D``.
    """

    def residual():
        charpoly = decay_matrix().charpoly(_z).as_expr()
        root = _dominant_root()
        (root_sqrt,) = (p for p in root.atoms(sp.Pow) if p.exp == sp.S.Half)
        s = sp.Symbol("S", positive=True)
        difference = NORM_DECAY_FACTOR.subs(sp.sqrt(_DISCRIMINANT), s) - root.subs(root_sqrt, s)
        numerator = sp.expand(sp.numer(sp.together(difference)))
        series = sp.series(_by_lr_wd(root), lr_wd, 0, 2).removeO()
        return sp.Matrix(
            [
                charpoly - (_z**2 - (1 + momentum - lr * wd) * _z + momentum),
                sp.expand(_DISCRIMINANT - root_sqrt.base),
                sp.rem(numerator, s**2 - root_sqrt.base, s),
                in_domain(NORM_DECAY_FACTOR.subs(momentum, 0) - (1 - lr * wd)),
                series - _by_lr_wd(1 - lr_wd / (1 - momentum)),
            ]
        )

    return prove(
        "momentum_decay",
        "Per-step norm decay with heavy-ball momentum (torch's SGD)",
        r"z_{+} = \frac{1+\beta-\eta\lambda + \sqrt{(1+\beta-\eta\lambda)^2 - 4\beta}}{2} = "
        r"1 - \frac{2\eta\lambda}{1-\beta+\eta\lambda+\sqrt{(1+\beta-\eta\lambda)^2 - 4\beta}} = "
        r"1 - \frac{\eta\lambda}{1-\beta} + O\!\left((\eta\lambda)^2\right)",
        _DECAY + "; 0 ≤ β < 1",
        residual,
    )


def momentum_period() -> Statement:
    r"""``T_β = ln(η̃_c/η̃_s)/(−2 ln z₊) = (1−β) ln(η̃_c/η̃_s)/(2ηλ) · (1 + O(ηλ))``."""

    def residual():
        ratio = _by_lr_wd(_on_derived_root(PERIOD_LENGTH / PERIOD_LENGTH_LEADING))
        return sp.limit(ratio, lr_wd, 0, "+") - 1

    return prove(
        "momentum_period",
        "With momentum β the period is (1−β) times as long at leading order (shorter)",
        r"T_\beta = \frac{\ln(\tilde\eta_c/\tilde\eta_s)}{-2\ln z_{+}} = "
        r"\frac{(1-\beta)\ln(\tilde\eta_c/\tilde\eta_s)}{2\eta\lambda}\bigl(1 + O(\eta\lambda)\bigr)",
        _DECAY + "; 0 ≤ β < 1",
        residual,
    )


STATEMENTS = (pure_decay, period_length, period_approximation, frequency_law, momentum_decay, momentum_period)
