"""bnwd's theory: every formula derived once in sympy, verified, and exported as a numpy function.

``derive_all()`` proves every statement and returns their records; the numeric functions below are the
lambdified formulas of those statements, with domain checks (see :mod:`theory.numeric`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from bnwd.theory import equilibrium, escape, period, scale_invariance, sgd, stability, symmetry
from bnwd.theory.numeric import (
    angular_update,
    critical_elr,
    critical_si_norm,
    descent_si_norm,
    effective_grad_norm,
    effective_lr,
    elr_after_step,
    equilibrium_angular_update,
    equilibrium_angular_update_leading,
    equilibrium_elr,
    equilibrium_si_norm,
    escape_angle,
    escape_delay,
    monotone_decay,
    noise_floor,
    norm_decay_factor,
    period_length,
    period_length_leading,
    plane_period,
    si_norm_after_step,
    stability_threshold,
    symmetric_config,
    validate,
    whole_period,
)
from bnwd.theory.symbolic import Statement

STATEMENTS: tuple[Callable[[], Statement], ...] = (
    *scale_invariance.STATEMENTS,
    *sgd.STATEMENTS,
    *equilibrium.STATEMENTS,
    *symmetry.STATEMENTS,
    *stability.STATEMENTS,
    *period.STATEMENTS,
    *escape.STATEMENTS,
)
"""Every statement of the theory, in reading order; calling one proves it."""


def derive_all() -> Iterator[Statement]:
    """Prove each statement in :data:`STATEMENTS` in turn, yielding its record as soon as it is done."""
    return (statement() for statement in STATEMENTS)


__all__ = [
    "STATEMENTS",
    "Statement",
    "angular_update",
    "critical_elr",
    "critical_si_norm",
    "derive_all",
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
