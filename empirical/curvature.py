"""Curvature of the training loss: Hessian-vector products, traces and effective sharpness.

Operators are objects, algorithms are functions, results are typed:

:class:`HessianOperator`
    Hessian-vector products (HVPs) of the *training* loss of a model (BatchNorm in train mode, batch statistics) on
    fixed ghost batches, restricted to a list of parameters (typically the scale-invariant group), on flat vectors.
    Its top eigenvalues come from :func:`empirical.eigensolvers.top_eigenvalues` (Lanczos with a certificate of
    λ_max, power iteration, dense).
:func:`hutchinson_trace`
    Stochastic trace estimate with Rademacher probes.
:func:`effective_sharpness`
    ``s̃ = ρ² · λ_max(H_SI)`` as an :class:`EffectiveSharpness`: the top eigenvalue of the Hessian restricted to the
    SI parameters, times their squared joint norm ``ρ²``. For SI weights ``H(c·w) = H(w)/c²`` while
    ``ρ(c·w)² = c²ρ²``, so ``s̃`` depends only on the direction of the weights (the quantity that governs stability
    of GD on the sphere), whereas the plain sharpness ``λ_max`` scales as ``1/c²``.
:func:`batch_sharpness`
    ``E_B[g_Bᵀ H_B g_B / ‖g_B‖²]``, the curvature of each minibatch's loss along its own gradient, averaged over
    minibatches until its confidence interval is narrow enough.

HVPs never form ``H``. The loss is a pure function of the flat parameter vector (``functional_call`` with
parameters and buffers passed explicitly). By default (``mode="double_backward"``) the graph of ``∇L`` is built once,
with ``create_graph=True``, and each ``H v`` is one backward pass through it, ``∂(∇L·v)/∂w``, as PyHessian does: the
forward and first backward are paid once per operator, not once per HVP. ``mode="jvp"`` computes ``H v``
forward-over-reverse, ``jvp(grad(L), (w,), (v,))``, one ghost batch at a time: the memory of one batch instead of
the retained graphs of all of them, at about twice the time per HVP.

BatchNorm with running statistics needs care under ``torch.func``: in train mode BN updates ``running_mean`` /
``running_var`` / ``num_batches_tracked`` *in place*. If the model's own buffers were passed, (a) every HVP would
perturb the model's running statistics (changing its eval-mode behaviour as a side effect of a measurement), and
(b) the in-place write of a tensor carrying a tangent/grad level into a tensor captured from outside the transform
is rejected by ``torch.func``. Both are avoided by cloning the buffers *inside* the transformed function: the clones
are created at the transform's level, so BN may mutate them freely, and they are discarded afterwards. The batch
statistics used for normalisation (and hence the loss) do not depend on the running statistics in train mode, so
this changes nothing in the value of the loss or its derivatives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy import stats
from scipy.sparse.linalg import LinearOperator
from torch import nn
from torch.func import functional_call, grad, jvp
from torch.nn import functional as F

from bnwd.empirical.eigensolvers import EigenResult, top_eigenvalues

__all__ = [
    "EffectiveSharpness",
    "HessianOperator",
    "HvpMode",
    "batch_sharpness",
    "effective_sharpness",
    "hutchinson_trace",
]

Batch = tuple[torch.Tensor, torch.Tensor]

HvpMode = Literal["double_backward", "jvp"]
"""How :class:`HessianOperator` computes a Hessian-vector product."""


def _check_train_mode(model: nn.Module, who: str) -> None:
    """Raise if ``model`` (or any BN inside it) is in eval mode; we never switch modes on the caller's behalf."""
    if not model.training:
        raise ValueError(
            f"{who}: the model is in eval mode (model.training is False); the training loss with BatchNorm batch "
            "statistics needs train mode. Call model.train() first (modes are never switched silently)."
        )
    for name, mod in model.named_modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) and not mod.training:
            raise ValueError(f"{who}: BatchNorm module {name!r} is in eval mode while the model is in train mode")


