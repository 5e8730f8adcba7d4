"""The escape delay and the whole period: after η̃·s̃ passes the threshold, the unstable direction needs time to grow.

At the crossing the top direction's error is tiny (set by gradient noise, or by how deep training converged), and
just past the threshold it grows slowly: the multiplier per step is ``|1 − η̃s̃/(1−ηλ)|``, 1 at the crossing, and η̃
keeps growing by ``(1−ηλ)⁻²`` per step. The error must grow by a factor A (from its floor to the angle where η̃
turns and ρ jumps) before the destabilisation shows; that takes the escape delay. The whole period is the decay
from the η̃ after a jump to the threshold (:mod:`theory.period`) plus that delay. Plain GD (β = 0).

Where one direction destabilises (the plane of the minimum and its top direction, ``L = (s̃/2) sin²θ``), the jump
itself follows: past the threshold the angle settles on a 2-cycle ±θ*, and one step on it divides η̃·s̃/(2(1−ηλ))
by its square (:func:`plane_reset`). The reset mirrors the overshoot, so the decay back to the threshold takes as
long as the escape did, and the whole period is twice the delay, ``T = 2K ≈ √(2 ln A/ηλ)``
(:func:`plane_period`): with small jumps the frequency grows as √ηλ, not ηλ.

A is predicted too, from where the error starts and where the jump shows: gradient noise σ kicks the angle by
``κ = η̃_cσ/(1−ηλ)`` per step, and the kicks around the crossing add up to a floor ``θ_f`` (:func:`noise_floor`); η̃
peaks, and the jump shows, once the angular update reaches its equilibrium ``arccos(1−ηλ)``, at the angle
``θ_e = arccos(1−ηλ)/2`` (:func:`escape_angle`): ``ln A = ln(θ_e/θ_f)``.
"""

from __future__ import annotations

import sympy as sp

from bnwd.theory.equilibrium import EQUILIBRIUM_ANGULAR_UPDATE
from bnwd.theory.period import PERIOD_LENGTH, as_log
from bnwd.theory.sgd import ANGULAR_UPDATE, ELR_AFTER_STEP
from bnwd.theory.stability import CRITICAL_ELR
from bnwd.theory.symbolic import (
    Statement,
    eff_grad_norm,
    eff_sharpness,
    elr,
    elr_critical,
    elr_start,
    gradient_noise,
    in_domain,
    log_amplification,
    lr,
    lr_wd,
    momentum,
    prove,
    wd,
)

__all__ = [
    "ESCAPE_ANGLE",
    "ESCAPE_DELAY",
    "ESCAPE_DELAY_LEADING",
    "NOISE_FLOOR",
    "NOISE_KICK",
    "PLANE_ANGLE_MAP",
    "PLANE_PERIOD",
    "RESET_OVERSHOOT",
    "STATEMENTS",
    "WHOLE_PERIOD",
    "escape_angle",
    "escape_delay",
    "noise_floor",
    "overshoot",
    "plane_period",
    "plane_reset",
    "whole_period",
]

_k = sp.Symbol("k", integer=True, nonnegative=True)
_steps = sp.Symbol("K", positive=True)

ESCAPE_DELAY = (1 + sp.sqrt(1 + 2 * log_amplification / (lr * wd))) / 2
"""K with Σ_{k<K} 4ηλk = ln A: steps from the crossing until the error has grown by A, (1 + √(1 + 2 ln A/ηλ))/2."""
ESCAPE_DELAY_LEADING = sp.sqrt(log_amplification / (2 * lr * wd))
"""K ≈ √(ln A/(2ηλ)), the leading order for ln A ≫ ηλ."""
WHOLE_PERIOD = PERIOD_LENGTH.subs(momentum, 0) + ESCAPE_DELAY
"""T = ln(η̃_c/η̃_s)/(−2 ln(1−ηλ)) + K: decay from η̃_s to the threshold, then the escape delay (β = 0)."""

