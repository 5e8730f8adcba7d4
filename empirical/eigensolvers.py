"""The top eigenvalues of a symmetric operator given by its products: Lanczos with a certificate of λ_max, power
iteration, or the dense matrix.

Algorithms are functions, results are typed:

:func:`top_eigenvalues`
    The ``k`` largest (algebraic) eigenvalues and their eigenvectors as an :class:`EigenResult`, by Lanczos that
    stops when its error bound says so and λ_max is certified (:func:`krylov_margin`: no eigenvalue above the answer
    by more than ``miss_tol``, at a stated confidence over the random start, whatever the gaps), or power iteration
    with deflation, or ``numpy.linalg.eigh`` of the dense matrix.
:func:`krylov_weight_bound`, :func:`krylov_margin`
    The gap-free bound behind the certificate: how far λ_max may lie above the top Ritz value of a Krylov space from
    a random start.

The operator is anything with :class:`SymmetricOperator`'s interface, typically
:class:`empirical.curvature.HessianOperator`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch
from scipy import special
from scipy.linalg import eigh_tridiagonal

__all__ = [
    "CONFIDENCE",
    "MISS_TOL",
    "EigenMethod",
    "EigenResult",
    "SymmetricOperator",
    "krylov_margin",
    "krylov_weight_bound",
    "top_eigenvalues",
]

EigenMethod = Literal["lanczos", "power", "dense"]
"""How :func:`top_eigenvalues` finds the eigenvalues."""

MISS_TOL = 1e-2
"""Default of how far (relative) λ_max may lie above a converged Lanczos answer, at :data:`CONFIDENCE`."""

CONFIDENCE = 0.99
"""Default probability, over the random start vector, with which Lanczos's answer is within ``miss_tol`` of λ_max."""


class SymmetricOperator(Protocol):
    """A symmetric ``n × n`` matrix known by its products: what :func:`top_eigenvalues` needs of an operator.

    Attributes
    ----------
    size : int
        ``n``.
    dtype, device
        Those of the vectors :meth:`matvec` takes and returns (1-D, length ``n``).
    n_hvp : int
        Number of :meth:`matvec` calls so far (each call adds one).
    """

    size: int
    dtype: torch.dtype
    device: torch.device
    n_hvp: int

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``H v`` for a flat vector ``v``."""

    def dense(self) -> torch.Tensor:
        """The dense ``n × n`` matrix (only ``method="dense"`` asks for it)."""


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value to compare by
class EigenResult:
    """The ``k`` largest eigenvalues of an operator, their eigenvectors, and how they were found.

    Attributes
    ----------
    eigenvalues : ndarray, shape (k,)
        Descending. Lanczos entries whose error bound was not met within ``max_hvp`` are NaN.
    eigenvectors : ndarray, shape (n, k), float64
        Unit columns matching ``eigenvalues``.
    n_hvp : int
        Operator products (HVPs) used by this call.
    converged : bool
        Every error bound met and, for Lanczos, λ_max certified.
    upper_bound : float
        Lanczos: λ_max is at most this with probability ``confidence``, also when not converged; dense: λ_max;
        power: NaN, none is known.
    method : {"lanczos", "power", "dense"}
    tol, miss_tol, confidence : float
        The tolerances asked for (:func:`top_eigenvalues`).
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    n_hvp: int
    converged: bool
    upper_bound: float
    method: EigenMethod
    tol: float
    miss_tol: float
    confidence: float


def _check_k(op: SymmetricOperator, k: int) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"top_eigenvalues: k must be a positive integer, got {k!r}")
    if k > op.size:
        raise ValueError(f"top_eigenvalues: k={k} exceeds the number of parameters n={op.size}")
    return int(k)


def _dense_top(op: SymmetricOperator, k: int) -> tuple[np.ndarray, np.ndarray]:
    h = op.dense().detach().cpu().to(torch.float64).numpy()
    vals, vecs = np.linalg.eigh(h)
    return vals[::-1][:k].copy(), vecs[:, ::-1][:, :k].copy()