def _check_batches(batches: Sequence[Batch], who: str) -> list[Batch]:
    """Validate the ghost batches: a non-empty list of non-empty ``(x, y)`` pairs of matching length."""
    if isinstance(batches, tuple) and len(batches) == 2 and isinstance(batches[0], torch.Tensor):
        raise ValueError(f"{who}: batches must be a list of (x, y) pairs; wrap a single batch as [(x, y)]")
    batches = list(batches)
    if not batches:
        raise ValueError(f"{who}: batches is empty; pass a non-empty list of (x, y) pairs")
    for i, b in enumerate(batches):
        if len(b) != 2:
            raise ValueError(f"{who}: batch {i} must be an (x, y) pair")
        x, y = b
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{who}: batch {i} is empty")
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"{who}: batch {i} has {x.shape[0]} inputs but {y.shape[0]} targets")
    return batches


class HessianOperator:
    """Hessian-vector products of the training loss of ``model`` on fixed batches, restricted to some parameters.

    The loss is the mean over all samples of all ghost batches, ``L(w) = Σ_b loss_fn(f(x_b; w), y_b, sum) / N``
    with ``N = Σ_b |x_b|``, each batch normalised by its own BatchNorm statistics (train mode), i.e. the full-batch
    GD loss with ghost batch norm. With ``wd > 0`` the weight-decay term ``wd/2·‖w‖²`` of the restricted parameters
    is added, so ``H v`` gains ``wd·v``. Parameters outside the restriction are held fixed at their current values.

    Parameters
    ----------
    model : nn.Module
        Must be in train mode (``ValueError`` otherwise; the mode is never switched). Neither its parameters nor its
        buffers (BN running statistics) are modified.
    batches : list of (x, y)
        Ghost batches (non-empty). Floating inputs are cast to the parameters' dtype and device.
    params : list of nn.Parameter, optional
        Parameters of ``model`` to restrict to (e.g. ``si_parameters(model, groups)``), in any order; the flat vector
        is their concatenation in the given order. Default: every parameter with ``requires_grad``.
    wd : float
        Weight-decay coefficient (adds ``wd·v`` to every HVP).
    loss_fn : callable
        ``loss_fn(logits, targets, reduction="sum")``; default cross-entropy.
    mode : {"double_backward", "jvp"}
        How an HVP is computed. ``"double_backward"`` (default): reverse-over-reverse; the graph of ``∇L`` over all
        ghost batches is built at the first HVP and kept, each HVP is one backward pass through it (the cost of a
        bare ``torch.autograd.grad(g, w, v)``). ``"jvp"``: forward-over-reverse, ``torch.func.jvp`` of
        ``torch.func.grad``, recomputed per HVP one batch at a time: for ghost batches whose graphs do not fit in
        memory together. Same result to rounding (``benchmarks/curvature_top_eigenvalue.py`` times both).

    Attributes
    ----------
    size : int
        Length ``n`` of the flat vectors.
    dtype, device
        Those of the parameters; ``matvec`` takes and returns 1-D tensors of this dtype/device.
    n_hvp : int
        Number of HVPs (``matvec`` calls) so far.
    names : list of str
        Names of the restricted parameters, in flat-vector order.

    Notes
    -----
    Memory: ``"double_backward"`` keeps the activations and first-backward graph of every ghost batch for the life
    of the operator; ``"jvp"`` holds one batch at a time.
    """

    def __init__(
        self,
        model: nn.Module,
        batches: Sequence[Batch],
        params: Sequence[nn.Parameter] | None = None,
        wd: float = 0.0,
        loss_fn: Callable[..., torch.Tensor] = F.cross_entropy,
        mode: HvpMode = "double_backward",
    ) -> None:
        _check_train_mode(model, "HessianOperator")
        if mode not in ("jvp", "double_backward"):
            raise ValueError(f"HessianOperator: mode must be 'double_backward' or 'jvp', got {mode!r}")
        batches = _check_batches(batches, "HessianOperator")
        named = list(model.named_parameters())
        if params is None:
            params = [p for _, p in named if p.requires_grad]
        params = list(params)
        if not params:
            raise ValueError("HessianOperator: no parameters to restrict the Hessian to (empty params list)")
        by_id = {id(p): n for n, p in named}
        names = []
        for p in params:
            if id(p) not in by_id:
                raise ValueError("HessianOperator: params must be parameters of the model (got a foreign tensor)")
            names.append(by_id[id(p)])
        if len(set(names)) != len(names):
            raise ValueError("HessianOperator: params contains the same parameter twice")
        if not math.isfinite(wd) or wd < 0:
            raise ValueError(f"HessianOperator: wd must be a finite number >= 0, got {wd!r}")
        dtypes = {p.dtype for p in params}
        if len(dtypes) != 1:
            raise ValueError(f"HessianOperator: restricted parameters have mixed dtypes {sorted(map(str, dtypes))}")

        self.model, self.loss_fn, self.wd, self.mode = model, loss_fn, float(wd), mode
        self.names = names
        self.shapes = [p.shape for p in params]
        self.numels = [p.numel() for p in params]
        self.size = int(sum(self.numels))
        self.dtype, self.device = params[0].dtype, params[0].device
        # Snapshots (detached, no grad): the operator is the Hessian at the weights of construction time.
        restricted = set(names)
        self._fixed = {n: p.detach() for n, p in named if n not in restricted}
        self._buffers = {n: b.detach() for n, b in model.named_buffers()}
        self._w0 = torch.cat([p.detach().reshape(-1) for p in params])
        self._batches = [(self._cast(x), y.to(self.device)) for x, y in batches]
        self.n_total = sum(int(x.shape[0]) for x, _ in self._batches)
        self.n_hvp = 0
        self._graph: tuple[torch.Tensor, torch.Tensor] | None = None

    # ----------------------------------------------------------------------------------------------------------------
    def _cast(self, x: torch.Tensor) -> torch.Tensor:
        # Floating inputs follow the parameters' dtype (e.g. float64 for exact checks); integer inputs keep theirs.
        return x.to(device=self.device, dtype=self.dtype) if x.is_floating_point() else x.to(self.device)

    def _unflatten(self, w: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: c.view(s) for n, c, s in zip(self.names, torch.split(w, self.numels), self.shapes, strict=True)}

    def _batch_loss(self, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Contribution of one ghost batch to ``L``: summed loss over the batch divided by the total sample count."""
        p = dict(self._fixed)
        p.update(self._unflatten(w))
        # Clone buffers inside the (transformed) function: BN's in-place running-stat update then hits a fresh copy
        # created at the transform's level (allowed), never the model's buffers (left untouched).
        b = {n: t.clone() for n, t in self._buffers.items()}
        out = functional_call(self.model, (p, b), (x,))
        return self.loss_fn(out, y, reduction="sum") / self.n_total

    def params_vector(self) -> torch.Tensor:
        """The flat restricted parameter vector ``w`` at which the Hessian is taken (a copy)."""
        return self._w0.clone()

    def loss(self, w: torch.Tensor | None = None) -> float:
        """Training loss ``L(w)`` (without the weight-decay term) at ``w`` (default: the model's weights)."""
        w = self._w0 if w is None else self._as_vector(w)
        with torch.no_grad():
            return float(sum(self._batch_loss(w, x, y) for x, y in self._batches))

    def _gradient_graph(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(w, ∇L(w))`` at the operator's weights with the graph of ``∇L`` kept (built once)."""
        if self._graph is None:
            with torch.enable_grad():
                w = self._w0.clone().requires_grad_(True)
                g = torch.zeros_like(w)
                for x, y in self._batches:
                    (g_b,) = torch.autograd.grad(self._batch_loss(w, x, y), w, create_graph=True)
                    g = g + g_b
            self._graph = (w, g)
        return self._graph

    def gradient(self, w: torch.Tensor | None = None) -> torch.Tensor:
        """``∇L(w)`` of the training loss, restricted and flat (plus ``wd·w`` when ``wd > 0``)."""
        if w is None and self.mode == "double_backward":
            w, g = self._w0, self._gradient_graph()[1].detach()
        else:
            w = self._w0 if w is None else self._as_vector(w)
            g = torch.zeros_like(w)
            for x, y in self._batches:
                g = g + grad(self._batch_loss)(w, x, y)
        return g + self.wd * w if self.wd else g

    def _as_vector(self, v) -> torch.Tensor:
        v = torch.as_tensor(v)
        if v.shape != (self.size,):
            raise ValueError(f"HessianOperator: expected a vector of shape ({self.size},), got {tuple(v.shape)}")
        return v.to(device=self.device, dtype=self.dtype)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``H v`` (plus ``wd·v``) for a flat vector ``v`` of length :attr:`size`; counts one HVP."""
        v = self._as_vector(v)
        if self.mode == "double_backward":
            # H v = ∂(∇L·v)/∂w: a vector-Jacobian product of the kept gradient graph.
            w, g = self._gradient_graph()
            (hv,) = torch.autograd.grad(g, w, grad_outputs=v, retain_graph=True)
        else:
            hv = torch.zeros_like(v)
            for x, y in self._batches:
                # Forward-over-reverse: the directional derivative of the gradient map along v.
                _, hv_b = jvp(lambda w, x=x, y=y: grad(self._batch_loss)(w, x, y), (self._w0,), (v,))
                hv = hv + hv_b
        self.n_hvp += 1
        return hv + self.wd * v if self.wd else hv

    __matmul__ = matvec

    def dense(self) -> torch.Tensor:
        """The dense ``n × n`` Hessian from ``n`` HVPs with unit vectors (only for small ``n``), symmetrised."""
        eye = torch.eye(self.size, dtype=self.dtype, device=self.device)
        h = torch.stack([self.matvec(e) for e in eye], dim=1)
        return 0.5 * (h + h.T)  # rounding makes H e_i and H e_j differ slightly in the off-diagonal

    def as_linear_operator(self) -> LinearOperator:
        """A ``scipy.sparse.linalg.LinearOperator`` view (float64 numpy in and out) sharing the HVP counter."""

        def mv(x: np.ndarray) -> np.ndarray:
            v = torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(-1))
            return self.matvec(v).detach().cpu().to(torch.float64).numpy()

        return LinearOperator((self.size, self.size), matvec=mv, rmatvec=mv, dtype=np.float64)

    def __repr__(self) -> str:
        return f"HessianOperator(size={self.size}, n_batches={len(self._batches)}, wd={self.wd}, n_hvp={self.n_hvp})"


def hutchinson_trace(op: HessianOperator, n_samples: int = 32, *, seed: int = 0) -> tuple[float, float, dict]:
    """Hutchinson estimate of ``tr(H)``: the mean of ``zᵀ H z`` over seeded Rademacher probes ``z``.

    Parameters
    ----------
    op : HessianOperator
    n_samples : int
        Number of probes (``≥ 2``, so that a standard error exists); costs ``n_samples`` HVPs.
    seed : int
        Seeds the probes.

    Returns
    -------
    estimate : float
        Unbiased estimate of ``tr(H)`` (``E[zzᵀ] = I`` for Rademacher ``z``).
    stderr : float
        Standard error of the mean (sample standard deviation / ``sqrt(n_samples)``).
    info : dict
        ``n_hvp`` and ``samples`` (the individual ``zᵀ H z``).
    """
    if int(n_samples) != n_samples or n_samples < 2:
        raise ValueError(f"hutchinson_trace: n_samples must be an integer >= 2, got {n_samples!r}")
    gen = torch.Generator().manual_seed(int(seed))
    start = op.n_hvp
    samples = np.empty(int(n_samples))
    for i in range(int(n_samples)):
        z = torch.randint(0, 2, (op.size,), generator=gen).to(torch.float64) * 2 - 1
        samples[i] = float(torch.dot(z, op.matvec(z).to(torch.float64).cpu()))
    est = float(samples.mean())
    se = float(samples.std(ddof=1) / math.sqrt(n_samples))
    return est, se, {"n_hvp": op.n_hvp - start, "samples": samples}


@dataclass(frozen=True)
class EffectiveSharpness:
    """The sharpness of the training loss in the SI weights, and its scale-free form.

    Attributes
    ----------
    sharpness : float
        ``λ_max(H_SI)``, the top eigenvalue of the Hessian restricted to the SI weights.
    eff_sharpness : float
        ``s̃ = ρ²·λ_max(H_SI)``.
    si_norm : float
        ``ρ``, the joint norm of the SI weights.
    eigen : EigenResult
        The eigensolver's result for ``λ_max``: its HVPs, whether it converged, the upper bound of ``λ_max`` at the
        certificate's confidence and the top eigenvector (shape (n,), ``n`` the size of the SI vector: the ``v0``
        of a warm start).
    """

    sharpness: float
    eff_sharpness: float
    si_norm: float
    eigen: EigenResult


def effective_sharpness(
    model: nn.Module,
    batches: Sequence[Batch],
    si_params: Sequence[nn.Parameter] | None = None,
    *,
    loss_fn: Callable[..., torch.Tensor] = F.cross_entropy,
    hvp_mode: HvpMode = "double_backward",
    **kw,
) -> EffectiveSharpness:
    """Sharpness ``λ_max(H_SI)`` and effective sharpness ``s̃ = ρ²·λ_max(H_SI)`` of the training loss.

    ``H_SI`` is the Hessian of the training loss (no weight decay) restricted to the SI parameters and ``ρ`` their
    joint norm. ``s̃`` is invariant to rescaling the SI weights; ``λ_max`` scales as ``1/c²``.

    Parameters
    ----------
    model : nn.Module
        In train mode.
    batches : list of (x, y)
        Ghost batches, as for :class:`HessianOperator`.
    si_params : list of nn.Parameter, optional
        The SI parameters. Default: found by :func:`~empirical.scale_invariance.find_si_groups` on the first batch
        and collected by :func:`~empirical.scale_invariance.si_parameters`. ``ValueError`` if there are none.
    loss_fn : callable
        As for :class:`HessianOperator` (also used for the SI search).
    hvp_mode : {"double_backward", "jvp"}
        The ``mode`` of the :class:`HessianOperator`.
    **kw
        Passed to :func:`top_eigenvalues` (``method``, ``tol``, ``miss_tol``, ``confidence``, ``max_hvp``, ``seed``,
        ``v0``).

    Returns
    -------
    EffectiveSharpness
        λ_max, s̃, ρ and the eigensolver's result.
    """
    _check_train_mode(model, "effective_sharpness")
    batches = _check_batches(batches, "effective_sharpness")
    if si_params is None:
        from bnwd.empirical.scale_invariance import find_si_groups, si_parameters

        x0, y0 = batches[0]
        groups = find_si_groups(model, x0, y0, loss_fn=loss_fn)
        si_params = si_parameters(model, groups)
    si_params = list(si_params)
    if not si_params:
        raise ValueError("effective_sharpness: the model has no scale-invariant parameters (empty SI group)")
    op = HessianOperator(model, batches, si_params, wd=0.0, loss_fn=loss_fn, mode=hvp_mode)
    found = top_eigenvalues(op, 1, **kw)
    sharpness = float(found.eigenvalues[0])
    rho = float(op.params_vector().to(torch.float64).norm())
    return EffectiveSharpness(sharpness=sharpness, eff_sharpness=rho**2 * sharpness, si_norm=rho, eigen=found)


def batch_sharpness(
    model: nn.Module,
    batches: Iterable[Batch],
    si_params: Sequence[nn.Parameter],
    *,
    loss_fn: Callable[..., torch.Tensor] = F.cross_entropy,
    rel_tol: float = 0.05,
    confidence: float = 0.95,
    min_batches: int = 5,
    max_batches: int = 100,
) -> dict:
    """Batch sharpness ``E_B[g_Bᵀ H_B g_B / ‖g_B‖²]`` of the SI weights and its effective form (× ρ²).

    ``g_B`` and ``H_B`` are the gradient and Hessian of one minibatch's training loss (BatchNorm in train mode, the
    batch's own statistics, no weight decay) restricted to the SI weights: the curvature along the direction SGD
    steps in. The Edge of Stochastic Stability paper (arXiv 2412.20553) reports that for plain SGD it settles
    at ``2/η``; with BatchNorm and weight decay the analogue would be ``η̃ · ρ²·E_B[…] ≈ 2(1−ηλ)``, a hypothesis
    that :mod:`paper_checks.c5_sharpness` tests, not a fact. Each batch costs one gradient graph and one HVP.
    Batches are drawn from ``batches`` until the confidence interval of the mean (Student t) has a half-width of at
    most ``rel_tol`` of the mean, with at least ``min_batches`` and at most ``max_batches``.

    Parameters
    ----------
    model : nn.Module
        In train mode; left untouched (parameters, buffers).
    batches : iterable of (x, y)
        Minibatches, e.g. random draws of the training set; read lazily, only as many as needed.
    si_params : list of nn.Parameter
        The SI weights (``ρ`` is their joint norm).
    loss_fn : callable
        ``loss_fn(logits, targets, reduction="sum")``.
    rel_tol, confidence : float
        Stop when the ``confidence`` interval's half-width ≤ ``rel_tol · |mean|``.
    min_batches, max_batches : int

    Returns
    -------
    dict
        ``batch_sharpness`` (the mean), ``eff_batch_sharpness`` (× ρ²) and ``eff_batch_sharpness_ci_low`` /
        ``_high``, ``si_norm`` (ρ), ``n_batches``, ``converged`` (the interval reached ``rel_tol``) and ``values``
        (ndarray, shape (n_batches,): one ``g_Bᵀ H_B g_B / ‖g_B‖²`` per batch).
    """
    if not (0 < rel_tol and 0 < confidence < 1):
        raise ValueError(f"batch_sharpness: need rel_tol > 0 and 0 < confidence < 1, got {rel_tol!r}, {confidence!r}")
    if not 2 <= min_batches <= max_batches:
        raise ValueError(f"batch_sharpness: need 2 <= min_batches <= max_batches, got {min_batches}, {max_batches}")
    values: list[float] = []
    half_width, mean, rho = math.inf, math.nan, math.nan
    for batch in batches:
        op = HessianOperator(model, [batch], si_params, loss_fn=loss_fn)
        g = op.gradient()
        values.append(float(torch.dot(g, op.matvec(g)) / torch.dot(g, g)))
        rho = float(op.params_vector().double().norm())
        if len(values) >= min_batches:
            mean = float(np.mean(values))
            sem = float(np.std(values, ddof=1)) / math.sqrt(len(values))
            half_width = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * sem
            if half_width <= rel_tol * abs(mean) or len(values) >= max_batches:
                break
    if len(values) < min_batches:
        raise ValueError(f"batch_sharpness: {len(values)} batches given, at least min_batches={min_batches} needed")
    return {
        "batch_sharpness": mean,
        "eff_batch_sharpness": rho**2 * mean,
        "eff_batch_sharpness_ci_low": rho**2 * (mean - half_width),
        "eff_batch_sharpness_ci_high": rho**2 * (mean + half_width),
        "si_norm": rho,
        "n_batches": len(values),
        "converged": bool(half_width <= rel_tol * abs(mean)),
        "values": np.array(values),
    }
