"""simulate.catapult: the three-phase simulator against the theory's period, its own map, the (η, λ) symmetry, and
analysis.catapult's measurement of the constants it was fed (a round trip); one-run calibration on runs it made."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnwd import theory
from bnwd.analysis.catapult import CatapultConstants, catapult_constants, catapults
from bnwd.simulate.catapult import (
    one_run_calibrations,
    power_law_held_out,
    shuffled_constants,
    simulate_catapults,
    simulated_periods,
)


def constants(lr=1.0, wd=0.01, *, spread=0.0, quiet=1e-9, **changes) -> CatapultConstants:
    values = {
        "elr_event": 0.02,
        "elr_event_spread": spread,
        "far_grad_norm": 60.0,
        "far_grad_norm_spread": spread,
        "landing_angle": 0.4,
        "landing_angle_spread": spread,
        "spike_steps": 5.0,
        "quiet_grad_norm": quiet,
        "quiet_steps": 50.0,
        "lr": lr,
        "wd": wd,
        "momentum": 0.0,
        "n_catapults": 10,
    }
    return CatapultConstants(**(values | changes))


@settings(max_examples=15, deadline=None)
@given(
    lr_wd=st.floats(0.002, 0.03),
    elr_event=st.floats(0.02, 0.05),
    far=st.floats(30.0, 100.0),  # η̃_e·g_far > θ_land: the landing is below the threshold
    angle=st.floats(0.2, 0.5),
    spike=st.integers(1, 8),
)
def test_without_quiet_gradients_the_period_is_the_theory_s(lr_wd, elr_event, far, angle, spike):
    """Pure decay between spikes (slowdown 1): each period is ``theory.catapult_period`` rounded up to whole steps,
    at the calibration's own ηλ."""
    fed = constants(1.0, lr_wd, elr_event=elr_event, far_grad_norm=far, landing_angle=angle, spike_steps=spike)
    (found,) = simulated_periods(fed, 1.0, lr_wd, steps=4000, seeds=1)
    expected = float(theory.catapult_period(elr_event, far, angle, 1.0, spike, 1.0, lr_wd))
    assert found.regime == "periodic"
    assert expected <= found.period <= expected + 1
    assert found.period_std < 1


@settings(max_examples=20, deadline=None)
@given(lr_wd=st.floats(0.002, 0.03), quiet=st.floats(0.5, 20.0), tau=st.floats(5.0, 200.0))
def test_quiet_steps_follow_the_exact_elr_map(lr_wd, quiet, tau):
    run = simulate_catapults(constants(1.0, lr_wd, quiet=quiet, quiet_steps=tau), 1.0, lr_wd, steps=600, seeds=1)
    elr, grad = run.elr[0], run.eff_grad_norm[0]
    quiet_steps = grad[:-1] < 60.0
    expected = theory.elr_after_step(elr[:-1], grad[:-1], 1.0, lr_wd)
    np.testing.assert_allclose(elr[1:][quiet_steps], expected[quiet_steps], rtol=1e-12)


def test_quiet_gradients_slow_the_decay():
    lr_wd = 0.01
    without, with_gradients = (
        simulated_periods(constants(1.0, lr_wd, quiet=q), 1.0, lr_wd, steps=3000, seeds=1)[0].period for q in (0, 10)
    )
    assert with_gradients > without * 1.02


