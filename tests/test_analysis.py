"""The analysis of a series (analysis.summary): regimes, predicted periods, the slope, crossings, depth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from bnwd import theory
from bnwd.analysis.periods import convergence_depth, periods_in_hindsight
from bnwd.analysis.summary import frequency_slope, summarize_run, threshold_crossings
from bnwd.simulate.integrate import integrate
from bnwd.simulate.models import RayleighQuotient


def test_the_three_regimes_side_by_side():
    """Convergent (tiny ηλ, short budget), periodic (noise-free), equilibrium (noise, ηλ small against it)."""
    steps = 6000
    quiet, noisy = RayleighQuotient.evenly_spaced(16, noise=0.0), RayleighQuotient.evenly_spaced(16, noise=0.5)
    rows = {}
    # The equilibrium run starts near its equilibrium norm, so that no start-up jump is counted.
    for label, model, lr, wd, si_norm0 in [
        ("convergent", quiet, 0.1, 1e-5, 1.0),
        ("periodic", quiet, 1.0, 0.005, 1.0),
        ("equilibrium", noisy, 0.1, 0.01, 2.0),
    ]:
        run = integrate(model, lr, wd, steps=steps, si_norm0=si_norm0)
        s = {k: v[0] for k, v in run.series.items()}
        rows[label] = summarize_run(run.steps, s, lr=lr, wd=wd, eff_sharpness=model.eff_sharpness)
        rows[label]["final_si_norm"] = s["si_norm"][-1]
        rows[label]["rms_eff_grad_norm"] = np.sqrt(np.mean(s["eff_grad_norm"][steps // 2 :] ** 2))
    assert {label: row["regime"] for label, row in rows.items()} == {k: k for k in rows}
    assert rows["periodic"]["n_destabilizations"] >= 5
    eq = rows["equilibrium"]
    assert eq["n_destabilizations"] == 0
    predicted = theory.equilibrium_si_norm(eq["rms_eff_grad_norm"], 0.1, 0.01)
    assert_allclose(eq["final_si_norm"], predicted, rtol=0.05)


def test_periods_in_hindsight_recover_pure_decay_exactly():
    """On an η̃ series made of pure decay with known resets, the period law predicts every period."""
    lr, wd, elr_reset, elr_c = 1.0, 0.01, 0.2, 0.9
    length = int(np.ceil(theory.period_length(elr_reset, elr_c, lr, wd)))
    one = elr_reset * (1 - lr * wd) ** (-2.0 * np.arange(length + 1))
    elr = np.concatenate([one[:-1]] * 4 + [one])
    events = np.arange(5) * length - 1
    events[0] = 0
    predicted = periods_in_hindsight(elr, events[1:], lr, wd, 0.0, elr_c)
    assert_allclose(predicted, length, atol=1.0)


def test_frequency_slope_recovers_a_power_law():
    lr_wd = np.geomspace(1e-3, 2e-2, 6)
    fit = frequency_slope(lr_wd, 3.0 * lr_wd**1.0 * np.exp(0.01 * np.sin(np.arange(6))))
    assert fit["slope_ci"][0] < 1.0 < fit["slope_ci"][1] and abs(fit["slope"] - 1) < 0.02
    assert np.isnan(frequency_slope([1e-3], [1.0])["slope"])


def test_threshold_crossings_on_a_known_series():
    steps, values = [0, 10, 11, 12, 13, 14, 15], [5.0, 1.0, 1.5, 2.5, 1.9, 2.2, 9.0]
    first, second = threshold_crossings(steps, values, [16, 20], 2.0)
    assert (first["below_at"], first["below"], first["crossing_at"], first["crossing"]) == (13, 1.9, 14, 2.2)
    assert (first["last_measured_at"], first["last"], first["steps_crossing_to_event"]) == (15, 9.0, 2)
    assert second["below_at"] is None and second["crossing_at"] is None and second["last_measured_at"] == 15
    (early,) = threshold_crossings(steps, values, [13], 2.0)
    assert (early["below_at"], early["crossing_at"], early["steps_crossing_to_event"]) == (13, None, None)
    (on_the_step,) = threshold_crossings(steps, values, [14], 2.0)  # measured before the step's update: counts
    assert (on_the_step["crossing_at"], on_the_step["steps_crossing_to_event"]) == (14, 0)
    assert threshold_crossings(steps, values, [], 2.0) == []
    with pytest.raises(ValueError, match="increasing"):
        threshold_crossings([3, 1], [1.0, 2.0], [5], 2.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 200), st.floats(0.0, 5.0)), min_size=1, max_size=40, unique_by=lambda m: m[0]),
    st.lists(st.integers(0, 210), min_size=1, max_size=6, unique=True),
)
def test_threshold_crossings_bracket_the_threshold(measurements, events):
    """Below the threshold at ``below_at``, at or above it at the next measurement and at every one up to the event."""
    steps, values = map(np.array, zip(*sorted(measurements), strict=True))
    events = sorted(events)
    found = threshold_crossings(steps, values, events, 2.0)
    assert [f["event"] for f in found] == events
    for previous, event, f in zip([-1, *events], events, found, strict=False):
        before = steps <= event
        assert f["last_measured_at"] == (steps[before].max() if before.any() else None)
        window = (steps > previous) & before
        if f["below_at"] is None:
            assert np.all(values[window] >= 2.0)
            continue
        assert previous < f["below_at"] <= event and f["below"] < 2.0
        after = window & (steps > f["below_at"])
        assert np.all(values[after] >= 2.0)
        if f["crossing_at"] is None:
            assert not after.any()
        else:
            assert f["crossing_at"] == steps[after].min() and f["crossing"] >= 2.0
            assert f["steps_crossing_to_event"] == event - f["crossing_at"] >= 0


@settings(max_examples=10, deadline=None)
@given(lr_wd=st.sampled_from([0.002, 0.005, 0.01]), start=st.floats(0.2, 0.45))
def test_convergence_depth_is_the_toys_shrinking_angle(lr_wd, start):
    # the 2-D Rayleigh toy (minimum and top direction, s̃ = 1) from a small angle at η̃_s = start·η̃_c: by the
    # time η̃ reaches η̃_c the angle has shrunk by the depth
    model, lr = RayleighQuotient(np.array([0.0, 0.5]), noise=0.0), 1.0
    critical = float(theory.critical_elr(1.0, lr, lr_wd))
    w = np.array([[math.cos(1e-6), math.sin(1e-6)]]) * math.sqrt(lr / (start * critical))
    steps = int(theory.period_length(start * critical, critical, lr, lr_wd))
    for _ in range(steps):
        w = (1 - lr_wd) * w - lr * model.loss_and_grad(w, None)[1]
    shrunk = math.log(abs(math.atan2(w[0, 1], w[0, 0])) / 1e-6)
    assert shrunk == pytest.approx(float(convergence_depth(start * critical, critical, lr, lr_wd)[()]), abs=0.05)
