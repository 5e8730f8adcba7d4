"""Toy scale-invariant models with closed-form gradients, batched over configurations.

A model is an object with ``dim`` and ``loss_and_grad(w, rng) -> (loss, grad)`` for weights ``w`` of shape
``(n_configs, dim)``: the loss of the step's minibatch, shape ``(n_configs,)``, and its gradient, shape
``(n_configs, dim)`` (what a trainer sees online, without an extra pass over the data). Every minibatch loss is
scale-invariant, so ``w·grad = 0`` holds for every step, as it does for a BatchNorm network in train mode.

Regimes (GD + weight decay, no momentum; ``test_the_three_regimes_side_by_side`` in ``tests/test_simulate.py``
runs all three):

* :class:`RayleighQuotient` with ``noise=0``, with a zero bottom eigenvalue: *convergent* while the budget is
  shorter than the time for η̃ to reach 2(1−ηλ)/s̃, *periodic* after that (the minimum destabilises, the norm
  jumps). Its periods depend on how deep each period converged, so on its start: not on ηλ alone.
* :class:`RayleighQuotient` with ``noise > 0`` (a random linear term in the direction per step; by default
  :data:`DEFAULT_NOISE`): the noise floors the error the unstable direction grows from (:mod:`theory.escape`),
  and keeps ‖g̃‖ away from zero, so for ηλ small against the noise the norm settles at the *equilibrium*
  η̃‖g̃‖ = √(ηλ(2−ηλ)) below the critical η̃: no periods. Larger ηλ puts that equilibrium above the critical η̃ and
  the dynamics are periodic again.
* :class:`SoftmaxRegression` (logits = s·X·W/‖W‖_F on real data): periodic under GD once η̃ has grown enough;
  minibatches add SGD noise.
* :class:`BatchNormMLP` (hidden layers Linear → BatchNorm without affine → ReLU, a frozen head, on real data, SGD
  minibatches): a small model of the nets rather than of one unstable direction; ``benchmarks/toy_vs_nets.py``
  measures its periods, slope and catapults against ConvNetSI's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, cached_property
from types import SimpleNamespace

import numpy as np

__all__ = ["DEFAULT_NOISE", "MLP_DTYPES", "BatchNormMLP", "RayleighQuotient", "SoftmaxRegression", "row_norms"]

MLP_DTYPES = ("float64", "float32")
"""The precisions :class:`BatchNormMLP` computes in."""

DEFAULT_NOISE = 1e-5
"""The Rayleigh toy's gradient noise σ unless told otherwise: enough for a run to forget its start, not so much that
the grid leaves the periodic regime. Calibrated on ``bnwd simulate``'s grid (64 directions, η ∈ {0.5, 1, 2},
λ ∈ {0.0025, 0.005, 0.01}, 20 000 steps, means over seeds): the value among 0, 1e-6, 1e-5 and 1e-4 at which two
configs with the same ηλ differ least in period, as ``benchmarks/reduced_vs_toy.py --noise 0,1e-6,1e-5,1e-4``
measures (less noise keeps the deterministic toy's memory of its start, more turns the smallest ηλ to
equilibrium); the last numbers are on ``docs/results.md``."""


def row_norms(w: np.ndarray) -> np.ndarray:
    """Euclidean norm of each row of ``w`` (n, dim): shape (n,)."""
    return np.sqrt(np.einsum("nd,nd->n", w, w))


def _unit(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``w`` divided by their norms, and the norms with a trailing axis."""
    norm = row_norms(w)[:, None]
    return w / norm, norm


def _standardized_digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits (1797 × 64, 10 classes, shipped with scikit-learn), each pixel centred and scaled to unit
    variance (the always-blank pixels left at 0): ``(features, labels)``."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.data - data.data.mean(axis=0)
    x /= np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    return x, data.target


@cache
def _blas_controller():
    """threadpoolctl's controller of the BLAS libraries loaded, found once (finding them takes a millisecond, a
    limit through it 0.05 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean cross-entropy over axis 1 of ``logits`` (n, B, classes) with ``labels`` (n, B), and its gradient in the
    logits times B: ``softmax − one-hot``, shape (n, B, classes). ``logits`` is overwritten by that gradient."""
    logits -= logits.max(axis=2, keepdims=True)
    total = np.exp(logits).sum(axis=2, keepdims=True)
    loss = (np.log(total[..., 0]) - np.take_along_axis(logits, labels[..., None], axis=2)[..., 0]).mean(axis=1)
    residual = np.exp(logits, out=logits)
    residual /= total
    np.put_along_axis(
        residual, labels[..., None], np.take_along_axis(residual, labels[..., None], axis=2) - 1.0, axis=2
    )
    return loss, residual