overshoot = sp.Symbol("a", positive=True)
"""a = η̃s̃/(2(1−ηλ)): η̃ over the threshold η̃_c, 1 at the crossing."""
_theta = sp.Symbol("theta", real=True)
_on_plane = {
    elr: overshoot * CRITICAL_ELR,
    eff_grad_norm: eff_sharpness / 2 * sp.sin(2 * _theta),  # signed: ∂θ of (s̃/2) sin²θ
}
PLANE_ANGLE_MAP = _theta - ANGULAR_UPDATE.subs(_on_plane)
"""θ⁺ = θ − arctan(a sin 2θ): one GD step on ``L = (s̃/2) sin²θ``, θ the angle to the minimum in its plane."""
RESET_OVERSHOOT = 1 / (overshoot * (1 - lr * wd) ** 2)
"""a⁺ = 1/(a(1−ηλ)²): the overshoot after one step on the 2-cycle, below 1 for any a > 1/(1−ηλ)²."""
PLANE_PERIOD = 2 * ESCAPE_DELAY
"""T = 2K = 1 + √(1 + 2 ln A/ηλ): escape, reset and decay back to the threshold, one direction unstable (β = 0)."""

ESCAPE_ANGLE = EQUILIBRIUM_ANGULAR_UPDATE.subs(momentum, 0) / 2
"""θ_e = arccos(1−ηλ)/2 ≈ √(ηλ/2): the angle to the minimum at which η̃ stops growing (β = 0)."""
NOISE_KICK = CRITICAL_ELR * gradient_noise / (1 - lr * wd)
"""κ = η̃_cσ/(1−ηλ) = 2σ/s̃: the angle one step of gradient noise σ turns the weights by, at the threshold."""
_EULER_LOG_HALF = (sp.EulerGamma + sp.log(2)) / 2  # −E ln|ξ| for ξ ~ N(0, 1)
NOISE_FLOOR = NOISE_KICK * (sp.pi / (4 * lr * wd)) ** sp.Rational(1, 4) * sp.exp(-_EULER_LOG_HALF)
"""θ_f = κ (π/4ηλ)^{1/4} e^{−(γ+ln 2)/2}: the geometric-mean error the kicks around the crossing leave (β = 0)."""


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
        "theory.stability.minimum_instability; A = the error's growth from its floor to where the jump shows; ηλK ≪ 1",
        residual,
    )


def whole_period() -> Statement:
    r"""``T = ln(η̃_c/η̃_s)/(−2 ln(1−ηλ)) + K``, so ``2ηλT = ln(η̃_c/η̃_s) + √(2ηλ ln A) + O(ηλ)``: the delay adds
    a term of order √ηλ, and the frequency is ∝ ηλ only while ``√(2ηλ ln A) ≪ ln(η̃_c/η̃_s)``."""

    def residual():
        scaled = 2 * lr_wd * as_log(WHOLE_PERIOD).subs(wd, lr_wd / lr)
        excess = (scaled - sp.log(elr_critical / elr_start)) / sp.sqrt(2 * lr_wd * log_amplification)
        return sp.Matrix([sp.limit(excess, lr_wd, 0, "+") - 1])

    return prove(
        "whole_period",
        "The whole period, decay to the threshold plus the escape delay, breaks the ∝ 1/ηλ law at order √ηλ",
        r"2\eta\lambda\,T = \ln\frac{\tilde\eta_c}{\tilde\eta_s} + \sqrt{2\eta\lambda\ln A} + O(\eta\lambda)",
        "GD (β = 0); zero gradient between destabilisations; the delay of escape_delay",
        residual,
    )


