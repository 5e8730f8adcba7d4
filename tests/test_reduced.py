"""Tests of simulate.reduced: the reduced model of periodic training against the theory, the two-level toy it
stands for, and the full toy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from bnwd.analysis.destabilization import analyze
from bnwd.simulate.integrate import initial_weights, integrate
from bnwd.simulate.models import RayleighQuotient
from bnwd.simulate.reduced import ReducedModel, held_out_periods, predict_period, run_reduced

SERIES = ("si_norm", "elr", "angular_update", "loss", "eff_grad_norm")


@settings(max_examples=20, deadline=None)
@given(lr=st.floats(0.1, 3.0), wd=st.floats(1e-4, 0.05), ratio=st.floats(0.05, 1.9), angle=st.floats(1e-9, 1e-6))
def test_one_step_at_the_minimum_is_the_linear_theorys(lr, wd, ratio, angle):
    # η̃s̃ = ratio·(1−ηλ): the angle is multiplied by 1 − η̃s̃/(1−ηλ) = 1 − ratio, and η̃ grows by (1−ηλ)⁻²
    s_eff = 2.0
    elr = ratio * (1 - lr * wd) / s_eff
    out = run_reduced(ReducedModel(s_eff), lr, wd, steps=2, elr0=elr, angle0=angle)
    assert out["angle"][0, 1] == pytest.approx(abs(1 - ratio) * angle, rel=1e-6, abs=1e-15)
    assert out["elr"][0, 1] == pytest.approx(elr / (1 - lr * wd) ** 2, rel=1e-9)


def _two_level_toy(eff_sharpness: float, dim: int, noise: float) -> RayleighQuotient:
    """The Rayleigh toy the reduced model stands for: spectrum 0, …, 0, s̃/2."""
    return RayleighQuotient(np.r_[np.zeros(dim - 1), eff_sharpness / 2], noise)


def _same_start(n: int, dim: int, seed: int) -> np.ndarray:
    """The angles to the minimum (the flat directions) of the toy's seeded initial weights, shape (n,)."""
    w = initial_weights(n, dim, 1.0, seed)
    return np.arctan2(np.abs(w[:, -1]), np.linalg.norm(w[:, :-1], axis=1))


@settings(max_examples=200, deadline=None)
@given(
    dim=st.integers(2, 40),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    lr=st.floats(0.2, 2.0),
    lr_wd=st.floats(1e-3, 2e-2),
    eff_sharpness=st.floats(0.3, 3.0),
    seed=st.integers(0, 100),
)
def test_without_noise_it_is_the_two_level_toy(dim, momentum, lr, lr_wd, eff_sharpness, seed):
    toy = _two_level_toy(eff_sharpness, dim, 0.0)
    expected = integrate(toy, [lr], [lr_wd / lr], momentum=momentum, steps=100, seed=seed).series
    reduced = run_reduced(
        ReducedModel(eff_sharpness, 0.0, dim),
        lr,
        lr_wd / lr,
        momentum=momentum,
        steps=100,
        elr0=lr,
        angle0=_same_start(1, dim, seed),
    )
    for name in SERIES:
        # the same arithmetic in another order: rounding of O(1) weights (1e-16), grown by the dynamics over 100
        # steps, shows in the angles and the loss when they are tiny
        np.testing.assert_allclose(reduced[name][0], expected[name][0], rtol=1e-6, atol=1e-10, err_msg=name)


def test_with_noise_it_is_the_two_level_toy_in_distribution():
    # 400 configurations from the toy's random starts, 60 steps of strong noise: the reduced model draws the noise's
    # components in its frame instead of the vector, so only the distribution can agree
    n, dim, lr, wd, momentum, noise, steps = 400, 10, 0.5, 0.01, 0.5, 0.05, 60
    toy = integrate(_two_level_toy(2.0, dim, noise), np.full(n, lr), wd, momentum=momentum, steps=steps, seed=1)
    model = ReducedModel(2.0, noise, dim)
    reduced = run_reduced(model, lr, wd, momentum=momentum, steps=steps, elr0=lr, angle0=_same_start(n, dim, 1), seed=2)
    for name in ("si_norm", "loss", "eff_grad_norm", "angular_update"):
        # two-sample Kolmogorov–Smirnov: at this n a 10 % shift in a quantile gives p ≈ 1e-2 … 1e-4
        assert stats.ks_2samp(toy.series[name][:, -1], reduced[name][:, -1]).pvalue > 1e-3, name
    # control: the reduced model without its noise is told apart
    quiet = run_reduced(
        ReducedModel(2.0, 0.0, dim), lr, wd, momentum=momentum, steps=steps, elr0=lr, angle0=_same_start(n, dim, 1)
    )
    assert stats.ks_2samp(toy.series["si_norm"][:, -1], quiet["si_norm"][:, -1]).pvalue < 1e-6


