"""bnwd's theory: every formula derived once in sympy, verified, and exported as a numpy function.

``derive_all()`` proves every statement and returns their records; the numeric functions below are the
lambdified formulas of those statements, with domain checks (see :mod:`theory.numeric`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from bnwd.theory import catapult, equilibrium, escape, numeric, period, scale_invariance, sgd, stability, symmetry
from bnwd.theory.numeric import *  # noqa: F403  (the package is numeric's public face)
from bnwd.theory.symbolic import Statement

STATEMENTS: tuple[Callable[[], Statement], ...] = (
    *scale_invariance.STATEMENTS,
    *sgd.STATEMENTS,
    *equilibrium.STATEMENTS,
    *symmetry.STATEMENTS,
    *stability.STATEMENTS,
    *period.STATEMENTS,
    *escape.STATEMENTS,
    *catapult.STATEMENTS,
)
"""Every statement of the theory, in reading order; calling one proves it."""


def derive_all() -> Iterator[Statement]:
    """Prove each statement in :data:`STATEMENTS` in turn, yielding its record as soon as it is done."""
    return (statement() for statement in STATEMENTS)


__all__ = ["STATEMENTS", "Statement", "derive_all", *numeric.__all__]
