"""When gradient descent on scale-invariant weights is stable: the two norm thresholds.

* Instability at a minimum. Near a minimum ŵ* on the unit sphere with effective sharpness
  ``s̃ = λ_max(H(ŵ*))`` (the top eigenvalue at unit norm, tangent to the sphere since ``H(ŵ*)ŵ* = 0``), the
  direction's error along the top eigendirection is multiplied by ``1 − η̃s̃/(1−ηλ)`` per step. The
  derivation runs in the plane of ŵ* and that eigendirection, where every scale-invariant loss is
  ``φ(angle)``; the other eigendirections decouple at linear order.
* With heavy-ball momentum β (torch's SGD), the same linearisation in the top direction is a two-step recurrence;
  the direction leaves the minimum once its growth outpaces the norm's decay ``z₊`` (:mod:`theory.period`), at
  ``η̃s̃ = (1+z₊)(z₊+β)/z₊ − ηλ``: ``2(1−ηλ)`` at β = 0 and ``2(1+β)`` at leading order.
* Guaranteed descent. With ``L̃ = sup_{‖u‖=1} ‖H(u)‖`` (effective smoothness), the loss cannot increase
  while ``η̃L̃ < 2(1−ηλ)``.
"""

from __future__ import annotations

import sympy as sp

from bnwd.theory.period import NORM_DECAY_FACTOR, decay_matrix
from bnwd.theory.sgd import EFFECTIVE_LR
from bnwd.theory.symbolic import (
    Statement,
    dot,
    eff_sharpness,
    eff_smoothness,
    generic_si_loss,
    gradient,
    in_domain,
    lr,
    lr_wd,
    momentum,
    norm,
    prove,
    si_norm,
    wd,
    weights,
)

__all__ = [
    "CRITICAL_ELR",
    "CRITICAL_SI_NORM",
    "DESCENT_SI_NORM",
    "STABILITY_THRESHOLD",
    "STATEMENTS",
    "descent_guarantee",
    "minimum_instability",
    "momentum_instability",
]

CRITICAL_ELR = 2 * (1 - lr * wd) / eff_sharpness
"""η̃_c = 2(1−ηλ)/s̃: GD leaves a minimum of effective sharpness s̃ once η̃ exceeds it."""
CRITICAL_SI_NORM = sp.sqrt(lr * eff_sharpness / (2 * (1 - lr * wd)))
"""ρ_c = √(ηs̃ / (2(1−ηλ))): the same threshold as a norm (unstable below it)."""
DESCENT_SI_NORM = sp.sqrt(lr * eff_smoothness / (2 * (1 - lr * wd)))
"""ρ_d = √(ηL̃ / (2(1−ηλ))): above it every step decreases the loss."""

_z = sp.Symbol("z", positive=True)  # the norm's decay factor z₊ per step, before it is replaced by its root
STABILITY_THRESHOLD = ((1 + _z) * (_z + momentum) / _z - lr * wd).subs(_z, NORM_DECAY_FACTOR)
"""η̃·s̃ at which heavy-ball SGD (momentum β) leaves a minimum: (1+z₊)(z₊+β)/z₊ − ηλ, z₊ the norm's decay factor;
2(1−ηλ) at β = 0."""

_angle = sp.Symbol("theta", real=True)
_phi = sp.Function("phi")


def minimum_instability() -> Statement:
    r"""The angular error multiplier at a minimum is ``1 − η̃s̃/(1−ηλ)``; unstable iff ``η̃s̃ > 2(1−ηλ)``."""

    def residual():
        x, y = sp.symbols("x y", real=True)
        loss = _phi(sp.atan2(y, x))  # every scale-invariant loss in the plane
        grad = gradient(loss, sp.Matrix([x, y]))
        hess = grad.jacobian([x, y])
        on_circle = {x: si_norm * sp.cos(_angle), y: si_norm * sp.sin(_angle)}

        def along_circle(expr):
            return expr.subs(on_circle).replace(sp.atan2, lambda _y, _x: _angle)

        point = sp.Matrix([on_circle[x], on_circle[y]])
        step = (1 - lr * wd) * point - lr * along_circle(grad)
        next_angle = sp.atan2(step[1], step[0])
        minimum = {sp.Derivative(_phi(_angle), (_angle, 2)): eff_sharpness, sp.Derivative(_phi(_angle), _angle): 0}
        multiplier = sp.diff(next_angle, _angle).doit().subs(minimum).subs(_angle, 0)
        unit_hessian = along_circle(hess).doit().subs(minimum).subs({_angle: 0, si_norm: 1})
        (rho_c,) = sp.solve(in_domain(multiplier + 1), si_norm)
        elr = EFFECTIVE_LR
        return sp.Matrix(
            [
                multiplier - (1 - elr * eff_sharpness / (1 - lr * wd)),
                rho_c - in_domain(CRITICAL_SI_NORM),
                elr.subs(si_norm, CRITICAL_SI_NORM) - CRITICAL_ELR,
            ]
        ).col_join((unit_hessian - sp.diag(0, eff_sharpness)).reshape(4, 1))

    return prove(
        "minimum_instability",
        "GD leaves a minimum once the effective learning rate times the effective sharpness passes 2(1−ηλ)",
        r"\delta_{+} = \Bigl(1 - \frac{\tilde\eta\,\tilde s}{1-\eta\lambda}\Bigr)\delta,\quad"
        r"\text{unstable} \iff \tilde\eta\,\tilde s > 2(1-\eta\lambda)"
        r" \iff \rho^2 < \frac{\eta\,\tilde s}{2(1-\eta\lambda)}",
        "GD with coupled weight decay, linearised at a minimum ŵ* of the loss on the sphere; s̃ = top eigenvalue "
        "of H(ŵ*); 0 < ηλ < 1",
        residual,
    )