@settings(max_examples=15, deadline=None)
@given(scale=st.floats(0.2, 5.0), spread=st.floats(0.0, 0.5))
def test_only_the_product_lr_wd_matters_without_momentum(scale, spread):
    """(η, λ) → (cη, λ/c) leaves η̃'s dynamics unchanged (the symmetry's consequence for η̃ and ‖g̃‖)."""
    fed = constants(spread=spread, quiet=5.0)
    base = simulate_catapults(fed, [1.0, 0.5], [0.01, 0.04], steps=1500, seeds=2)
    scaled = simulate_catapults(fed, [scale, 0.5 * scale], [0.01 / scale, 0.04 / scale], steps=1500, seeds=2)
    for mine, theirs in zip(base.events, scaled.events, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_allclose(base.elr, scaled.elr, rtol=1e-9)


def test_round_trip_measures_the_constants_it_was_fed():
    """analysis.catapult on the simulator's own series recovers what it was fed (no spread)."""
    lr, wd = 1.0, 0.01
    fed = constants(lr, wd, quiet=6.0)
    run = simulate_catapults(fed, lr, wd, steps=3000, seeds=1)
    found = catapults(run.elr[0], run.eff_grad_norm[0], None, run.events[0], lr=lr, wd=wd)
    measured = catapult_constants(found, run.eff_grad_norm[0], lr=lr, wd=wd)
    assert measured.far_grad_norm == pytest.approx(fed.far_grad_norm)
    assert measured.landing_angle == pytest.approx(fed.landing_angle)
    assert measured.spike_steps == fed.spike_steps
    assert measured.quiet_grad_norm == pytest.approx(fed.quiet_grad_norm, rel=1e-9)
    assert measured.quiet_steps == pytest.approx(fed.quiet_steps, rel=1e-9)
    # η̃ at an event passed the threshold within the last quiet step's growth
    assert fed.elr_event <= measured.elr_event <= fed.elr_event * (1 - lr * wd) ** -2
    assert measured.far_grad_norm_spread == pytest.approx(0, abs=1e-12)


def test_momentum_moves_the_threshold_and_the_decay():
    fed = constants(quiet=5.0)
    plain, heavy = simulated_periods(fed, [1.0, 0.1], [0.01, 0.01], [0.0, 0.9], steps=20000, seeds=1)
    ratio = theory.stability_threshold(0.1, 0.01, 0.9) / theory.stability_threshold(1.0, 0.01, 0.0)
    # momentum at the same ηλ/(1−β): the same decay per step, a threshold `ratio` higher, a lower landing
    assert ratio > 1.8
    assert heavy.period > plain.period


def test_a_short_budget_never_destabilises():
    (found,) = simulated_periods(constants(), 1.0, 0.01, steps=50, seeds=2, elr0=1e-4)
    assert found.regime == "convergent" and found.n_events == 0 and math.isnan(found.period)


def test_a_quiet_gradient_that_does_not_relax_holds_the_equilibrium():
    """τ_q = ∞: η̃ settles where the map's gradient term balances the decay, η̃* = √(1−(1−ηλ)²)/g_q, and never
    destabilises when η̃* < η̃_e; above η̃_e it is periodic."""
    lr_wd = 0.0025
    fixed_point = math.sqrt(1 - (1 - lr_wd) ** 2) / 2.0
    below, above = (
        simulated_periods(constants(quiet=2.0, quiet_steps=math.inf, elr_event=e), 1.0, lr_wd, steps=8000, seeds=2)[0]
        for e in (fixed_point * 1.5, fixed_point / 1.5)
    )
    assert below.regime == "equilibrium" and above.regime == "periodic"
    run = simulate_catapults(
        constants(quiet=2.0, quiet_steps=math.inf, elr_event=fixed_point * 1.5), 1.0, lr_wd, steps=8000, seeds=1
    )
    assert run.elr[0, -1] == pytest.approx(fixed_point, rel=1e-6)


def test_a_start_above_the_landing_lands_without_a_destabilisation():
    run = simulate_catapults(constants(), 1.0, 0.01, steps=30, seeds=2, elr0=5.0)
    np.testing.assert_allclose(run.elr[:, 0], 0.4 / 60.0)
    assert all(events.size == 0 for events in run.events)


def test_seeded_and_reproducible():
    fed = constants(spread=0.3, quiet=5.0)
    first, second = (simulate_catapults(fed, 1.0, [0.005, 0.02], steps=800, seeds=3, seed=7) for _ in range(2))
    np.testing.assert_array_equal(first.elr, second.elr)
    other = simulate_catapults(fed, 1.0, [0.005, 0.02], steps=800, seeds=3, seed=8)
    assert not np.array_equal(first.elr, other.elr)
    # a configuration's runs do not depend on the batch around it
    alone = simulate_catapults(fed, 1.0, 0.02, steps=800, seeds=3, seed=7)
    np.testing.assert_array_equal(alone.elr, first.elr[3:])


def test_power_law_held_out_is_exact_on_a_power_law():
    lr_wd = np.array([0.0025, 0.005, 0.01, 0.02, 0.01])
    measured = 3.0 * lr_wd**-0.8
    np.testing.assert_allclose(power_law_held_out(lr_wd, measured), measured)
    two = power_law_held_out(lr_wd[:2], measured[:2])
    assert np.isnan(two).all()  # one other product: no line


def test_one_run_calibration_on_runs_the_simulator_made():
    """Measured periods made by the simulator with one set of constants: every calibration run carries them, so the
    held-out predictions are near exact and beat T·ηλ = const (the simulated law is not a pure 1/ηλ); the control
    with another landscape's constants shuffled in does worse."""
    lr = np.ones(4)
    wd = np.array([0.0025, 0.005, 0.01, 0.02])
    truth = constants(quiet=8.0, spread=0.2)
    measured = np.array([p.period for p in simulated_periods(truth, lr, wd, steps=6000, seeds=8, seed=1)])
    fed = [truth] * 3 + [constants(quiet=0.5, elr_event=0.2, far_grad_norm=20.0)]
    found = one_run_calibrations(fed, lr, wd, np.zeros(4), measured, steps=6000, seeds=8)
    assert [c.calibration for c in found] == [0, 1, 2, 3]
    for c in found[:3]:
        assert not c.held_out[c.calibration]
        assert c.scores.errors["prediction"] < 0.1
        assert c.scores.errors["prediction"] < c.scores.errors["constant_period_times_lr_wd"]
    assert found[3].scores.errors["prediction"] > 0.3


def test_shuffled_constants_take_other_runs_values():
    own, other = constants(), constants(elr_event=0.5, far_grad_norm=1.0, quiet_steps=3.0)
    mixed = shuffled_constants(own, [other])
    assert (mixed.elr_event, mixed.far_grad_norm, mixed.quiet_steps) == (0.5, 1.0, 3.0)
    assert (mixed.lr, mixed.wd) == (own.lr, own.wd)
    several = [constants(wd=wd, elr_event=wd) for wd in (0.001, 0.002, 0.003)]
    assert shuffled_constants(own, several, seed=3) == shuffled_constants(own, several[::-1], seed=3)


def test_bad_input():
    with pytest.raises(ValueError, match="steps"):
        simulate_catapults(constants(), 1.0, 0.01, steps=0)
    with pytest.raises(ValueError):
        simulate_catapults(constants(), 2.0, 0.6, steps=10)
    with pytest.raises(ValueError, match="at least"):
        catapult_constants([], np.ones(3), lr=1.0, wd=0.01)