@dataclass(frozen=True)
class RayleighQuotient:
    """``L(w) = wᵀAw / wᵀw`` with ``A = diag(spectrum)``, plus noise ``noise·ξ_tᵀw/‖w‖`` (0 for none).

    A diagonal A loses no generality (the quotient is rotation-equivariant). The minimum is the eigenvector of
    the smallest eigenvalue; there the effective sharpness (top Hessian eigenvalue at unit norm, tangent to the
    sphere) is ``2(max(spectrum) − min(spectrum))``. The noise term has gradient ``noise·(ξ − (ξ·ŵ)ŵ)/‖w‖``
    with ``ξ ~ N(0, I)`` per config and step; its mean is zero, and the reported loss is the quotient alone (so that
    it stays ≥ 0 and its spikes show).

    Parameters
    ----------
    spectrum : array_like, shape (dim,)
        Eigenvalues of A, dim ≥ 2, not all equal.
    noise : float
        Scale σ ≥ 0 of the stochastic term: :data:`DEFAULT_NOISE` unless told otherwise, 0 for the deterministic toy.
    """

    spectrum: np.ndarray
    noise: float = DEFAULT_NOISE
    name: str = field(default="rayleigh", init=False)

    def __post_init__(self):
        spectrum = np.asarray(self.spectrum, dtype=np.float64)
        if spectrum.ndim != 1 or spectrum.size < 2 or not np.isfinite(spectrum).all():
            raise ValueError("spectrum must be a finite 1-D array of at least 2 eigenvalues")
        if np.ptp(spectrum) == 0:
            raise ValueError("spectrum must not be constant (the loss would be constant)")
        if not (np.isfinite(self.noise) and self.noise >= 0):
            raise ValueError(f"noise must be finite and >= 0; got {self.noise!r}")
        object.__setattr__(self, "spectrum", spectrum)

    @classmethod
    def evenly_spaced(cls, dim: int, top: float = 1.0, noise: float = DEFAULT_NOISE) -> RayleighQuotient:
        """Spectrum ``0, top/(dim−1), …, top``: a zero bottom eigenvalue and effective sharpness ``2·top``."""
        if dim < 2:
            raise ValueError(f"dim must be >= 2; got {dim}")
        return cls(np.linspace(0.0, top, dim), noise)

    @property
    def dim(self) -> int:
        return self.spectrum.size

    @property
    def eff_sharpness(self) -> float:
        """Top Hessian eigenvalue at the unit-norm minimum: ``2(max(spectrum) − min(spectrum))``."""
        return 2.0 * float(np.ptp(self.spectrum))

    def loss_and_grad(self, w: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Quotient ``(n,)`` and the (noisy) gradient ``(n, dim)`` at ``w`` of shape ``(n, dim)``.

        ``∇L(w) = 2(A − L(w))w/‖w‖²``, formed with as few passes over ``w`` as possible (this is the hot loop).
        """
        squares = w * w
        norm_sq = squares.sum(axis=1)
        loss = (squares @ self.spectrum) / norm_sq
        grad = self.spectrum - loss[:, None]
        grad *= w
        grad *= (2.0 / norm_sq)[:, None]
        if self.noise:
            unit = w / np.sqrt(norm_sq)[:, None]
            xi = rng.standard_normal(w.shape)
            xi -= np.einsum("nd,nd->n", xi, unit)[:, None] * unit
            grad += (self.noise / np.sqrt(norm_sq))[:, None] * xi
        return loss, grad


@dataclass(frozen=True)
class SoftmaxRegression:
    """Scale-invariant softmax regression: logits ``s·X·W/‖W‖_F``, mean cross-entropy.

    ``W`` has shape ``(features, classes)`` and is flattened into the weights. The loss depends on W only
    through ``W/‖W‖_F``, so it is scale-invariant like a layer before BatchNorm(affine=False).

    Parameters
    ----------
    features : ndarray, shape (n_samples, n_features)
        Inputs, e.g. standardised sklearn digits.
    labels : ndarray of int, shape (n_samples,)
        Classes in ``0 … n_classes−1``.
    logit_scale : float
        s > 0, the norm of the logit map; it sets how low the loss on the sphere can go.
    batch_size : int or None
        Minibatch size for the gradient (sampled with replacement per config and step); None for full batch.
    """

    features: np.ndarray
    labels: np.ndarray
    logit_scale: float = 10.0
    batch_size: int | None = None
    name: str = field(default="softmax", init=False)

    def __post_init__(self):
        x = np.asarray(self.features, dtype=np.float64)
        y = np.asarray(self.labels)
        if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
            raise ValueError("features must be (n_samples, n_features) and labels (n_samples,)")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ValueError("labels must be non-negative integers")
        if not (np.isfinite(self.logit_scale) and self.logit_scale > 0):
            raise ValueError(f"logit_scale must be finite and > 0; got {self.logit_scale!r}")
        if self.batch_size is not None and not 0 < self.batch_size <= x.shape[0]:
            raise ValueError(f"batch_size must be in [1, n_samples={x.shape[0]}]; got {self.batch_size}")
        object.__setattr__(self, "features", x)
        object.__setattr__(self, "labels", y)

    @classmethod
    def digits(cls, logit_scale: float = 10.0, batch_size: int | None = None) -> SoftmaxRegression:
        """sklearn's digits (1797 × 64, 10 classes, shipped with scikit-learn), standardised per pixel."""
        return cls(*_standardized_digits(), logit_scale, batch_size)

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1

    @property
    def dim(self) -> int:
        return self.features.shape[1] * self.n_classes

    def loss_and_grad(self, w: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Minibatch loss ``(n,)`` and its gradient ``(n, dim)`` at ``w`` of shape ``(n, dim)``."""
        n = w.shape[0]
        unit, norm = _unit(w)
        if self.batch_size is None:
            x, y = self.features, np.broadcast_to(self.labels, (n, self.labels.size))
        else:
            index = rng.integers(0, self.labels.size, size=(n, self.batch_size))
            x, y = self.features[index], self.labels[index]
        logits = self.logit_scale * (x @ unit.reshape(n, self.features.shape[1], self.n_classes))
        loss, residual = _cross_entropy(logits, y)
        grad_unit = (self.logit_scale / y.shape[1]) * (np.swapaxes(x, -1, -2) @ residual).reshape(n, -1)
        # d(W/‖W‖)/dW projects out the radial part and divides by ‖W‖.
        tangent = grad_unit - np.sum(grad_unit * unit, axis=1, keepdims=True) * unit
        return loss, tangent / norm


@dataclass(frozen=True)
class BatchNormMLP:
    """A scale-invariant BatchNorm MLP with a frozen head: a small model of the nets, not a toy of one direction.

    ``depth`` hidden layers, each ``h_k = ReLU(BN(h_{k−1} W_k))`` with ``W_k`` of shape ``(in_k, width)`` (no bias;
    ``h_0 = X``, ``in_1 = n_features``, ``in_k = width`` after) and BatchNorm without affine parameters in train mode,
    per unit j over the minibatch's B samples::

        BN(z)_j = (z_j − mean(z_j)) / sqrt(var(z_j) + eps·‖W_k[:, j]‖²)      (var: biased, as torch's)

    then the frozen head, logits ``h_depth H`` with ``H`` of shape ``(width, n_classes)`` (no bias, not trained),
    and the mean cross-entropy over the minibatch. The trained weights are ``W_1 … W_depth``, each flattened in C
    order and concatenated into one row of ``w`` (:attr:`layer_slices`); ρ is the norm of that whole row.

    Every unit's column ``W_k[:, j]`` is scale-invariant on its own, so each layer is, and so is the row:
    ``L(cw) = L(w)``, ``∇L(cw) = ∇L(w)/c`` and ``W_k·∇_{W_k}L = 0`` per layer, exactly (to rounding). That is why
    eps is relative to the column's squared norm: torch's absolute eps breaks the invariance by a term that grows as
    the weights shrink; the relative one is the same number at unit scale and leaves no such term.

    Parameters
    ----------
    features : ndarray, shape (n_samples, n_features)
        Inputs, e.g. standardised sklearn digits (:meth:`digits`).
    labels : ndarray of int, shape (n_samples,)
        Classes in ``0 … n_classes−1``; ``n_classes`` is ``head.shape[1]``.
    head : ndarray, shape (width, n_classes)
        The frozen head H, finite and not zero; its shape sets ``width``.
    depth : int
        Hidden layers, ≥ 1.
    batch_size : int or None
        Samples per minibatch, drawn with replacement per config and step from ``rng``, in [2, n_samples] (BatchNorm
        needs two samples); None for the full batch.
    eps : float
        BatchNorm's eps relative to each unit's squared weight norm, > 0 (torch's default value).
    dtype : {"float64", "float32"}
        The precision of the forward and backward passes (the weights and the gradient handed back stay float64).
        float32, as the nets train, takes about 0.6 × the time; the identities then hold to float32's rounding.
    """

    features: np.ndarray
    labels: np.ndarray
    head: np.ndarray
    depth: int = 3
    batch_size: int | None = 512
    eps: float = 1e-5
    dtype: str = "float64"
    name: str = field(default="mlp", init=False)
    _workspaces: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        x = np.asarray(self.features, dtype=np.float64)
        y = np.asarray(self.labels)
        head = np.asarray(self.head, dtype=np.float64)
        if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] < 2 or not np.isfinite(x).all():
            raise ValueError("features must be finite (n_samples >= 2, n_features) and labels (n_samples,)")
        if head.ndim != 2 or not np.isfinite(head).all() or not head.any():
            raise ValueError("head must be a finite, non-zero (width, n_classes) array")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= head.shape[1]:
            raise ValueError(f"labels must be integers in [0, n_classes={head.shape[1]})")
        if int(self.depth) != self.depth or self.depth < 1:
            raise ValueError(f"depth must be an integer >= 1; got {self.depth!r}")
        if self.batch_size is not None and not (int(self.batch_size) == self.batch_size and 2 <= self.batch_size):
            raise ValueError(f"batch_size must be an integer >= 2 or None; got {self.batch_size!r}")
        if self.batch_size is not None and self.batch_size > x.shape[0]:
            raise ValueError(f"batch_size must be at most n_samples={x.shape[0]}; got {self.batch_size}")
        if not (np.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps must be finite and > 0; got {self.eps!r}")
        if self.dtype not in MLP_DTYPES:
            raise ValueError(f"dtype must be one of {MLP_DTYPES}; got {self.dtype!r}")
        object.__setattr__(self, "features", x.astype(self.dtype))
        object.__setattr__(self, "labels", y)
        object.__setattr__(self, "head", head.astype(self.dtype))
        object.__setattr__(self, "depth", int(self.depth))

    @classmethod
    def digits(
        cls,
        width: int = 32,
        depth: int = 3,
        batch_size: int | None = 512,
        head_norm: float = 10.0,
        head_seed: int = 0,
        dtype: str = "float64",
    ) -> BatchNormMLP:
        """The MLP on sklearn's digits standardised per pixel, its head a seeded Gaussian matrix of Frobenius norm
        ``head_norm`` (10: the norm bnwd's ConvNetSI freezes its head at)."""
        if int(width) != width or width < 1:
            raise ValueError(f"width must be an integer >= 1; got {width!r}")
        if not (np.isfinite(head_norm) and head_norm > 0):
            raise ValueError(f"head_norm must be finite and > 0; got {head_norm!r}")
        x, y = _standardized_digits()
        head = np.random.default_rng(head_seed).standard_normal((int(width), int(y.max()) + 1))
        return cls(x, y, head * (head_norm / np.linalg.norm(head)), depth, batch_size, dtype=dtype)

    @property
    def width(self) -> int:
        return self.head.shape[0]

    @property
    def n_classes(self) -> int:
        return self.head.shape[1]

    @cached_property
    def layer_shapes(self) -> tuple[tuple[int, int], ...]:
        """``(in_k, width)`` of each hidden layer's matrix, first layer first."""
        return ((self.features.shape[1], self.width),) + ((self.width, self.width),) * (self.depth - 1)

    @cached_property
    def layer_slices(self) -> tuple[slice, ...]:
        """Where each layer's matrix lies in a row of ``w``: ``w[:, layer_slices[k]]`` is ``W_{k+1}`` flattened."""
        ends = np.cumsum([rows * columns for rows, columns in self.layer_shapes])
        return tuple(slice(int(start), int(end)) for start, end in zip(np.r_[0, ends[:-1]], ends, strict=True))

    @property
    def dim(self) -> int:
        return self.layer_slices[-1].stop

    def layers(self, w: np.ndarray) -> list[np.ndarray]:
        """Views of each layer's matrices in ``w`` (n, dim): shapes ``(n, in_k, width)``."""
        return [
            w[:, part].reshape(-1, *shape) for part, shape in zip(self.layer_slices, self.layer_shapes, strict=True)
        ]

    def _workspace(self, n: int, batch: int) -> SimpleNamespace:
        """Arrays for one step of ``n`` configs on ``batch`` samples, kept between steps: a fresh array of this size
        per operation costs more (page faults) than the operation itself."""
        key = (n, batch)
        if key not in self._workspaces:
            self._workspaces.clear()
            hidden = (n, batch, self.width)
            self._workspaces[key] = SimpleNamespace(
                inputs=np.empty((n, batch, self.features.shape[1]), self.dtype),
                normalized=[np.empty(hidden, self.dtype) for _ in range(self.depth)],
                activations=[np.empty(hidden, self.dtype) for _ in range(self.depth)],
                inv_std=[np.empty((n, self.width), self.dtype) for _ in range(self.depth)],
                logits=np.empty((n, batch, self.n_classes), self.dtype),
                upstream=np.empty(hidden, self.dtype),
                scratch=np.empty(hidden, self.dtype),
                active=np.empty(hidden, dtype=bool),
            )
        return self._workspaces[key]

    def loss_and_grad(self, w: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Minibatch loss ``(n,)`` and its gradient ``(n, dim)`` at ``w`` of shape ``(n, dim)``, by backpropagation.

        BLAS runs on one thread: the matrices (B × in × width per config) are too small for more to pay. Measured on
        2 cores with the grid's 12 configs, width 32 × depth 3, batch 512: the same wall time alone, and 5 to 20
        times the CPU time with a second thread when another job shares the cores (its threads wait on each other).

        Per layer, with ``x̂ = BN(z)``, ``σ_j = sqrt(var(z_j) + eps·‖W[:, j]‖²)`` and ``g = ∂L/∂x̂`` (ReLU's mask
        applied): ``∂L/∂z = (g − mean(g) − x̂·mean(g·x̂))/σ`` (means over the batch),
        ``∂L/∂W = h_inᵀ ∂L/∂z − B·eps·mean(g·x̂)/σ²·W`` (the second term through eps's ‖W[:, j]‖²) and
        ``∂L/∂h_in = ∂L/∂z Wᵀ``. Every config has its own minibatch; all are one stack of matmuls, written into
        arrays kept between steps (this is the hot loop).
        """
        with _blas_controller().limit(limits=1, user_api="blas"):
            return self._loss_and_grad(w, rng)

    def _loss_and_grad(self, w: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        n = w.shape[0]
        if self.batch_size is None:
            y = np.broadcast_to(self.labels, (n, self.labels.size))
            space = self._workspace(n, y.shape[1])
            x = self.features
        else:
            index = rng.integers(0, self.labels.size, size=(n, self.batch_size))
            y = self.labels[index]
            space = self._workspace(n, y.shape[1])
            x = np.take(self.features, index, axis=0, out=space.inputs)
        batch = y.shape[1]
        weights = self.layers(w.astype(self.dtype, copy=False))
        inputs = [x, *space.activations[:-1]]
        for weight, h, xhat, scale, out in zip(
            weights, inputs, space.normalized, space.inv_std, space.activations, strict=True
        ):
            np.matmul(h, weight, out=xhat)
            xhat -= xhat.mean(axis=1, keepdims=True)
            np.einsum("nbj,nbj->nj", xhat, xhat, out=scale)
            scale /= batch
            scale += self.eps * np.einsum("nij,nij->nj", weight, weight)
            np.sqrt(scale, out=scale)
            np.reciprocal(scale, out=scale)
            xhat *= scale[:, None, :]
            np.maximum(xhat, 0.0, out=out)
        loss, residual = _cross_entropy(np.matmul(space.activations[-1], self.head, out=space.logits), y)
        residual /= batch
        grad = np.empty(w.shape, self.dtype)
        upstream, scratch = space.upstream, space.scratch
        np.matmul(residual, self.head.T, out=upstream)  # ∂L/∂h of the last hidden layer
        for k in reversed(range(self.depth)):
            xhat, scale, weight = space.normalized[k], space.inv_std[k], weights[k]
            upstream *= np.greater(xhat, 0.0, out=space.active)  # ReLU
            mean_g = upstream.mean(axis=1, keepdims=True)
            mean_gx = np.einsum("nbj,nbj->nj", upstream, xhat) / batch
            upstream -= mean_g
            upstream -= np.multiply(xhat, mean_gx[:, None, :], out=scratch)
            upstream *= scale[:, None, :]  # now ∂L/∂z
            grad_layer = grad[:, self.layer_slices[k]].reshape(weight.shape)  # a view: matmul writes into grad
            np.matmul(np.swapaxes(inputs[k], -1, -2), upstream, out=grad_layer)
            grad_layer -= weight * ((batch * self.eps) * mean_gx * scale**2)[:, None, :]
            if k:
                np.matmul(upstream, np.swapaxes(weight, -1, -2), out=scratch)
                upstream, scratch = scratch, upstream
        return loss.astype(np.float64, copy=False), grad.astype(np.float64, copy=False)
