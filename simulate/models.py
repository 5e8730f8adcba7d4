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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["DEFAULT_NOISE", "RayleighQuotient", "SoftmaxRegression", "row_norms"]

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
        from sklearn.datasets import load_digits

        data = load_digits()
        x = data.data - data.data.mean(axis=0)
        x /= np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        return cls(x, data.target, logit_scale, batch_size)

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
        logits -= logits.max(axis=2, keepdims=True)
        log_prob = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
        loss = -np.take_along_axis(log_prob, y[..., None], axis=2)[..., 0].mean(axis=1)
        residual = np.exp(log_prob)  # softmax − one-hot: the gradient of the cross-entropy in the logits
        np.put_along_axis(residual, y[..., None], np.take_along_axis(residual, y[..., None], axis=2) - 1.0, axis=2)
        grad_unit = (self.logit_scale / y.shape[1]) * (np.swapaxes(x, -1, -2) @ residual).reshape(n, -1)
        # d(W/‖W‖)/dW projects out the radial part and divides by ‖W‖.
        tangent = grad_unit - np.sum(grad_unit * unit, axis=1, keepdims=True) * unit
        return loss, tangent / norm