def plane_reset() -> Statement:
    r"""Past the threshold (a > 1) the plane's angle map has the 2-cycle ``θ* → −θ*`` with ``cos 2θ* = 1/a``, stable
    (the map's slope there is ``1 − 2/a²``, the same at ±θ*), and a step on it sends ``a`` to ``1/(a(1−ηλ)²)``.

    Parametrised by ``c = 2θ*`` in (0, π/2), ``a = 1/cos c``: the update's tangent ``a sin 2θ*`` is ``tan 2θ*``
    (the step turns the weights by 2θ*), and the exact ELR map with ``η̃‖g̃‖ = (1−ηλ)·tan 2θ*`` divides η̃ by
    ``(1−ηλ)²(1 + tan² 2θ*) = (1−ηλ)² a²``.
    """

    def residual():
        c = sp.Symbol("c", positive=True)
        cycle = {_theta: c / 2, overshoot: 1 / sp.cos(c)}
        turn = sp.tan(_theta - PLANE_ANGLE_MAP)
        slope = sp.diff(PLANE_ANGLE_MAP, _theta)
        elr_next = ELR_AFTER_STEP.subs(_on_plane)
        return sp.Matrix(
            [
                turn.subs(cycle) - sp.tan(c),
                slope.subs(cycle) - (1 - 2 / overshoot**2).subs(cycle),
                slope.subs(_theta, -_theta) - slope,
                in_domain(elr_next.subs(cycle) / CRITICAL_ELR - RESET_OVERSHOOT.subs(cycle)),
            ]
        )

    return prove(
        "plane_reset",
        "Past the threshold the angle locks on a 2-cycle, and one step on it mirrors the overshoot of η̃",
        r"\cos 2\theta^{*} = \frac1a:\ \theta^{*} \mapsto -\theta^{*},\ "
        r"\Bigl|\frac{d\theta_{+}}{d\theta}\Bigr| = \Bigl|1-\frac{2}{a^{2}}\Bigr| < 1,\ "
        r"a_{+} = \frac{1}{a(1-\eta\lambda)^{2}},\quad a = \frac{\tilde\eta\,\tilde s}{2(1-\eta\lambda)}",
        "GD (β = 0) with coupled weight decay on L = (s̃/2) sin²θ, the plane of a minimum and its top direction "
        "(the exact angular update and ELR map of theory.sgd); a > 1",
        residual,
    )


def plane_period() -> Statement:
    r"""The overshoot at the escape is ``a_e = (1−ηλ)^{−2K}``; the reset leaves ``a_s = (1−ηλ)^{2K−2}``, from which
    decay takes ``K − 1`` steps back to the threshold: ``T = K + 1 + (K − 1) = 2K``, ``√ηλ·T → √(2 ln A)``."""

    def residual():
        delay = sp.Symbol("K", positive=True)
        escaped = (1 - lr * wd) ** (-2 * delay)
        reset = RESET_OVERSHOOT.subs(overshoot, escaped)
        back = as_log(PERIOD_LENGTH.subs({momentum: 0, elr_critical: 1, elr_start: reset}))
        scaled = PLANE_PERIOD.subs(wd, lr_wd / lr) * sp.sqrt(lr_wd)
        return sp.Matrix(
            [
                in_domain(sp.expand_log(back, force=True) - (delay - 1)),
                PLANE_PERIOD - (delay + 1 + (delay - 1)).subs(delay, ESCAPE_DELAY),
                sp.limit(scaled, lr_wd, 0, "+") - sp.sqrt(2 * log_amplification),
            ]
        )

    return prove(
        "plane_period",
        "With one unstable direction the period is twice the escape delay: the frequency grows as √ηλ",
        r"T = 2K = 1 + \sqrt{1 + \frac{2\ln A}{\eta\lambda}} \approx \sqrt{\frac{2\ln A}{\eta\lambda}}",
        "GD (β = 0); the escape of escape_delay, the reset of plane_reset at a_e = (1−ηλ)^(−2K), then pure decay",
        residual,
    )


