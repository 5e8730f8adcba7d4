"""Tests of simulate.reduced: the two-variable model of periodic training against the theory and the full toy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulate.destabilization import analyze
from simulate.integrate import integrate
from simulate.models import RayleighQuotient
from simulate.reduced import ReducedModel, predict_period, run_reduced

SERIES = ("si_norm", "elr", "angular_update", "loss", "eff_grad_norm")


@settings(max_examples=20, deadline=None)
@given(lr=st.floats(0.1, 3.0), wd=st.floats(1e-4, 0.05), ratio=st.floats(0.05, 1.9), angle=st.floats(1e-9, 1e-6))
def test_one_step_at_the_minimum_is_the_linear_theorys(lr, wd, ratio, angle):
    # η̃s̃ = ratio·(1−ηλ): the angle is multiplied by 1 − η̃s̃/(1−ηλ) = 1 − ratio, and η̃ grows by (1−ηλ)⁻²
    s_eff = 2.0
    elr = ratio * (1 - lr * wd) / s_eff
    out = run_reduced(ReducedModel(s_eff), lr, wd, steps=2, elr0=elr, angle0=angle)
    assert out["angle"][0, 1] == pytest.approx((1 - ratio) * angle, rel=1e-6, abs=1e-15)
    assert out["elr"][0, 1] == pytest.approx(elr / (1 - lr * wd) ** 2, rel=1e-9)


@settings(max_examples=3, deadline=None)
@given(lr=st.sampled_from([0.5, 1.0, 2.0]), wd=st.sampled_from([0.0025, 0.005, 0.01]))
def test_predicts_the_noisy_toys_period(lr, wd):
    toy = RayleighQuotient.evenly_spaced(64, noise=1e-5)
    series = integrate(toy, [lr], [wd], steps=12000, seed=0).series
    measured = analyze({k: series[k][0] for k in SERIES}, lr=lr, wd=wd)
    (predicted,) = predict_period(ReducedModel(toy.eff_sharpness, toy.noise, toy.dim), lr, wd, steps=12000)
    assert measured.regime == predicted["regime"] == "periodic"
    assert predicted["period"] == pytest.approx(measured.period, rel=0.2)


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