def momentum_instability() -> Statement:
    r"""With momentum the top direction leaves a minimum once ``η̃s̃ > (1+z₊)(z₊+β)/z₊ − ηλ``.

    Linearised at a minimum, the component ``e`` of the weights along the top eigendirection (curvature s̃/ρ² at
    norm ρ, plus λ from the decay) and its buffer follow torch's heavy ball: ``b⁺ = βb + (s̃/ρ² + λ)e``,
    ``e⁺ = e − ηb⁺``, the norm's own recurrence with λ replaced by ``s̃/ρ² + λ`` (:func:`theory.period.decay_matrix`).
    The angle is ``e/ρ`` and ρ shrinks by z₊ per step, so the direction is unstable once a root of the tangent
    recurrence exceeds z₊ in magnitude. Raising s̃ moves the roots apart along the real line until the smaller
    reaches ``−z₊``: solving the characteristic polynomial there for ``η̃s̃ = ηs̃/ρ²`` gives the threshold. It
    reduces to ``2(1−ηλ)`` without momentum and to ``2(1+β)`` as ηλ → 0 (heavy ball's ``2(1+β)/η`` on the
    sphere). The other root, ``−β/z₊``, is inside ``z₊`` wherever the norm decays monotonically.
    """

    def residual():
        curvature = sp.Symbol("a", positive=True)  # s̃/ρ² + λ
        tangent = decay_matrix(curvature)
        at_minus_z = tangent.charpoly(sp.Symbol("x")).as_expr().subs(sp.Symbol("x"), -_z)  # a root at −z₊
        (solved,) = sp.solve(at_minus_z, curvature)
        threshold = lr * solved - lr * wd  # η(s̃/ρ² + λ) − ηλ = η̃s̃
        x = sp.Symbol("x")
        at_threshold = tangent.subs(curvature, solved).charpoly(x).as_expr()
        plain = STABILITY_THRESHOLD.subs(momentum, 0)
        leading = sp.limit(in_domain(STABILITY_THRESHOLD.subs(wd, lr_wd / lr), lr_wd_too=False), lr_wd, 0, "+")
        return sp.Matrix(
            [
                threshold - ((1 + _z) * (_z + momentum) / _z - lr * wd),
                at_threshold - (x + _z) * (x + momentum / _z),  # the roots there: −z₊ and −β/z₊
                in_domain(plain - 2 * (1 - lr * wd)),
                leading - 2 * (1 + momentum),
            ]
        )

    return prove(
        "momentum_instability",
        "With heavy-ball momentum, SGD leaves a minimum once η̃ s̃ passes (1+z₊)(z₊+β)/z₊ − ηλ",
        r"\tilde\eta\,\tilde s > \frac{(1+z_{+})(z_{+}+\beta)}{z_{+}} - \eta\lambda"
        r" = 2(1-\eta\lambda)\ (\beta = 0),\quad \to 2(1+\beta)\ (\eta\lambda \to 0)",
        "torch's SGD with momentum β and coupled weight decay, linearised at a minimum ŵ* on the sphere; s̃ = top "
        "eigenvalue of H(ŵ*); z₊ the norm's decay factor with zero gradient; 0 ≤ β < 1, 0 < ηλ ≤ (1−√β)²",
        residual,
    )


def descent_guarantee() -> Statement:
    r"""``L(w⁺) ≤ L(w) − η'‖∇L‖²(1 − η'L̃/(2ρ²))`` with ``η' = η/(1−ηλ)``: descent while ``ρ² > ηL̃/(2(1−ηλ))``.

    ``w⁺ = (1−ηλ)(w − η'∇L)`` and the factor does not change L. On the segment ``z = w − tη'∇L``,
    ``‖z‖² = ρ² + t²η'²‖∇L‖² ≥ ρ²`` (orthogonality), so ``‖H(z)‖ ≤ L̃/‖z‖² ≤ L̃/ρ²`` there (Hessian
    scaling), and Taylor's theorem with that bound gives the inequality.
    """

    def residual():
        t = sp.Symbol("t", nonnegative=True)
        g = gradient(generic_si_loss(weights))
        lr_eff = lr / (1 - lr * wd)
        segment = weights - t * lr_eff * g
        grad_sq = sp.Symbol("G", positive=True)
        bound = -lr_eff * grad_sq + lr_eff**2 * eff_smoothness / (2 * si_norm**2) * grad_sq
        (rho_d,) = sp.solve(in_domain(bound), si_norm)
        return sp.Matrix(
            [
                dot(segment, segment) - (dot(weights, weights) + t**2 * lr_eff**2 * dot(g, g)),
                (1 - lr * wd) * segment.subs(t, 1) - ((1 - lr * wd) * weights - lr * g),
                rho_d - in_domain(DESCENT_SI_NORM),
            ]
        ).subs(si_norm, norm(weights))

    return prove(
        "descent_guarantee",
        "Every step decreases the loss while the norm is above the descent threshold",
        r"\rho^2 > \frac{\eta\,\tilde L}{2(1-\eta\lambda)} \iff \tilde\eta\,\tilde L < 2(1-\eta\lambda)"
        r"\ \Rightarrow\ L(w_{+}) < L(w)\ \text{unless}\ \nabla L(w) = 0",
        "GD with coupled weight decay; L̃ = sup of ‖H‖ over the unit sphere; 0 < ηλ < 1",
        residual,
    )


STATEMENTS = (minimum_instability, momentum_instability, descent_guarantee)
