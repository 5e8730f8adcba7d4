"""The batched integrator (simulate.integrate): torch's SGD to the bit, seeds, the fixed-norm modes, the angle."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from test_models import SEEDS

from bnwd import theory
from bnwd.analysis.schema import SERIES
from bnwd.simulate.integrate import initial_weights, integrate, lr_for_fixed_elr
from bnwd.simulate.models import RayleighQuotient


@settings(max_examples=15)
@given(
    seed=SEEDS,
    lr=st.floats(0.05, 2.0),
    wd=st.floats(1e-4, 0.05),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    noise=st.sampled_from([0.0, 0.2]),
)
def test_integrator_is_torch_sgd(seed, lr, wd, momentum, noise):
    """Same start, same gradients: the batched update equals torch.optim.SGD's, step for step."""
    model = RayleighQuotient.evenly_spaced(5, 1.0, noise=noise)
    steps = 25
    ours = integrate(model, lr, wd, momentum=momentum, steps=steps, si_norm0=1.3, seed=seed)
    w = torch.tensor(initial_weights(1, model.dim, 1.3, seed), requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=lr, momentum=momentum, weight_decay=wd)
    rng = np.random.default_rng([seed, 1])  # the integrator's noise stream
    for _ in range(steps):
        _, grad = model.loss_and_grad(w.detach().numpy(), rng)
        w.grad = torch.from_numpy(grad)
        optimizer.step()
    assert_allclose(ours.final_weights, w.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_same_seed_same_bits_and_other_seed_other_run():
    model = RayleighQuotient.evenly_spaced(8, noise=0.5)
    runs = [integrate(model, [0.5, 1.0], 0.01, steps=200, seed=s) for s in (3, 3, 4)]
    for name in SERIES:
        assert np.array_equal(runs[0].series[name], runs[1].series[name])
    assert not np.array_equal(runs[0].series["si_norm"], runs[2].series["si_norm"])


def test_fixed_norm_and_fixed_elr_modes_keep_the_norm():
    model = RayleighQuotient.evenly_spaced(8, noise=0.3)
    lr = lr_for_fixed_elr([0.1, 0.5], 2.0)
    run = integrate(model, lr, 0.01, momentum=0.9, steps=300, mode="fixed_norm", si_norm0=2.0)
    assert_allclose(run.series["si_norm"], 2.0, rtol=1e-13)
    assert_allclose(run.series["elr"], np.broadcast_to([[0.1], [0.5]], (2, 300)), rtol=1e-12)


def test_recorded_angle_is_the_theory_angle_without_momentum():
    run = integrate(RayleighQuotient.evenly_spaced(10, noise=0.2), [0.5, 2.0], [0.01, 0.002], steps=300)
    s = run.series
    expected = theory.angular_update(s["elr"], s["eff_grad_norm"], run.lr[:, None], run.wd[:, None])
    assert_allclose(s["angular_update"], expected, rtol=1e-9, atol=1e-15)
