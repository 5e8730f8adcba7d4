r"""The catapult: the jump that sets a net's period, and the frequency ∝ ηλ it gives.

In a net the jump at a destabilisation is not the small mirror of an overshoot (:mod:`theory.escape`, one unstable
direction): for a few steps ‖g̃‖ stays far above its quiet level and η̃ falls by a large factor, until the angular
step η̃‖g̃‖ has dropped to a landing angle. Three statements, plain SGD (β = 0):

- ``catapult_jump``: the jump's factor ``η̃(e)/η̃(b)`` is the product of the ELR map's factors
  ``(1−ηλ)² + (η̃_t‖g̃_t‖)²`` over the spike's steps, exactly (:data:`theory.sgd.ELR_AFTER_STEP`); shown for a spike
  of :data:`SPIKE_STEPS_SHOWN` steps, and any length follows by the same telescoping;
- ``catapult_period``: if the catapult lands where ``η̃(b)·g_far = θ_land`` (the far-region gradient ``g_far`` and a
  landing angle ``θ_land``), the next destabilisation comes at ``η̃_c``, and the quiet decay grows η̃ as pure weight
  decay slowed by a factor ``s`` (``η̃_t = η̃_b(1−ηλ)^{−2t/s}``), the period is
  ``T = K + s·ln(η̃_c·g_far/θ_land)/(−2 ln(1−ηλ))`` with ``K`` the spike's steps;
- ``catapult_frequency``: then ``(1/T)/ηλ → 2/(s·ln(η̃_c·g_far/θ_land))`` as ηλ → 0: the frequency is ∝ ηλ whenever
  the landscape's constants ``η̃_c, g_far, θ_land, s, K`` do not depend on ηλ. That they do not is a measurement,
  not a derivation (:mod:`analysis.catapult` measures J, the landing angle and s on any run).
"""

from __future__ import annotations

import sympy as sp

from bnwd.theory.sgd import ELR_AFTER_STEP
from bnwd.theory.symbolic import Statement, eff_grad_norm, elr, elr_critical, in_domain, lr, lr_wd, prove, wd

__all__ = [
    "CATAPULT_JUMP",
    "CATAPULT_PERIOD",
    "SPIKE_STEPS_SHOWN",
    "STATEMENTS",
    "catapult_frequency",
    "catapult_jump",
    "catapult_period",
    "far_grad_norm",
    "landing_angle",
    "slowdown",
    "spike_steps",
]

far_grad_norm = sp.Symbol(r"g_{\mathrm{far}}", positive=True)
"""‖g̃‖ far from the minimum, during the spike."""
landing_angle = sp.Symbol(r"\theta_{\mathrm{land}}", positive=True)
"""The angular step η̃‖g̃‖ at which the catapult stops."""
slowdown = sp.Symbol(r"s_{\mathrm{q}}", positive=True)
"""The quiet decay's steps over pure weight decay's, between the same two η̃."""
spike_steps = sp.Symbol(r"K_{\mathrm{spike}}", positive=True)
"""The steps from a destabilisation to η̃'s bottom."""

SPIKE_STEPS_SHOWN = 3
"""The spike length the jump's product is shown for (symbolically, every step's η̃ and ‖g̃‖ free)."""

CATAPULT_JUMP = sp.log(elr_critical * far_grad_norm / landing_angle)
"""J = ln(η̃(e)/η̃(b)) with η̃(e) = η̃_c and the landing η̃(b) = θ_land/g_far."""
CATAPULT_PERIOD = spike_steps + slowdown * CATAPULT_JUMP / (-2 * sp.log(1 - lr * wd))
"""T = K + s·J/(−2 ln(1−ηλ)) (β = 0)."""

_ASSUMPTIONS = "plain SGD with weight decay (β = 0); 0 < ηλ < 1"


def _elr_map_factor(elr_t, grad_t):
    """``(1−ηλ)² + (η̃_t‖g̃_t‖)²``: η̃ before the step over η̃ after it."""
    return (1 - lr * wd) ** 2 + (elr_t * grad_t) ** 2


def catapult_jump() -> Statement:
    r"""``η̃_0/η̃_K = Π_t ((1−ηλ)² + (η̃_t‖g̃_t‖)²)`` over the spike, each η̃_{t+1} by the exact ELR map."""

    def residual():
        grads = sp.symbols(f"g0:{SPIKE_STEPS_SHOWN}", positive=True)
        elrs = [elr]
        for grad in grads:
            elrs.append(ELR_AFTER_STEP.subs({elr: elrs[-1], eff_grad_norm: grad}))
        product = sp.Mul(*(_elr_map_factor(e, g) for e, g in zip(elrs, grads, strict=False)))
        return in_domain(sp.cancel(sp.together(elrs[0] / elrs[-1])) - sp.cancel(sp.together(product)))

    return prove(
        "catapult_jump",
        "A catapult's jump in η̃ is the product of the ELR map's factors over its spike",
        r"\frac{\tilde\eta_e}{\tilde\eta_b} = "
        r"\prod_{t=e}^{b-1}\left((1-\eta\lambda)^2 + \tilde\eta_t^2\|\tilde g_t\|^2\right)",
        _ASSUMPTIONS + f"; shown for a spike of {SPIKE_STEPS_SHOWN} steps, every step's η̃ and ‖g̃‖ free",
        residual,
    )


def catapult_period() -> Statement:
    r"""From the landing ``η̃_b = θ_land/g_far`` to ``η̃_c`` at ``(1−ηλ)^{−2/s}`` a step:
    ``T = K + s·J/(−2 ln(1−ηλ))``."""

    def residual():
        quiet = sp.Symbol("n", positive=True)
        landing = landing_angle / far_grad_norm
        (solution,) = sp.solve(in_domain(landing * (1 - lr * wd) ** (-2 * quiet / slowdown) - elr_critical), quiet)
        return sp.expand_log(solution - in_domain(CATAPULT_PERIOD - spike_steps), force=True)

    return prove(
        "catapult_period",
        "Landing at θ_land/g_far and decaying s times slower than pure weight decay, the period is K + s·J/(2ηλ)",
        r"T = K + \frac{s\,\ln(\tilde\eta_c g_{\mathrm{far}}/\theta_{\mathrm{land}})}{-2\ln(1-\eta\lambda)}",
        _ASSUMPTIONS + "; η̃(b)·g_far = θ_land; the next destabilisation at η̃_c; quiet growth (1−ηλ)^{−2/s} a step",
        residual,
    )


def catapult_frequency() -> Statement:
    r"""``lim_{ηλ→0} (1/T)/ηλ = 2/(s·ln(η̃_c g_far/θ_land))``: with the landscape's constants, frequency ∝ ηλ."""

    def residual():
        frequency = 1 / CATAPULT_PERIOD.subs(wd, lr_wd / lr)
        return sp.limit(frequency / lr_wd, lr_wd, 0, "+") - 2 / (slowdown * CATAPULT_JUMP)

    return prove(
        "catapult_frequency",
        "With the catapult's constants independent of ηλ, the frequency of destabilisations is ∝ ηλ",
        r"\lim_{\eta\lambda\to 0}\frac{1/T}{\eta\lambda} = "
        r"\frac{2}{s\,\ln(\tilde\eta_c g_{\mathrm{far}}/\theta_{\mathrm{land}})}",
        _ASSUMPTIONS + "; η̃_c, g_far, θ_land, s and K do not depend on η and λ (a measured fact, not derived)",
        residual,
    )


STATEMENTS = (catapult_jump, catapult_period, catapult_frequency)
