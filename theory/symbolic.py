"""Symbols, the generic scale-invariant loss, and the machinery that proves a residual is zero.

Every statement of :mod:`theory` is a sympy residual that must vanish identically. Two kinds occur:

* residuals built from a *generic* scale-invariant loss ``L(w) = f(w/‖w‖)`` with ``f`` an undefined
  sympy Function: they contain unknown values of ``f`` and its derivatives, and square roots of
  ``‖w‖²``. :func:`is_identically_zero` names each unknown derivative value by a symbol (two values are
  the same unknown exactly when they are the same derivative of ``f`` at the same point), replaces
  ``‖w‖`` by a symbol ``R`` and reduces the numerator modulo ``R² − ‖w‖²``. What is left is a polynomial
  in independent unknowns, which is zero iff the residual is zero for every ``f``.
* scalar residuals in the optimiser's hyper-parameters: they go through ``sympy.simplify`` after the
  domain substitutions ``ηλ = s/(1+s)``, ``s > 0`` and ``β = 1 − k``, ``k > 0``, which encode ``0 < ηλ < 1``
  and ``β < 1`` as positivity assumptions that sympy can use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp
from sympy.core.function import AppliedUndef

__all__ = [
    "DIM",
    "Statement",
    "at",
    "dot",
    "eff_grad_norm",
    "eff_sharpness",
    "eff_smoothness",
    "elr",
    "elr_critical",
    "elr_start",
    "f",
    "generic_si_loss",
    "grad_norm",
    "gradient",
    "gradient_noise",
    "hessian",
    "in_domain",
    "is_identically_zero",
    "log_amplification",
    "lr",
    "lr_wd",
    "momentum",
    "norm",
    "orthogonal_part",
    "prove",
    "scale",
    "si_norm",
    "wd",
    "weights",
]

DIM = 3
"""Dimension of the generic weight vector. Three is the smallest in which a direction has more than one
tangent degree of freedom, so nothing special to the circle can sneak into a proof."""

# Hyper-parameters and state, with the signs that hold on the whole domain.
lr = sp.Symbol("eta", positive=True)
wd = sp.Symbol("lambda", positive=True)
momentum = sp.Symbol("beta", nonnegative=True)
scale = sp.Symbol("c", positive=True)
si_norm = sp.Symbol("rho", positive=True)
elr = sp.Symbol(r"\tilde{\eta}", positive=True)
grad_norm = sp.Symbol(r"\|\nabla L\|", positive=True)
eff_grad_norm = sp.Symbol(r"\|\tilde{g}\|", positive=True)
eff_sharpness = sp.Symbol(r"\tilde{s}", positive=True)
eff_smoothness = sp.Symbol(r"\tilde{L}", positive=True)
elr_start = sp.Symbol(r"\tilde{\eta}_s", positive=True)
elr_critical = sp.Symbol(r"\tilde{\eta}_c", positive=True)
lr_wd = sp.Symbol(r"\eta\lambda", positive=True)  # the product ηλ where only it matters
log_amplification = sp.Symbol(r"\ln A", positive=True)  # ln of the unstable error's growth before a jump shows
gradient_noise = sp.Symbol(r"\sigma", positive=True)  # gradient noise per direction at unit norm
_domain_s = sp.Symbol("s", positive=True)
_domain_k = sp.Symbol("k", positive=True)

weights = sp.Matrix(sp.symbols(f"w1:{DIM + 1}", real=True))
f = sp.Function("f")

_norm_sq = sum(x**2 for x in weights)
_norm_symbol = sp.Symbol("R", positive=True)


def norm(v: sp.Matrix) -> sp.Expr:
    """Euclidean norm ``‖v‖`` of a column vector."""
    return sp.sqrt((v.T * v)[0])


def dot(u: sp.Matrix, v: sp.Matrix) -> sp.Expr:
    """Inner product ``u·v`` of two column vectors."""
    return (u.T * v)[0]


def generic_si_loss(w: sp.Matrix) -> sp.Expr:
    """The generic scale-invariant loss ``L(w) = f(w/‖w‖)``, ``f`` an undefined function.

    Every scale-invariant function is of this form (take ``f`` = L on the unit sphere), so an identity
    proved for it holds for all of them.
    """
    return f(*(w / norm(w)))


def gradient(expr: sp.Expr, w: sp.Matrix = weights) -> sp.Matrix:
    """Column vector ``∇expr`` with respect to ``w``."""
    return sp.Matrix([sp.diff(expr, x) for x in w])


def hessian(expr: sp.Expr, w: sp.Matrix = weights) -> sp.Matrix:
    """Matrix ``∇²expr`` with respect to ``w``."""
    return gradient(expr, w).jacobian(w)


def at(expr, point: sp.Matrix, w: sp.Matrix = weights):
    """``expr`` with the weights ``w`` replaced by ``point`` (simultaneously)."""
    return expr.subs(dict(zip(w, point, strict=True)), simultaneous=True)


def orthogonal_part(u: sp.Matrix, w: sp.Matrix = weights) -> sp.Matrix:
    """``u − (u·w/‖w‖²) w``: the general vector orthogonal to ``w`` as ``u`` ranges over all vectors."""
    return u - dot(u, w) / dot(w, w) * w


def in_domain(expr, lr_wd_too: bool = True):
    """Encode the domain ``0 < ηλ < 1``, ``0 ≤ β < 1`` as positivity facts that sympy can use.

    Substitutes ``β = 1 − k`` with ``k > 0`` and, unless ``lr_wd_too`` is false (for a series or limit
    in ηλ), ``λ = s/((1+s)η)`` with ``s > 0``.
    """
    expr = expr.subs(momentum, 1 - _domain_k)
    if not lr_wd_too:
        return expr
    product = _domain_s / (1 + _domain_s)
    return expr.subs({wd: product / lr, lr_wd: product})


# --- zero test ---------------------------------------------------------------------------------------


def _halve_sqrt_bases(expr, factor=sp.factor_terms):
    # sqrt(c²w1² + c²w2² + ...) only becomes c·sqrt(w1² + ...) once the c² is factored out.
    return expr.replace(
        lambda e: isinstance(e, sp.Pow) and e.exp.is_Rational and e.exp.q == 2,
        lambda e: sp.Pow(factor(e.base), e.exp),
    )


def _unknown_key(e) -> tuple:
    """(function, derivative multi-index, point) of an unknown value of ``f`` or one of its derivatives."""
    if isinstance(e, sp.Subs):
        inner, variables, point = e.expr, e.variables, e.point
    elif isinstance(e, sp.Derivative):
        inner, variables, point = e, e.expr.args, e.expr.args
    else:
        inner, variables, point = e, e.args, e.args
    if isinstance(inner, sp.Derivative):
        counts = dict(inner.variable_count)
        func = inner.expr.func
        index = tuple(counts.get(v, 0) for v in variables)
    else:
        func, index = inner.func, (0,) * len(variables)
    return func, index, tuple(sp.cancel(_halve_sqrt_bases(p)) for p in point)


def _name_unknowns(expr, names: dict):
    def name(e):
        key = _unknown_key(e)
        return names.setdefault(key, sp.Dummy(f"F{len(names)}"))

    return expr.replace(lambda e: isinstance(e, (sp.Subs, sp.Derivative, AppliedUndef)), name)


def _scalar_is_zero(expr, names: dict) -> bool:
    expr = _halve_sqrt_bases(_name_unknowns(sp.sympify(expr), names))
    if not expr.has(*weights):
        return sp.cancel(expr) == 0 or sp.simplify(_halve_sqrt_bases(in_domain(expr), sp.factor)) == 0
    # ‖w‖ = R with R² = Σw²: reduce the numerator in the quotient ring, where zero means identically zero.
    expr = expr.subs(sp.sqrt(_norm_sq), _norm_symbol).subs(_norm_sq, _norm_symbol**2)
    numerator = sp.expand(sp.numer(sp.together(expr)))
    reduced = sp.rem(numerator, _norm_symbol**2 - _norm_sq, _norm_symbol)
    return sp.expand(reduced) == 0


def is_identically_zero(residual) -> bool:
    """True iff ``residual`` (a sympy expression or matrix) vanishes for every admissible input.

    Unknown values of the undefined ``f`` are independent unknowns, ``‖w‖ > 0`` and ``0 < ηλ < 1``.
    """
    entries = residual if isinstance(residual, sp.MatrixBase) else [residual]
    names: dict = {}
    return all(_scalar_is_zero(e, names) for e in entries)


# --- records -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One verified statement of the theory.

    Attributes
    ----------
    name : str
        Identifier, e.g. ``"gradient_scaling"``.
    title : str
        One line in words.
    latex : str
        The statement in LaTeX.
    assumptions : str
        What the derivation assumes, in words.
    residual : sympy.Expr or sympy.Matrix
        Left side minus right side, built from the derivation; zero iff the statement holds.
    verified : bool
        Whether ``residual`` was proved identically zero.
    seconds : float
        Time the proof took.
    """

    name: str
    title: str
    latex: str
    assumptions: str
    residual: object
    verified: bool
    seconds: float

    def to_json(self) -> dict:
        """Plain-JSON view: the residual as sympy's string form and as LaTeX."""
        return {
            "name": self.name,
            "title": self.title,
            "latex": self.latex,
            "assumptions": self.assumptions,
            "residual": str(self.residual),
            "residual_latex": sp.latex(self.residual),
            "verified": self.verified,
            "seconds": round(self.seconds, 3),
        }


def prove(name: str, title: str, latex: str, assumptions: str, residual_of: Callable[[], object]) -> Statement:
    """Build the residual with ``residual_of()``, test it with :func:`is_identically_zero`, time both."""
    start = time.perf_counter()
    residual = residual_of()
    verified = is_identically_zero(residual)
    return Statement(name, title, latex, assumptions, residual, verified, time.perf_counter() - start)