@settings(max_examples=3, deadline=None)
@given(lr=st.sampled_from([0.5, 1.0, 2.0]), wd=st.sampled_from([0.0025, 0.005, 0.01]))
def test_predicts_the_noisy_toys_period(lr, wd):
    toy = RayleighQuotient.evenly_spaced(64, noise=1e-5)
    series = integrate(toy, [lr], [wd], steps=12000, seed=0).series
    measured = analyze({k: series[k][0] for k in SERIES}, lr=lr, wd=wd)
    (predicted,) = predict_period(ReducedModel(toy.eff_sharpness, toy.noise, toy.dim), lr, wd, steps=12000)
    assert measured.regime == predicted["regime"] == "periodic"
    assert predicted["period"] == pytest.approx(measured.period, rel=0.2)


@settings(max_examples=6, deadline=None)
@given(
    dim=st.integers(8, 64),
    gap=st.floats(0.3, 0.9),
    log_noise=st.floats(-5.0, -4.0),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    lr=st.floats(0.3, 3.0),
    fraction=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_predicts_the_toys_period_over_spectra_noises_and_momenta(dim, gap, log_noise, momentum, lr, fraction, seed):
    # the full toy: bottom 0, top h, the rest anywhere below gap·h; ηλ from 0.002 to 0.02 inside the momentum's
    # monotone domain ηλ ≤ (1−√β)², with noise at or above the toy's default
    rng = np.random.default_rng(seed)
    top = rng.uniform(0.5, 2.0)
    toy = RayleighQuotient(np.r_[0.0, rng.uniform(0.0, gap * top, dim - 2), top], 10.0**log_noise)
    lr_wd = 0.002 * (min(0.02, 0.9 * (1 - np.sqrt(momentum)) ** 2) / 0.002) ** fraction
    series = integrate(toy, [lr], [lr_wd / lr], momentum=momentum, steps=8000, seed=seed % 1000).series
    measured = analyze({k: series[k][0] for k in SERIES}, lr=lr, wd=lr_wd / lr, momentum=momentum)
    model = ReducedModel(toy.eff_sharpness, toy.noise, dim)
    (predicted,) = predict_period(model, lr, lr_wd / lr, momentum, steps=8000)
    assert measured.regime == predicted["regime"] == "periodic"
    # 30 random draws of this space: −4.9 … +4.9 % without momentum, within ±1 % with it
    assert predicted["period"] == pytest.approx(measured.period, rel=0.15)


def test_its_three_regimes():
    lr = np.array([1.0, 1.0, 1.0])
    wd = np.array([0.01, 0.001, 0.001])
    periodic, equilibrium = (
        predict_period(ReducedModel(2.0, noise), lr[:2], wd[:2], steps=8000) for noise in (1e-5, 0.05)
    )
    assert periodic[0]["regime"] == "periodic"
    assert equilibrium[1]["regime"] == "equilibrium"
    # far below the threshold (η̃s̃ = 0.004) the angle shrinks slowly while η̃ grows: convergent
    series = run_reduced(ReducedModel(2.0), 1.0, 0.001, steps=400, elr0=0.002, angle0=0.3)
    assert analyze({k: series[k][0] for k in SERIES}, lr=1.0, wd=0.001).regime == "convergent"


def test_bad_input():
    for bad in ({"eff_sharpness": 0.0}, {"eff_sharpness": 1.0, "noise": -1.0}, {"eff_sharpness": 1.0, "dim": 1}):
        with pytest.raises(ValueError):
            ReducedModel(**bad)
    with pytest.raises(ValueError, match="floor"):
        ReducedModel(1.0, floor=1.0)
    with pytest.raises(ValueError, match="steps"):
        run_reduced(ReducedModel(1.0), 1.0, 0.01, steps=0, elr0=0.1)
    with pytest.raises(ValueError, match="lr"):
        run_reduced(ReducedModel(1.0), -1.0, 0.01, steps=10, elr0=0.1)


def test_a_held_out_runs_own_period_calibrates_nothing():
    # measured periods from the model itself at σ = 1e-5: the held-out fit finds a σ near it for every run, and the
    # held-out run's own measured period can change without changing its prediction
    lr, wd = np.array([1.0, 1.0, 1.0]), np.array([0.005, 0.01, 0.02])
    grid = (1e-7, 1e-5, 1e-3)
    measured = np.array([r["period"] for r in predict_period(ReducedModel(2.0, 1e-5), lr, wd, steps=1500, seeds=(5,))])
    found = held_out_periods(lr, wd, 0.0, measured, noise_grid=grid, seeds=(0,), steps=1500)
    assert np.all(found["noise"] == 1e-5)
    assert np.all(np.abs(found["predicted"] / measured - 1) < 0.15)
    changed = measured.copy()
    changed[1] *= 3
    again = held_out_periods(lr, wd, 0.0, changed, noise_grid=grid, seeds=(0,), steps=1500)
    assert again["predicted"][1] == found["predicted"][1]
    baseline = np.exp(np.mean(np.log(measured[[0, 2]] * lr[[0, 2]] * wd[[0, 2]]))) / (lr[1] * wd[1])
    assert found["baseline"][1] == pytest.approx(baseline)
