"""The toy scale-invariant models (simulate.models): invariance, tangent gradients, exact gradients, s̃; the BatchNorm
MLP's gradient against torch autograd of the same net."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from bnwd.simulate.models import MLP_DTYPES, BatchNormMLP, RayleighQuotient, SoftmaxRegression, row_norms

SEEDS = st.integers(0, 2**32 - 1)


def small_softmax(seed: int, batch_size=None) -> SoftmaxRegression:
    rng = np.random.default_rng(seed)
    return SoftmaxRegression(rng.standard_normal((40, 5)), rng.integers(0, 3, 40), 4.0, batch_size)


def small_mlp(seed: int, depth: int = 2, batch_size=None) -> BatchNormMLP:
    rng = np.random.default_rng(seed)
    return BatchNormMLP(
        rng.standard_normal((30, 5)), rng.integers(0, 3, 30), rng.standard_normal((4, 3)), depth, batch_size
    )


def toy_models(seed: int):
    return [
        RayleighQuotient.evenly_spaced(6, 1.5, noise=0.0),
        RayleighQuotient.evenly_spaced(6, 1.5, noise=0.3),
        small_softmax(seed),
        small_softmax(seed, batch_size=8),
        small_mlp(seed),
        small_mlp(seed, depth=3, batch_size=8),
    ]


@settings(max_examples=20)
@given(seed=SEEDS, scale=st.floats(0.01, 100.0))
def test_models_are_scale_invariant_with_tangent_gradients(seed, scale):
    for model in toy_models(seed):
        w = np.random.default_rng(seed).standard_normal((3, model.dim))
        loss, grad = model.loss_and_grad(w, np.random.default_rng(seed))
        loss_c, grad_c = model.loss_and_grad(scale * w, np.random.default_rng(seed))
        assert_allclose(loss_c, loss, rtol=1e-12)
        assert_allclose(grad_c, grad / scale, rtol=1e-9, atol=1e-12 * np.abs(grad).max() / scale)
        assert_allclose(np.sum(w * grad, axis=1), 0.0, atol=1e-12 * np.linalg.norm(w) * np.abs(grad).max())


@settings(max_examples=10)
@given(seed=SEEDS)
def test_full_batch_gradients_match_finite_differences(seed):
    rng = np.random.default_rng(seed)
    for model in (RayleighQuotient(rng.uniform(0, 2, 5), noise=0.0), small_softmax(seed)):
        w = rng.standard_normal((1, model.dim))
        _, grad = model.loss_and_grad(w, rng)
        step = 1e-6
        basis = np.eye(model.dim)
        numeric = [
            (model.loss_and_grad(w + step * e, rng)[0] - model.loss_and_grad(w - step * e, rng)[0])[0] / (2 * step)
            for e in basis
        ]
        assert_allclose(grad[0], numeric, rtol=1e-6, atol=1e-8)


def test_rayleigh_effective_sharpness_is_the_top_hessian_eigenvalue_at_the_minimum():
    model = RayleighQuotient(np.array([0.3, 0.7, 1.9, 1.1]), noise=0.0)
    minimum = np.eye(4)[0]
    step = 1e-5
    columns = [
        (
            model.loss_and_grad((minimum + step * e)[None], None)[1]
            - model.loss_and_grad((minimum - step * e)[None], None)[1]
        )[0]
        / (2 * step)
        for e in np.eye(4)
    ]
    assert_allclose(np.linalg.eigvalsh(np.array(columns)).max(), model.eff_sharpness, rtol=1e-7)


@settings(max_examples=20)
@given(seed=SEEDS, depth=st.integers(1, 3), batch_size=st.sampled_from([None, 3, 7]), scales=st.data())
def test_each_mlp_layer_is_scale_invariant_on_its_own(seed, depth, batch_size, scales):
    # Not batch 2: BatchNorm then maps every unit to ±1 whatever the weights, the gradient is eps's term alone
    # (~1e-5 of the rest) and w·g's rounding is not small against it.
    model = small_mlp(seed, depth, batch_size)
    w = np.random.default_rng(seed).standard_normal((2, model.dim))
    factors = np.ones(model.dim)
    for part in model.layer_slices:  # a different factor per layer: the loss cannot tell them apart either
        factors[part] = scales.draw(st.floats(0.01, 100.0))
    loss, grad = model.loss_and_grad(w, np.random.default_rng(seed))
    loss_c, grad_c = model.loss_and_grad(factors * w, np.random.default_rng(seed))
    assert_allclose(loss_c, loss, rtol=1e-12)
    assert_allclose(grad_c * factors, grad, rtol=1e-8, atol=1e-12 * np.abs(grad).max())
    for part in model.layer_slices:
        radial = np.sum(w[:, part] * grad[:, part], axis=1)
        scale = np.linalg.norm(w[:, part], axis=1) * np.linalg.norm(grad, axis=1)
        assert np.all(np.abs(radial) <= 1e-12 * scale)  # zero to rounding


def torch_mlp_loss(model: BatchNormMLP, weights: list, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The same net in torch, written from the model's docstring: Linear, BatchNorm (eps relative), ReLU, head."""
    h = x
    for weight in weights:
        z = h @ weight
        variance = z.var(dim=0, unbiased=False) + model.eps * (weight**2).sum(dim=0)
        h = torch.relu((z - z.mean(dim=0)) / variance.sqrt())
    return torch.nn.functional.cross_entropy(h @ torch.from_numpy(model.head), y)