def krylov_weight_bound(dimension: float, margin: float, spread: float) -> float:
    """The most weight ``(g·u_1)²`` a unit start ``g`` can have on the top eigenvector ``u_1`` of a symmetric ``H``
    whose top eigenvalue lies ``margin`` or more above the top Ritz value ``θ`` of ``K_m(H, g)``, whatever the gaps.

    Every ``v = p(H)g`` with ``deg p < m`` has Rayleigh quotient ``≤ θ``, so ``Σ_i (λ_i − θ) p(λ_i)² (g·u_i)² ≤ 0``.
    Keep the term of ``λ_1`` on the left and bound those with ``λ_i < θ`` by their largest weight: with
    ``D ≥ θ − λ_min``, ``t = (θ − x)/D`` and ``p(x) = T_{2m−1}(√t)/√t`` (of degree ``m − 1`` in ``x``; ``T``
    Chebyshev's), ``(θ − x)p(x)² = D·T_{2m−1}(√t)² ≤ D`` on ``[λ_min, θ]`` while ``|p(λ_1)| = sinh((2m−1)·asinh y)/y``
    with ``y² = (λ_1 − θ)/D``. So ``λ_1 − θ ≥ Δ`` implies

        (g·u_1)² ≤ 1 / sinh²((2m − 1)·asinh √(Δ/D)),

    the gap-free bound of Kuczyński and Woźniakowski (SIAM J. Matrix Anal. Appl. 13, 1992) for a symmetric ``H``.

    Parameters
    ----------
    dimension : float
        ``m``, the dimension of the Krylov space.
    margin : float
        ``Δ > 0``.
    spread : float
        ``D ≥ θ − λ_min``, ``> 0``.
    """
    return float(1 / math.sinh((2 * dimension - 1) * math.asinh(math.sqrt(margin / spread))) ** 2)


