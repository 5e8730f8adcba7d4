"""The escape delay and the whole period: after η̃·s̃ passes the threshold, the unstable direction needs time to grow.

At the crossing the top direction's error is tiny (set by gradient noise, or by how deep training converged), and
just past the threshold it grows slowly: the multiplier per step is ``|1 − η̃s̃/(1−ηλ)|``, 1 at the crossing, and η̃
keeps growing by ``(1−ηλ)⁻²`` per step. The error must grow by a factor A (from its floor to O(1), where the loss
spikes and ρ jumps) before the destabilisation shows; that takes the escape delay. The whole period is the decay
from the η̃ after a jump to the threshold (:mod:`theory.period`) plus that delay. Plain GD (β = 0).
"""

from __future__ import annotations

import sympy as sp

from theory.period import PERIOD_LENGTH, _as_log
from theory.stability import CRITICAL_ELR
from theory.symbolic import (
    Statement,
    eff_sharpness,
    elr_critical,
    elr_start,
    in_domain,
    log_amplification,
    lr,
    lr_wd,
    momentum,
    prove,
    wd,
)

_k = sp.Symbol("k", integer=True, nonnegative=True)
_steps = sp.Symbol("K", positive=True)

ESCAPE_DELAY = (1 + sp.sqrt(1 + 2 * log_amplification / (lr * wd))) / 2
"""K with Σ_{k<K} 4ηλk = ln A: steps from the crossing until the error has grown by A, (1 + √(1 + 2 ln A/ηλ))/2."""
ESCAPE_DELAY_LEADING = sp.sqrt(log_amplification / (2 * lr * wd))
"""K ≈ √(ln A/(2ηλ)), the leading order for ln A ≫ ηλ."""
WHOLE_PERIOD = PERIOD_LENGTH.subs(momentum, 0) + ESCAPE_DELAY
"""T = ln(η̃_c/η̃_s)/(−2 ln(1−ηλ)) + K: decay from η̃_s to the threshold, then the escape delay (β = 0)."""


def escape_delay() -> Statement:
    r"""``k`` steps past the crossing the error grows by ``2(1−ηλ)^{−2k} − 1 = exp(4ηλk + O((ηλk)²))`` per step,
    so a growth by A takes ``K = (1 + √(1 + 2 ln A/ηλ))/2 ≈ √(ln A/(2ηλ))`` steps, while ηλK ≪ 1 (the relative
    error of the exponent is O(ηλk))."""

    def residual():
        elr_k = elr_critical * (1 - lr * wd) ** (-2 * _k)  # η̃ k steps after it reached η̃_c, by pure decay
        multiplier = -(1 - elr_k * eff_sharpness / (1 - lr * wd))  # theory.stability.minimum_instability
        at_threshold = multiplier.subs(elr_critical, CRITICAL_ELR)
        exponent = sp.series(sp.log(2 * (1 - lr_wd) ** (-2 * _k) - 1), lr_wd, 0, 2).removeO()
        grown = sp.summation(4 * lr_wd * _k, (_k, 0, _steps - 1))
        roots = sp.solve(grown - log_amplification, _steps)
        (delay,) = [r for r in roots if r.subs({lr_wd: sp.Rational(1, 100), log_amplification: 10}) > 0]
        return sp.Matrix(
            [
                in_domain(at_threshold - (2 * (1 - lr * wd) ** (-2 * _k) - 1)),
                exponent - 4 * lr_wd * _k,
                in_domain(delay - ESCAPE_DELAY.subs(wd, lr_wd / lr)),
                sp.limit(ESCAPE_DELAY.subs(wd, lr_wd / lr) / ESCAPE_DELAY_LEADING.subs(wd, lr_wd / lr), lr_wd, 0) - 1,
            ]
        )

    return prove(
        "escape_delay",
        "After the crossing the unstable direction needs about √(ln A/2ηλ) steps to grow by A",
        r"\prod_{k<K}\Bigl(2(1-\eta\lambda)^{-2k}-1\Bigr) = A \iff "
        r"K = \frac{1+\sqrt{1+2\ln A/\eta\lambda}}{2} \approx \sqrt{\frac{\ln A}{2\eta\lambda}}"
        r"\quad\text{(exponent to first order in } \eta\lambda k)",
        "GD (β = 0) with coupled weight decay; η̃ grows by pure decay past η̃_c = 2(1−ηλ)/s̃; the linear mode of "
        "theory.stability.minimum_instability; A = the error's growth from its floor to O(1); ηλK ≪ 1",
        residual,
    )


def whole_period() -> Statement:
    r"""``T = ln(η̃_c/η̃_s)/(−2 ln(1−ηλ)) + K``, so ``2ηλT = ln(η̃_c/η̃_s) + √(2ηλ ln A) + O(ηλ)``: the delay adds
    a term of order √ηλ, and the frequency is ∝ ηλ only while ``√(2ηλ ln A) ≪ ln(η̃_c/η̃_s)``."""

    def residual():
        scaled = 2 * lr_wd * _as_log(WHOLE_PERIOD).subs(wd, lr_wd / lr)
        excess = (scaled - sp.log(elr_critical / elr_start)) / sp.sqrt(2 * lr_wd * log_amplification)
        return sp.Matrix([sp.limit(excess, lr_wd, 0, "+") - 1])

    return prove(
        "whole_period",
        "The whole period, decay to the threshold plus the escape delay, breaks the ∝ 1/ηλ law at order √ηλ",
        r"2\eta\lambda\,T = \ln\frac{\tilde\eta_c}{\tilde\eta_s} + \sqrt{2\eta\lambda\ln A} + O(\eta\lambda)",
        "GD (β = 0); zero gradient between destabilisations; the delay of escape_delay",
        residual,
    )


STATEMENTS = (escape_delay, whole_period)
