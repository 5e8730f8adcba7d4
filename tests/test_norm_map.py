"""The norm and η̃ maps (simulate.norm_map): replaying the gradient norms reproduces ρ and η̃."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from test_models import SEEDS

from bnwd.simulate.integrate import integrate
from bnwd.simulate.models import RayleighQuotient
from bnwd.simulate.norm_map import replay_elr, replay_si_norm


@settings(max_examples=15)
@given(seed=SEEDS, dim=st.integers(2, 20), noise=st.sampled_from([0.0, 0.1, 1.0]), lr_wd=st.floats(1e-4, 0.05))
def test_replaying_the_gradient_norms_reproduces_norm_and_elr(seed, dim, noise, lr_wd):
    """The exact maps of :mod:`theory`, fed a run's ‖∇L‖ (or ‖g̃‖), rebuild its ρ and η̃ to float precision."""
    lr = np.array([0.3, 1.0, 3.0])
    model = RayleighQuotient(np.random.default_rng(seed).uniform(0, 2, dim), noise)
    run = integrate(model, lr, lr_wd / lr, steps=400, seed=seed)
    rho, elr = run.series["si_norm"], run.series["elr"]
    assert_allclose(replay_si_norm(run.series["grad_norm"], lr, lr_wd / lr, rho[:, 0])[:, :-1], rho, rtol=1e-12)
    assert_allclose(replay_elr(run.series["eff_grad_norm"], lr, lr_wd / lr, elr[:, 0])[:, :-1], elr, rtol=1e-12)