def escape_angle() -> Statement:
    r"""η̃ grows while the angular update Δ is below ``arccos(1−ηλ)`` and falls above it (the ELR map is
    ``η̃⁺ = η̃ cos²Δ/(1−ηλ)²``); past the threshold the weights swing across the minimum, ``Δ = arctan(a sin 2θ)
    = 2θ + O(θ(a−1), θ³)``, so η̃ peaks where θ reaches ``arccos(1−ηλ)/2``."""

    def residual():
        turn = sp.Symbol("Delta", positive=True)
        ratio = ELR_AFTER_STEP.subs(eff_grad_norm, (1 - lr * wd) * sp.tan(turn) / elr) / elr
        swing = sp.series(ANGULAR_UPDATE.subs(_on_plane).subs(overshoot, 1), _theta, 0, 3).removeO()
        return sp.Matrix(
            [
                in_domain(ratio - sp.cos(turn) ** 2 / (1 - lr * wd) ** 2),
                sp.expand_trig(sp.cos(2 * ESCAPE_ANGLE)) - (1 - lr * wd),  # where cos²Δ = (1−ηλ)², ratio 1
                swing - 2 * _theta,
            ]
        )

    return prove(
        "escape_angle",
        "The jump shows once the weights swing across the minimum by the equilibrium angular update",
        r"\tilde\eta_{+} = \frac{\tilde\eta\cos^2\Delta}{(1-\eta\lambda)^2} < \tilde\eta"
        r" \iff \Delta > \arccos(1-\eta\lambda),\quad \Delta \approx 2\theta"
        r" \Rightarrow \theta_e = \tfrac12\arccos(1-\eta\lambda)",
        "GD (β = 0); the exact ELR map and angular update of theory.sgd; in the plane of the unstable direction "
        "near the threshold (a ≈ 1, θ small)",
        residual,
    )


def noise_floor() -> Statement:
    r"""A kick ``κξ_t`` at step t from the crossing reaches the crossing scaled by ``e^{−2ηλt²}`` (the linear mode's
    exponent ``Σ 4ηλk`` of :func:`escape_delay`, on either side), so the kicks add up to a Gaussian error of variance
    ``κ² Σ_t e^{−4ηλt²} ≈ κ²√(π/4ηλ)``, whose ``E ln|·|`` is ``ln`` of its standard deviation minus ``(γ + ln 2)/2``."""

    def residual():
        t, x = sp.Symbol("t", positive=True), sp.Symbol("x", positive=True)
        exponent = sp.summation(4 * lr * wd * _k, (_k, 0, t - 1))  # the linear mode's, past the crossing
        variance = sp.integrate(sp.exp(-2 * 2 * lr * wd * t**2), (t, -sp.oo, sp.oo))
        mean_log = 2 * sp.integrate(sp.log(x) * sp.exp(-(x**2) / 2), (x, 0, sp.oo)) / sp.sqrt(2 * sp.pi)
        return sp.Matrix(
            [
                sp.limit(exponent / (2 * lr * wd * t**2), t, sp.oo) - 1,
                in_domain(NOISE_KICK - 2 * gradient_noise / eff_sharpness),
                in_domain(NOISE_KICK * sp.sqrt(variance) * sp.exp(mean_log) - NOISE_FLOOR),
            ]
        )

    return prove(
        "noise_floor",
        "Gradient noise leaves the unstable direction an error of κ(π/4ηλ)^¼ e^{−(γ+ln 2)/2} at the crossing",
        r"\theta_f = \kappa\Bigl(\frac{\pi}{4\eta\lambda}\Bigr)^{1/4} e^{-(\gamma+\ln 2)/2},\quad"
        r"\kappa = \frac{\tilde\eta_c\,\sigma}{1-\eta\lambda} = \frac{2\sigma}{\tilde s}",
        "GD (β = 0); isotropic gradient noise σ per direction at unit norm, independent across steps; the linear "
        "mode of escape_delay on both sides of the crossing (sum over steps taken as an integral, ηλ ≪ 1)",
        residual,
    )


STATEMENTS = (escape_delay, whole_period, plane_reset, plane_period, escape_angle, noise_floor)