def krylov_margin(dimension: float, size: int, spread: float, *, confidence: float = CONFIDENCE, warm: bool = False):
    """How far above the top Ritz value ``θ`` of a Krylov space from a random start the top eigenvalue may lie: the
    ``Δ`` with ``P(λ_max ≥ θ + Δ) ≤ 1 − confidence``, whatever the gaps of the spectrum.

    For ``g`` uniform on the unit sphere of ``ℝⁿ``, ``(g·u_1)² ~ Beta(1/2, (n−1)/2)``, so ``λ_max − θ ≥ Δ`` has at
    most the probability ``I_b(1/2, (n−1)/2)`` at ``b`` = :func:`krylov_weight_bound` ``(m, Δ, D)``; this inverts
    it for ``Δ``. A warm start ``g ∝ v̂ + z`` (a unit ``v̂`` plus ``z`` uniform on the sphere, ``‖v̂ + z‖ ≤ 2``) has
    ``(ĝ·u_1)² ≥ (v̂·u_1 + z·u_1)²/4``, and a symmetric unimodal ``z·u_1`` shifted by a constant is no likelier to
    be small (Anderson's inequality): the same bound with ``b`` four times smaller, whatever ``v̂``.

    The price of certainty: ``m ≈ ln(2√n / (1 − confidence)) / (2√(Δ/D))`` steps whatever the actual gaps (53 for
    Δ/D = 1 %, n = 24 264, confidence 0.99), and no algorithm that multiplies by ``H`` can do much better
    (Simchowitz, El Alaoui and Recht, STOC 2018).

    Parameters
    ----------
    dimension : float
        ``m``, the dimension of the Krylov space of the random start; ``inf`` once it was found invariant.
    size : int
        ``n``.
    spread : float
        ``D ≥ θ − λ_min``.
    confidence : float
        In ``(0, 1)``.
    warm : bool
        The start is ``v̂ + z`` rather than ``z``.

    Returns
    -------
    float
        ``Δ``: 0 for an invariant Krylov space (it holds ``u_1`` unless ``g·u_1 = 0``, an event of probability 0)
        or the whole space; ``inf`` where ``D`` is not positive.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"krylov_margin: confidence must be in (0, 1), got {confidence!r}")
    if dimension >= size:
        return 0.0
    if not spread > 0:
        return math.inf
    weight = special.betaincinv(0.5, (size - 1) / 2, 1 - confidence) / (4 if warm else 1)
    # krylov_weight_bound(m, Δ, D) = weight, solved for Δ
    return float(spread * math.sinh(math.asinh(1 / math.sqrt(weight)) / (2 * dimension - 1)) ** 2)


def _ritz_errors(theta: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """``min(r, r²/δ)`` of each Ritz value: within its residual ``r`` of an eigenvalue, and within ``r²/δ``
    (Kato–Temple) once ``r`` is below its gap ``δ`` to the other Ritz values, the gap an estimate of the true one."""
    distance = np.abs(theta[:, None] - theta[None, :])
    np.fill_diagonal(distance, np.inf)
    gaps = distance.min(axis=1, initial=np.inf)
    gaps[np.isinf(gaps)] = 0.0  # one Ritz value: no gap known, the residual alone bounds the error
    return np.where(residual < gaps, residual**2 / np.where(gaps > 0, gaps, 1.0), residual)


def _lanczos(
    op: SymmetricOperator,
    k: int,
    tol: float,
    miss_tol: float,
    confidence: float,
    max_hvp: int,
    v0: torch.Tensor | None,
    gen: torch.Generator,
):
    """Lanczos with full reorthogonalisation, stopped when the top pairs are found and λ_max is certified.

    Returns ``(vals, vecs, converged, upper_bound)``. After ``j`` steps a Ritz pair ``(θ, y)`` of the tridiagonal
    ``T_j`` has the residual ``‖H y − θ y‖ = r = |β_j s_j|`` (``s_j`` the last entry of its eigenvector in ``T_j``);
    each of the top ``k`` is *found* when ``min(r, r²/δ) ≤ tol·|θ|`` (:func:`_ritz_errors`; Parlett, *The Symmetric
    Eigenvalue Problem*, §11.7). That says θ is near *an* eigenvalue, not that it is the largest: while the start
    vector has little weight on the top eigenvector, a lower pair converges first and passes it (the case that made
    this rule). So the run also goes on until :func:`krylov_margin` puts λ_max within ``miss_tol·|θ_1|`` of the top
    Ritz value at the given confidence. Its spread ``D`` is the distance from ``θ_1`` to the lowest Ritz value less
    that one's residual: an estimate, as the bottom of the spectrum can be missed as the top can; the margin is
    proportional to ``D``, so an underestimate by a factor ``f`` makes it ``f`` times too small (Hessians here:
    λ_min is a few per cent of λ_max and found early). Ritz values are lower bounds of the eigenvalues
    they approach, so then ``θ_1 ≤ λ_max ≤ θ_1 + Δ``; the certificate covers λ_max, the other ``k − 1`` pairs have
    the residual bound. One Krylov space from one random direction: no restarts (a restart from Ritz vectors would
    lose the start's randomness), so the basis holds up to ``max_hvp`` vectors of ``n``. An exhausted Krylov space
    (``β = 0``) is invariant and holds λ_max unless the start had no weight on its eigenvector, an event of
    probability 0; the run goes on from a random vector orthogonal to it for the other pairs. Entries not found
    within ``max_hvp`` HVPs are NaN.
    """
    z = torch.randn(op.size, generator=gen, dtype=torch.float64)
    q = z / z.norm() if v0 is None else v0 / v0.norm() + z / z.norm()
    basis: list[torch.Tensor] = []
    alphas: list[float] = []
    betas: list[float] = []
    q = q.to(device=op.device, dtype=op.dtype)
    invariant = False  # the start's Krylov space was exhausted: its dimension is infinite for the certificate
    for _ in range(min(int(max_hvp), op.size)):
        q = q / q.norm()
        basis.append(q)
        w = op.matvec(q)
        alphas.append(float(torch.dot(w.double(), q.double())))
        stacked = torch.stack(basis).double()
        for _ in range(2):  # twice is enough (Giraitis–Kahan–Parlett): orthogonal to rounding
            w = w - ((stacked @ w.double()) @ stacked).to(w.dtype)
        beta = float(w.double().norm())
        theta, s = eigh_tridiagonal(np.array(alphas), np.array(betas))
        theta, s = theta[::-1], s[:, ::-1]  # descending
        residual = np.abs(beta * s[-1, :])
        error = _ritz_errors(theta, residual)[:k]
        spread = theta[0] - theta[-1] + residual[-1]
        dimension = math.inf if invariant else len(basis)
        margin = krylov_margin(dimension, op.size, spread, confidence=confidence, warm=v0 is not None)
        certified = margin == 0 or margin <= miss_tol * abs(theta[0])
        found = theta.size >= k and bool(np.all(error <= tol * np.abs(theta[:k])))
        if (found and certified) or len(basis) == op.size:
            break
        if beta <= 1e-12 * np.abs(theta).max(initial=1.0):  # an invariant subspace: go on orthogonally to it
            invariant = True
            q = torch.randn(op.size, generator=gen, dtype=torch.float64)
            q = q.to(stacked.device)
            q = (q - (stacked @ q) @ stacked).to(op.dtype)
            betas.append(0.0)
        else:
            betas.append(beta)
            q = w / beta
    vals = np.full(k, np.nan)
    vecs = np.full((op.size, k), np.nan)
    done = np.flatnonzero((error <= tol * np.abs(theta[: error.size])) | (len(basis) == op.size))
    vals[done] = theta[done]
    vecs[:, done] = (stacked.T @ torch.from_numpy(s[:, done].copy()).to(stacked.device)).cpu().numpy()
    return vals, vecs, bool(done.size == k and certified), float(theta[0] + margin)


def _power(op: SymmetricOperator, k: int, tol: float, max_hvp: int, seed: int, v0: np.ndarray | None = None):
    """Power iteration with Hotelling deflation; returns ``(vals, vecs, converged)``.

    Plain power iteration finds the eigenvalue of largest *magnitude*. If that one is negative, we rerun on the
    shifted operator ``A - λ I`` (all eigenvalues ``≥ 0`` up to the error in ``λ``, the dominant one being
    ``λ_max - λ``), so that the result is the largest *algebraic* eigenvalue, as with Lanczos ``which="LA"``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    budget = [max_hvp]
    vals: list[float] = []
    vecs: list[torch.Tensor] = []
    all_converged = True

    def apply(v: torch.Tensor, shift: float) -> torch.Tensor:
        budget[0] -= 1
        w = op.matvec(v).to(torch.float64).cpu() - shift * v
        for lam, u in zip(vals, vecs, strict=True):  # Hotelling: remove found eigenpairs (A - Σ λ_i u_i u_iᵀ)
            w = w - (lam - shift) * u * torch.dot(u, v)
        return w

    def iterate(shift: float, start: np.ndarray | None = None) -> tuple[float, torch.Tensor, bool]:
        v = torch.randn(op.size, generator=gen, dtype=torch.float64) if start is None else torch.from_numpy(start)
        v = v / v.norm()
        lam_prev = None
        while budget[0] > 0:
            w = apply(v, shift)
            lam = float(torch.dot(v, w))  # Rayleigh quotient of the (shifted, deflated) operator
            norm = float(w.norm())
            if norm == 0.0:  # v is in the null space: eigenvalue 0 (of the shifted operator)
                return lam, v, True
            v = w / norm
            if lam_prev is not None and abs(lam - lam_prev) <= tol * abs(lam):
                return lam, v, True
            lam_prev = lam
        return (lam_prev if lam_prev is not None else float("nan")), v, False

    for i in range(k):
        lam, v, ok = iterate(0.0, v0 if i == 0 else None)
        if ok and lam < 0:
            mu, v, ok = iterate(lam)
            lam = mu + lam
        all_converged &= ok
        vals.append(lam)
        vecs.append(v)
    order = np.argsort(vals)[::-1]
    vals_np = np.array(vals)[order]
    vecs_np = torch.stack(vecs, dim=1).numpy()[:, order]
    return vals_np, vecs_np, all_converged


def top_eigenvalues(
    op: SymmetricOperator,
    k: int = 1,
    *,
    method: EigenMethod = "lanczos",
    tol: float = 1e-4,
    miss_tol: float = MISS_TOL,
    confidence: float = CONFIDENCE,
    max_hvp: int = 500,
    seed: int = 0,
    v0: np.ndarray | None = None,
) -> EigenResult:
    """The ``k`` largest (algebraic) eigenvalues of ``op`` and their eigenvectors.

    Parameters
    ----------
    op : SymmetricOperator
        E.g. a :class:`empirical.curvature.HessianOperator`.
    k : int
        Number of eigenpairs, ``1 ≤ k ≤ op.size`` (``ValueError`` otherwise).
    method : {"lanczos", "power", "dense"}
        ``"lanczos"``: Lanczos with full reorthogonalisation from a seeded random start, stopped once the error
        bound ``min(r, r²/δ)`` of each of the top ``k`` Ritz values is below ``tol`` relative (``r`` its residual
        norm, ``δ`` its gap to the other Ritz values) *and* λ_max is certified: with probability ``confidence``
        over the start, no eigenvalue lies more than ``miss_tol`` (relative) above the top Ritz value, whatever the
        gaps (:func:`krylov_margin`; a residual alone cannot tell the top pair from a lower one that converged
        first). ``"power"``: power iteration with Hotelling deflation for ``k > 1``, stopping when the Rayleigh
        quotient changes by less than ``tol`` relative (a change, not an error bound, and no certificate).
        ``"dense"``: build ``H`` from ``n`` HVPs and call ``numpy.linalg.eigh`` (small ``n`` only).
    tol : float
        Relative tolerance of the eigenvalues (see ``method``).
    miss_tol, confidence : float
        Lanczos: how far above its answer λ_max may be, relative, and with which probability it is not. The
        certificate costs about ``ln(2√n/(1 − confidence)) / (2√miss_tol)`` HVPs, whatever the spectrum;
        ``miss_tol=inf`` turns it off (the residual rule alone: fewer HVPs, and a lower pair may pass for the top).
    max_hvp : int
        HVP budget, a hard cap over all ``k``. Lanczos keeps up to this many vectors of ``n`` (no restarts).
    seed : int
        Seeds the start vector(s).
    v0 : ndarray, shape (n,), optional
        A warm start, e.g. the top eigenvector of a nearby Hessian (the previous training step). Power iteration
        begins from it; Lanczos from ``v0/‖v0‖ + z`` with ``z`` a seeded random unit vector, so that the
        certificate holds for any ``v0`` (it then needs a few more steps: :func:`krylov_margin`).

    Returns
    -------
    EigenResult
        The eigenvalues (descending) and unit eigenvectors, the HVPs used by this call, whether it converged, the
        upper bound of λ_max and the settings.
    """
    k = _check_k(op, k)
    if method not in ("lanczos", "power", "dense"):
        raise ValueError(f"top_eigenvalues: method must be 'lanczos', 'power' or 'dense', got {method!r}")
    if not (tol > 0 and miss_tol > 0):
        raise ValueError(f"top_eigenvalues: tol and miss_tol must be > 0, got {tol!r}, {miss_tol!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"top_eigenvalues: confidence must be in (0, 1), got {confidence!r}")
    if int(max_hvp) != max_hvp or max_hvp < 1:
        raise ValueError(f"top_eigenvalues: max_hvp must be a positive integer, got {max_hvp!r}")
    if v0 is not None:
        v0 = np.asarray(v0, dtype=np.float64)
        if v0.shape != (op.size,) or not np.isfinite(v0).all() or not v0.any():
            raise ValueError(f"top_eigenvalues: v0 must be a finite nonzero vector of shape ({op.size},)")
    start = op.n_hvp
    if method == "dense":
        vals, vecs = _dense_top(op, k)
        converged, upper_bound = True, float(vals[0])
    elif method == "lanczos":
        gen = torch.Generator().manual_seed(int(seed))
        start_vector = None if v0 is None else torch.from_numpy(v0)
        vals, vecs, converged, upper_bound = _lanczos(op, k, tol, miss_tol, confidence, int(max_hvp), start_vector, gen)
    else:
        vals, vecs, converged = _power(op, k, tol, int(max_hvp), seed, v0)
        upper_bound = math.nan
    return EigenResult(
        eigenvalues=np.asarray(vals, dtype=np.float64),
        eigenvectors=np.asarray(vecs, dtype=np.float64),
        n_hvp=op.n_hvp - start,
        converged=bool(converged),
        upper_bound=upper_bound,
        method=method,
        tol=tol,
        miss_tol=miss_tol,
        confidence=confidence,
    )
