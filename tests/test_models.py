"""The toy scale-invariant models (simulate.models): invariance, tangent gradients, exact gradients, s̃."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from bnwd.simulate.models import RayleighQuotient, SoftmaxRegression

SEEDS = st.integers(0, 2**32 - 1)


def small_softmax(seed: int, batch_size=None) -> SoftmaxRegression:
    rng = np.random.default_rng(seed)
    return SoftmaxRegression(rng.standard_normal((40, 5)), rng.integers(0, 3, 40), 4.0, batch_size)


def toy_models(seed: int):
    return [
        RayleighQuotient.evenly_spaced(6, 1.5, noise=0.0),
        RayleighQuotient.evenly_spaced(6, 1.5, noise=0.3),
        small_softmax(seed),
        small_softmax(seed, batch_size=8),
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
