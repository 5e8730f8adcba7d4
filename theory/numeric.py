"""The derived formulas as numpy functions: what ``simulate``, ``empirical`` and ``paper_checks`` call.

Each function is ``sympy.lambdify`` of the very expression whose statement :mod:`theory` proves, wrapped
with a check of its domain. Arguments broadcast like numpy ufuncs (float64); a value outside the domain,
or a non-finite one, raises ``ValueError`` naming the domain.

Symbols: η learning rate (``lr``), λ weight decay (``wd``), β heavy-ball momentum (``momentum``), ρ norm of
the scale-invariant weights (``si_norm``), ∇L their gradient, η̃ = η/ρ² the effective learning rate
(``elr``), g̃ = ρ∇L the effective gradient, s̃ the effective sharpness (top Hessian eigenvalue at unit norm).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy as sp

from bnwd.theory import catapult, equilibrium, escape, period, sgd, stability, symmetry
from bnwd.theory import symbolic as s

__all__ = [
    "angular_update",
    "catapult_period",
    "critical_elr",
    "critical_si_norm",
    "descent_si_norm",
    "effective_grad_norm",
    "effective_lr",
    "elr_after_step",
    "equilibrium_angular_update",
    "equilibrium_angular_update_leading",
    "equilibrium_elr",
    "equilibrium_si_norm",
    "escape_angle",
    "escape_delay",
    "monotone_decay",
    "noise_floor",
    "norm_decay_factor",
    "period_length",
    "period_length_leading",
    "plane_period",
    "si_norm_after_step",
    "stability_threshold",
    "symmetric_config",
    "validate",
    "whole_period",
]

_PREDICATES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "> 0": lambda a: a > 0,
    ">= 0": lambda a: a >= 0,
    "in [0, 1)": lambda a: (a >= 0) & (a < 1),
}
_DOMAIN = {
    "lr": "> 0",
    "wd": ">= 0",
    "momentum": "in [0, 1)",
    "si_norm": "> 0",
    "grad_norm": ">= 0",
    "elr": "> 0",
    "eff_grad_norm": ">= 0",
    "eff_sharpness": "> 0",
    "eff_smoothness": "> 0",
    "elr_start": "> 0",
    "elr_critical": "> 0",
    "scale": "> 0",
    "log_amplification": "> 0",
    "gradient_noise": "> 0",
    "far_grad_norm": "> 0",
    "landing_angle": "> 0",
    "slowdown": "> 0",
    "spike_steps": ">= 0",
}


def validate(strict: tuple[str, ...] = (), **named) -> list[np.ndarray]:
    """Check every argument against its domain and return them as float64 arrays, in order.

    Domains by name: lr > 0, wd ≥ 0, momentum in [0, 1), norms, effective learning rates, sharpness > 0,
    gradient norms ≥ 0; the names in ``strict`` must be > 0; with lr and wd, ``lr·wd < 1``. Raises ValueError
    naming the argument and its domain.
    """
    arrays = {}
    for name, value in named.items():
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a real number or array of them; got {value!r}") from None
        domain = "> 0" if name in strict else _DOMAIN[name]
        bad = ~(np.isfinite(array) & _PREDICATES[domain](array))
        if bad.any():
            raise ValueError(f"{name} must be finite and {domain}; got {array[bad].flat[0].item()!r}")
        arrays[name] = array
    if "lr" in arrays and "wd" in arrays:
        with np.errstate(over="ignore"):  # a product beyond the floats is inf, refused below like any ηλ ≥ 1
            product = arrays["lr"] * arrays["wd"]
        if (product >= 1).any():
            raise ValueError(f"lr * wd must be < 1 (0 <= ηλ < 1); got {product[product >= 1].flat[0].item()!r}")
    return list(arrays.values())


def monotone_decay(lr, wd, momentum) -> np.ndarray:
    """Whether the norm decays monotonically with zero gradient, ``ηλ ≤ (1 − √β)²``: above it the decay has
    complex roots and the norm oscillates as it shrinks, and the momentum formulas do not apply. Broadcasts."""
    return np.asarray(lr) * np.asarray(wd) <= (1 - np.sqrt(momentum)) ** 2


def _monotone_decay(lr: np.ndarray, wd: np.ndarray, momentum: np.ndarray) -> None:
    if not monotone_decay(lr, wd, momentum).all():
        raise ValueError("lr * wd must be <= (1 - sqrt(momentum))**2 for a monotone norm decay")


def _lambdify(expr, *symbols: sp.Symbol) -> Callable[..., np.ndarray]:
    return sp.lambdify(symbols, expr, modules="numpy", dummify=True)


_effective_lr = _lambdify(sgd.EFFECTIVE_LR, s.lr, s.si_norm)
_effective_grad_norm = _lambdify(sgd.EFFECTIVE_GRAD_NORM, s.grad_norm, s.si_norm)
_si_norm_after_step = _lambdify(sgd.SI_NORM_AFTER_STEP, s.si_norm, s.grad_norm, s.lr, s.wd)
_elr_after_step = _lambdify(sgd.ELR_AFTER_STEP, s.elr, s.eff_grad_norm, s.lr, s.wd)
_angular_update = _lambdify(sgd.ANGULAR_UPDATE, s.elr, s.eff_grad_norm, s.lr, s.wd)
_equilibrium_si_norm = _lambdify(equilibrium.EQUILIBRIUM_SI_NORM, s.eff_grad_norm, s.lr, s.wd)
_equilibrium_elr = _lambdify(equilibrium.EQUILIBRIUM_ELR, s.eff_grad_norm, s.lr, s.wd)
_equilibrium_angle = _lambdify(equilibrium.EQUILIBRIUM_ANGULAR_UPDATE, s.lr, s.wd, s.momentum)
_equilibrium_angle_leading = _lambdify(equilibrium.EQUILIBRIUM_ANGULAR_UPDATE_LEADING, s.lr, s.wd, s.momentum)
_critical_elr = _lambdify(stability.CRITICAL_ELR, s.eff_sharpness, s.lr, s.wd)
_critical_si_norm = _lambdify(stability.CRITICAL_SI_NORM, s.eff_sharpness, s.lr, s.wd)
_stability_threshold = _lambdify(stability.STABILITY_THRESHOLD, s.lr, s.wd, s.momentum)
_descent_si_norm = _lambdify(stability.DESCENT_SI_NORM, s.eff_smoothness, s.lr, s.wd)
_norm_decay_factor = _lambdify(period.NORM_DECAY_FACTOR, s.lr, s.wd, s.momentum)
_period_length = _lambdify(period.PERIOD_LENGTH, s.elr_start, s.elr_critical, s.lr, s.wd, s.momentum)
_period_length_leading = _lambdify(period.PERIOD_LENGTH_LEADING, s.elr_start, s.elr_critical, s.lr, s.wd, s.momentum)
_escape_delay = _lambdify(escape.ESCAPE_DELAY, s.log_amplification, s.lr, s.wd)
_whole_period = _lambdify(escape.WHOLE_PERIOD, s.elr_start, s.elr_critical, s.log_amplification, s.lr, s.wd)
_plane_period = _lambdify(escape.PLANE_PERIOD, s.log_amplification, s.lr, s.wd)
_catapult_period = _lambdify(
    catapult.CATAPULT_PERIOD,
    s.elr_critical,
    catapult.far_grad_norm,
    catapult.landing_angle,
    catapult.slowdown,
    catapult.spike_steps,
    s.lr,
    s.wd,
)
_escape_angle = _lambdify(escape.ESCAPE_ANGLE, s.lr, s.wd)
_noise_floor = _lambdify(escape.NOISE_FLOOR, s.eff_sharpness, s.gradient_noise, s.lr, s.wd)
_symmetric_config = _lambdify(symmetry.SYMMETRIC_CONFIG, s.lr, s.wd, s.si_norm, s.scale)


def effective_lr(lr, si_norm):
    """Effective learning rate ``η̃ = η/ρ²``.

    Parameters
    ----------
    lr : array_like
        Learning rate η > 0.
    si_norm : array_like
        Norm ρ > 0 of the scale-invariant weights.

    Returns
    -------
    ndarray
        η̃, broadcast over the inputs.
    """
    return _effective_lr(*validate(lr=lr, si_norm=si_norm))


def effective_grad_norm(grad_norm, si_norm):
    """Norm of the effective gradient ``‖g̃‖ = ρ‖∇L(w)‖`` (the gradient at the unit-norm point w/ρ).

    Parameters
    ----------
    grad_norm : array_like
        ‖∇L(w)‖ ≥ 0 with respect to the scale-invariant weights.
    si_norm : array_like
        ρ > 0.
    """
    return _effective_grad_norm(*validate(grad_norm=grad_norm, si_norm=si_norm))


def si_norm_after_step(si_norm, grad_norm, lr, wd):
    """Exact norm after one SGD step with coupled weight decay: ``ρ⁺ = √((1−ηλ)²ρ² + η²‖∇L‖²)``.

    Parameters
    ----------
    si_norm : array_like
        ρ > 0 before the step.
    grad_norm : array_like
        ‖∇L(w)‖ ≥ 0 of the (minibatch) loss at the step.
    lr, wd : array_like
        η > 0, λ ≥ 0 with ηλ < 1.
    """
    return _si_norm_after_step(*validate(si_norm=si_norm, grad_norm=grad_norm, lr=lr, wd=wd))


def elr_after_step(elr, eff_grad_norm, lr, wd):
    """Exact map of the effective learning rate: ``η̃⁺ = η̃ / ((1−ηλ)² + η̃²‖g̃‖²)``.

    Parameters
    ----------
    elr : array_like
        η̃ > 0 before the step.
    eff_grad_norm : array_like
        ‖g̃‖ ≥ 0 at the step.
    lr, wd : array_like
        η > 0, λ ≥ 0 with ηλ < 1.
    """
    return _elr_after_step(*validate(elr=elr, eff_grad_norm=eff_grad_norm, lr=lr, wd=wd))


def angular_update(elr, eff_grad_norm, lr, wd):
    """Angle (radians) between ``w`` and ``w⁺`` in one SGD step: ``θ = arctan(η̃‖g̃‖/(1−ηλ))``.

    Parameters
    ----------
    elr : array_like
        η̃ > 0.
    eff_grad_norm : array_like
        ‖g̃‖ ≥ 0.
    lr, wd : array_like
        η > 0, λ ≥ 0 with ηλ < 1.
    """
    return _angular_update(*validate(elr=elr, eff_grad_norm=eff_grad_norm, lr=lr, wd=wd))


def equilibrium_si_norm(eff_grad_norm, lr, wd):
    """Norm at which gradients and weight decay balance: ``ρ* = (η‖g̃‖²/(λ(2−ηλ)))^{1/4}``.

    Parameters
    ----------
    eff_grad_norm : array_like
        ‖g̃‖ > 0, held constant (for SGD: the root mean square over minibatches).
    lr, wd : array_like
        η > 0, λ > 0 with ηλ < 1.
    """
    return _equilibrium_si_norm(*validate(("eff_grad_norm", "wd"), eff_grad_norm=eff_grad_norm, lr=lr, wd=wd))


def equilibrium_elr(eff_grad_norm, lr, wd):
    """Effective learning rate at equilibrium: ``η̃* = √(ηλ(2−ηλ))/‖g̃‖``.

    The equilibrium line of the phase diagram (η̃ against ‖g̃‖) is ``η̃‖g̃‖ = √(ηλ(2−ηλ))``.

    Parameters
    ----------
    eff_grad_norm : array_like
        ‖g̃‖ > 0.
    lr, wd : array_like
        η > 0, λ > 0 with ηλ < 1.
    """
    return _equilibrium_elr(*validate(("eff_grad_norm", "wd"), eff_grad_norm=eff_grad_norm, lr=lr, wd=wd))


def equilibrium_angular_update(lr, wd, momentum=0.0):
    """Angular update per step at equilibrium (a steady state): ``θ* = arccos(1 − ηλ/(1+β))``.

    Equal to ``√(2ηλ/(1+β))·(1 + ηλ/(12(1+β)) + O((ηλ)²))``; exact for β = 0.

    Parameters
    ----------
    lr, wd : array_like
        η > 0, λ ≥ 0 with ηλ < 1.
    momentum : array_like
        β in [0, 1) (torch's heavy ball, no dampening).
    """
    return _equilibrium_angle(*validate(lr=lr, wd=wd, momentum=momentum))


def equilibrium_angular_update_leading(lr, wd, momentum=0.0):
    """Leading order of the equilibrium angular update: ``θ* ≈ √(2ηλ/(1+β))``.

    Parameters
    ----------
    lr, wd : array_like
        η > 0, λ ≥ 0 with ηλ < 1.
    momentum : array_like
        β in [0, 1).
    """
    return _equilibrium_angle_leading(*validate(lr=lr, wd=wd, momentum=momentum))


def critical_elr(eff_sharpness, lr, wd):
    """Effective learning rate above which GD leaves a minimum: ``η̃_c = 2(1−ηλ)/s̃``.

    Parameters
    ----------
    eff_sharpness : array_like
        s̃ > 0, the top Hessian eigenvalue of the loss at unit norm (ρ²·λ_max(H(w))).
    lr, wd : array_like
        η > 0, λ ≥ 0 with ηλ < 1.
    """
    return _critical_elr(*validate(eff_sharpness=eff_sharpness, lr=lr, wd=wd))


def stability_threshold(lr, wd, momentum=0.0):
    """η̃·s̃ above which SGD leaves a minimum: ``(1+z₊)(z₊+β)/z₊ − ηλ`` with z₊ the norm's decay factor
    (:func:`norm_decay_factor`); ``2(1−ηλ)`` without momentum, ``≈ 2(1+β)`` for small ηλ.

    Parameters
    ----------
    lr, wd : array_like
        η > 0, λ ≥ 0 with ηλ < 1.
    momentum : array_like
        β in [0, 1), with ηλ ≤ (1−√β)² (a monotone norm decay).

    Returns
    -------
    ndarray
        The threshold, broadcast over the inputs.
    """
    lr, wd, momentum = validate(lr=lr, wd=wd, momentum=momentum)
    _monotone_decay(lr, wd, momentum)
    return _stability_threshold(lr, wd, momentum)


def escape_delay(log_amplification, lr, wd):
    """Steps from the crossing of η̃·s̃ = 2(1−ηλ) until the unstable error has grown by A (GD, β = 0):
    ``K = (1 + √(1 + 2 ln A/ηλ))/2 ≈ √(ln A/(2ηλ))``, accurate while ηλK ≪ 1.

    Parameters
    ----------
    log_amplification : array_like
        ln A > 0, the growth the error needs from its floor (noise, or the depth of convergence) to where the jump
        shows (:func:`escape_angle`).
    lr, wd : array_like
        η > 0, λ > 0 with ηλ < 1.
    """
    log_amplification, lr, wd = validate(("wd",), log_amplification=log_amplification, lr=lr, wd=wd)
    return _escape_delay(log_amplification, lr, wd)


def whole_period(elr_start, elr_critical, log_amplification, lr, wd):
    """The period with its escape delay (GD, β = 0): ``ln(η̃_c/η̃_s)/(−2 ln(1−ηλ)) + escape_delay``.

    Parameters
    ----------
    elr_start, elr_critical : array_like
        η̃ after a jump and at the threshold, ``0 < η̃_s ≤ η̃_c``.
    log_amplification : array_like
        ln A > 0 (:func:`escape_delay`).
    lr, wd : array_like
        η > 0, λ > 0 with ηλ < 1.
    """
    elr_start, elr_critical, lr, wd, _ = _validate_period(elr_start, elr_critical, lr, wd, 0.0)
    (log_amplification,) = validate(log_amplification=log_amplification)
    return _whole_period(elr_start, elr_critical, log_amplification, lr, wd)


def plane_period(log_amplification, lr, wd):
    """The whole period when one direction destabilises (GD, β = 0), predicted from ln A and ηλ alone:
    ``T = 2K = 1 + √(1 + 2 ln A/ηλ) ≈ √(2 ln A/ηλ)`` (:func:`theory.escape.plane_period`), the escape delay
    :func:`escape_delay` twice, since the jump's reset of η̃ mirrors its overshoot.

    Parameters
    ----------
    log_amplification : array_like
        ln A > 0, the growth the error needs from its floor to the jump: ``ln(escape_angle/noise_floor)`` for
        gradient noise.
    lr, wd : array_like
        η > 0, λ > 0 with ηλ < 1.
    """
    log_amplification, lr, wd = validate(("wd",), log_amplification=log_amplification, lr=lr, wd=wd)
    return _plane_period(log_amplification, lr, wd)


def catapult_period(elr_critical, far_grad_norm, landing_angle, slowdown, spike_steps, lr, wd):
    """The period a catapult sets (GD, β = 0): ``T = K + s·ln(η̃_c·g_far/θ_land)/(−2 ln(1−ηλ))``
    (:func:`theory.catapult.catapult_period`): the spike's K steps, then the quiet decay, s times slower than pure
    weight decay, from the landing η̃ = θ_land/g_far up to η̃_c.

    Parameters
    ----------
    elr_critical : array_like
        η̃_c > 0, where the next destabilisation comes.
    far_grad_norm, landing_angle : array_like
        g_far > 0 and θ_land > 0 with ``η̃_c·g_far ≥ θ_land`` (the landing below η̃_c).
    slowdown : array_like
        s > 0 (1: pure weight decay).
    spike_steps : array_like
        K ≥ 0.
    lr, wd : array_like
        η > 0, λ > 0 with ηλ < 1.
    """
    elr_critical, far_grad_norm, landing_angle, slowdown, spike_steps, lr, wd = validate(
        ("wd",),
        elr_critical=elr_critical,
        far_grad_norm=far_grad_norm,
        landing_angle=landing_angle,
        slowdown=slowdown,
        spike_steps=spike_steps,
        lr=lr,
        wd=wd,
    )
    if np.any(elr_critical * far_grad_norm < landing_angle):
        raise ValueError("elr_critical * far_grad_norm must be >= landing_angle (the landing below η̃_c)")
    return _catapult_period(elr_critical, far_grad_norm, landing_angle, slowdown, spike_steps, lr, wd)


def escape_angle(lr, wd):
    """The angle to the minimum at which η̃ peaks and the jump shows (GD, β = 0): ``θ_e = arccos(1−ηλ)/2``, half
    the equilibrium angular update (:func:`theory.escape.escape_angle`).

    Parameters
    ----------
    lr, wd : array_like
        η > 0, λ ≥ 0 with ηλ < 1.
    """
    lr, wd = validate(lr=lr, wd=wd)
    return _escape_angle(lr, wd)


def noise_floor(eff_sharpness, gradient_noise, lr, wd):
    """The error gradient noise leaves the unstable direction at the crossing, as a geometric mean (GD, β = 0):
    ``θ_f = (2σ/s̃)(π/4ηλ)^{1/4} e^{−(γ+ln 2)/2}`` (:func:`theory.escape.noise_floor`).

    Parameters
    ----------
    eff_sharpness : array_like
        s̃ > 0.
    gradient_noise : array_like
        σ > 0, per direction at unit norm (the Rayleigh toy's ``noise``).
    lr, wd : array_like
        η > 0, λ > 0 with ηλ < 1.
    """
    eff_sharpness, gradient_noise, lr, wd = validate(
        ("wd",), eff_sharpness=eff_sharpness, gradient_noise=gradient_noise, lr=lr, wd=wd
    )
    return _noise_floor(eff_sharpness, gradient_noise, lr, wd)


def critical_si_norm(eff_sharpness, lr, wd):
    """Norm below which GD leaves a minimum: ``ρ_c = √(ηs̃/(2(1−ηλ)))``.

    Parameters
    ----------
    eff_sharpness : array_like
        s̃ > 0.
    lr, wd : array_like
        η > 0, λ ≥ 0 with ηλ < 1.
    """
    return _critical_si_norm(*validate(eff_sharpness=eff_sharpness, lr=lr, wd=wd))


def descent_si_norm(eff_smoothness, lr, wd):
    """Norm above which every GD step decreases the loss: ``ρ_d = √(ηL̃/(2(1−ηλ)))``.

    Parameters
    ----------
    eff_smoothness : array_like
        L̃ > 0, the supremum of ‖H‖ over the unit sphere.
    lr, wd : array_like
        η > 0, λ ≥ 0 with ηλ < 1.
    """
    return _descent_si_norm(*validate(eff_smoothness=eff_smoothness, lr=lr, wd=wd))


def norm_decay_factor(lr, wd, momentum=0.0):
    """Per-step factor of the norm when gradients vanish: ``z₊ = ((1+β−ηλ) + √((1+β−ηλ)² − 4β))/2``.

    ``1 − ηλ`` without momentum; ``1 − ηλ/(1−β) + O((ηλ)²)`` with it.

    Parameters
    ----------
    lr, wd : array_like
        η > 0, λ ≥ 0 with ηλ ≤ (1 − √β)² (so that the decay is monotone; always true when β = 0).
    momentum : array_like
        β in [0, 1).
    """
    values = validate(lr=lr, wd=wd, momentum=momentum)
    _monotone_decay(*values)
    return _norm_decay_factor(*values)


def _validate_period(elr_start, elr_critical, lr, wd, momentum):
    values = validate(("wd",), elr_start=elr_start, elr_critical=elr_critical, lr=lr, wd=wd, momentum=momentum)
    _monotone_decay(*values[2:])
    if (values[0] > values[1]).any():
        raise ValueError("elr_critical must be >= elr_start (the period is the time for η̃ to grow)")
    return values


def period_length(elr_start, elr_critical, lr, wd, momentum=0.0):
    """Steps for η̃ to grow from η̃_s to η̃_c by pure decay: ``T = ln(η̃_c/η̃_s)/(−2 ln z₊)``.

    With β = 0, ``z₊ = 1 − ηλ`` and ``T = ln(η̃_c/η̃_s)/(−2 ln(1−ηλ))``. Not rounded to whole steps.

    Parameters
    ----------
    elr_start : array_like
        η̃_s > 0, the effective learning rate right after a destabilisation.
    elr_critical : array_like
        η̃_c ≥ η̃_s, e.g. :func:`critical_elr` of the minimum's effective sharpness.
    lr, wd : array_like
        η > 0, λ > 0 with ηλ ≤ (1 − √β)².
    momentum : array_like
        β in [0, 1).
    """
    return _period_length(*_validate_period(elr_start, elr_critical, lr, wd, momentum))


def period_length_leading(elr_start, elr_critical, lr, wd, momentum=0.0):
    """Leading order of the period: ``T ≈ (1−β)·ln(η̃_c/η̃_s)/(2ηλ)``.

    For β = 0 it overestimates :func:`period_length` by the factor ``1 + ηλ/2 + (ηλ)²/3 + …``.

    Parameters
    ----------
    elr_start, elr_critical, lr, wd, momentum : array_like
        As in :func:`period_length`.
    """
    return _period_length_leading(*_validate_period(elr_start, elr_critical, lr, wd, momentum))


def symmetric_config(lr, wd, si_norm, scale):
    """The configuration with identical directions: ``(η', λ', ρ₀') = (cη, λ/c, √c·ρ₀)``.

    Parameters
    ----------
    lr, wd : array_like
        η > 0, λ ≥ 0 with ηλ < 1.
    si_norm : array_like
        Initial norm ρ₀ > 0.
    scale : array_like
        c > 0.

    Returns
    -------
    tuple of ndarray
        ``(lr', wd', si_norm')``.
    """
    return tuple(np.broadcast_arrays(*_symmetric_config(*validate(lr=lr, wd=wd, si_norm=si_norm, scale=scale))))