@settings(max_examples=10)
@given(seed=SEEDS, depth=st.integers(1, 3))
def test_mlp_gradient_is_torch_autograd_of_the_same_net(seed, depth):
    model = small_mlp(seed, depth, batch_size=11)
    w = np.random.default_rng(seed).standard_normal((3, model.dim))
    loss, grad = model.loss_and_grad(w, np.random.default_rng(seed))
    index = np.random.default_rng(seed).integers(0, model.labels.size, size=(3, 11))  # the draw the model made
    for i in range(3):
        weights = [torch.tensor(layer, requires_grad=True) for layer in model.layers(w[i : i + 1])]
        x, y = torch.from_numpy(model.features[index[i]]), torch.from_numpy(model.labels[index[i]])
        expected = torch_mlp_loss(model, [layer[0] for layer in weights], x, y)
        expected.backward()
        assert_allclose(loss[i], expected.item(), rtol=1e-12)
        assert_allclose(grad[i], np.concatenate([layer.grad.numpy().ravel() for layer in weights]), atol=1e-10)


def test_mlp_in_float32_is_the_float64_net_to_float32_rounding():
    wide, narrow = (BatchNormMLP.digits(width=16, depth=3, batch_size=64, dtype=dtype) for dtype in MLP_DTYPES)
    w = np.random.default_rng(3).standard_normal((4, wide.dim))
    (loss, grad), (loss32, grad32) = (m.loss_and_grad(w, np.random.default_rng(9)) for m in (wide, narrow))
    assert loss32.dtype == grad32.dtype == np.float64  # handed back in the integrator's precision
    assert_allclose(loss32, loss, rtol=1e-5)
    assert_allclose(grad32, grad, atol=1e-5 * np.abs(grad).max())
    for part in narrow.layer_slices:  # still tangent per layer, to float32's rounding
        radial = np.einsum("nd,nd->n", w[:, part], grad32[:, part])
        assert np.all(np.abs(radial) <= 1e-5 * row_norms(w[:, part]) * row_norms(grad32[:, part]))


def test_mlp_is_deterministic_for_a_seed_and_draws_a_minibatch_per_config():
    model = BatchNormMLP.digits(width=8, depth=2, batch_size=16)
    w = np.tile(np.random.default_rng(0).standard_normal(model.dim), (2, 1))
    first = model.loss_and_grad(w, np.random.default_rng(5))
    again = model.loss_and_grad(w, np.random.default_rng(5))
    for a, b in zip(first, again, strict=True):
        assert_allclose(a, b, rtol=0, atol=0)
    assert first[0][0] != first[0][1]  # the same weights, two minibatches
    assert BatchNormMLP.digits(width=8, depth=2).head.tolist() == model.head.tolist()
    assert not np.array_equal(BatchNormMLP.digits(width=8, depth=2, head_seed=1).head, model.head)


def test_mlp_digits_shapes_and_frozen_head_norm():
    model = BatchNormMLP.digits()
    assert (model.width, model.depth, model.batch_size, model.n_classes) == (32, 3, 512, 10)
    assert model.layer_shapes == ((64, 32), (32, 32), (32, 32))
    assert [s.stop - s.start for s in model.layer_slices] == [2048, 1024, 1024] and model.dim == 4096
    assert_allclose(np.linalg.norm(model.head), 10.0)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"features": np.zeros((1, 5))}, "features must be finite"),
        ({"features": np.full((30, 5), np.nan)}, "features must be finite"),
        ({"labels": np.full(30, 3)}, "labels must be integers in [0, n_classes=3)"),
        ({"labels": np.zeros(30)}, "labels must be integers"),
        ({"head": np.zeros((4, 3))}, "head must be a finite, non-zero"),
        ({"head": np.ones(4)}, "head must be a finite, non-zero"),
        ({"depth": 0}, "depth must be an integer >= 1"),
        ({"depth": 1.5}, "depth must be an integer >= 1"),
        ({"batch_size": 1}, "batch_size must be an integer >= 2"),
        ({"batch_size": 31}, "batch_size must be at most n_samples=30"),
        ({"eps": 0.0}, "eps must be finite and > 0"),
        ({"dtype": "float16"}, "dtype must be one of"),
    ],
)
def test_mlp_rejects_bad_inputs(change, fragment):
    rng = np.random.default_rng(0)
    values = {
        "features": rng.standard_normal((30, 5)),
        "labels": rng.integers(0, 3, 30),
        "head": np.ones((4, 3)),
        "batch_size": None,
    }
    with pytest.raises(ValueError, match=re.escape(fragment)):
        BatchNormMLP(**(values | change))


@pytest.mark.parametrize(
    ("change", "fragment"), [({"width": 0}, "width must be an integer >= 1"), ({"head_norm": -1.0}, "head_norm")]
)
def test_mlp_digits_rejects_bad_sizes(change, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        BatchNormMLP.digits(**change)
