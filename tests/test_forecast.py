"""Tests of analysis.forecast: predictions that see only their horizon, baselines, controls, and the forecast."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnwd import theory
from bnwd.analysis.forecast import forecast, run_forecast
from bnwd.analysis.periods import horizon_inputs, horizon_predictions, period_from_bottom


def _sawtooth(lengths, lr=1.0, wd=0.01, sharpness=None, seed=0):
    """η̃ that drops at each event to a bottom and grows by pure decay, a series of periods of the given lengths, and
    s̃ measured every 3 steps (per period, from ``sharpness`` or 2)."""
    rng = np.random.default_rng(seed)
    events = np.cumsum(np.r_[5, lengths]).astype(int)
    elr = np.empty(events[-1] + 30)
    level = 0.3
    for i in range(elr.size):
        level = rng.uniform(0.2, 0.4) if i in set(events.tolist()) else level / (1 - lr * wd) ** 2
        elr[i] = level
    measured_at = np.arange(0, elr.size, 3)
    period = np.searchsorted(events, measured_at, side="right") - 1
    values = np.ones(measured_at.size) * 2.0 if sharpness is None else np.asarray(sharpness)[np.clip(period, 0, None)]
    return np.arange(elr.size), elr, events, measured_at, values


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(20, 60), min_size=5, max_size=12),
    k=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_a_prediction_sees_nothing_after_its_horizon(lengths, k, seed):
    steps, elr, events, at, values = _sawtooth(lengths, seed=seed)
    before = horizon_inputs(steps, elr, events, at, values)
    i = k - 1  # period k is row k − 1
    cutoff, end = before["cutoff"][i], before["end"][i]
    changed_elr, changed_values = elr.copy(), values.copy()
    changed_elr[cutoff + 1 : end] *= np.random.default_rng(seed).uniform(0.1, 10)  # after the horizon, before the end
    changed_values[(at > cutoff) & (at <= end)] *= 3.0
    moved = events.copy()
    moved[k + 1 :] += 7  # the end itself moves
    after = horizon_inputs(steps, changed_elr, moved, at, changed_values)
    for name in ("cutoff", "bottom", "elr_start", "sharpness", "past_threshold", "previous", "past_mean"):
        assert after[name][i] == before[name][i] or (math.isnan(after[name][i]) and math.isnan(before[name][i])), name


def test_the_prediction_is_the_theorys_period_from_the_horizons_inputs():
    lengths = [40] * 8
    steps, elr, events, at, values = _sawtooth(lengths)
    inputs = horizon_inputs(steps, elr, events, at, values)
    critical = float(theory.critical_elr(2.0, 1.0, 0.01))
    found = horizon_predictions(inputs, lr=1.0, wd=0.01)
    expected = (inputs["bottom"] - inputs["start"]) + theory.period_length(inputs["elr_start"], critical, 1.0, 0.01)
    np.testing.assert_allclose(found.predicted, expected)
    delayed = horizon_predictions(inputs, lr=1.0, wd=0.01, log_amplification=10.0)
    np.testing.assert_allclose(delayed.predicted - expected, float(theory.escape_delay(10.0, 1.0, 0.01)))
    past = horizon_predictions(inputs, lr=1.0, wd=0.01, threshold="past_events")
    threshold = inputs["past_threshold"]  # no decay where η̃ after the jump is already above it
    to_past = theory.period_length(np.minimum(inputs["elr_start"], threshold), threshold, 1.0, 0.01)
    np.testing.assert_allclose(past.predicted, (inputs["bottom"] - inputs["start"]) + to_past)


def test_sharpness_that_sets_the_periods_is_found_and_its_controls_fail():
    # periods whose length is set by each period's own s̃ (the threshold it sets): the prediction recovers them,
    # the baselines cannot, and s̃ averaged or shuffled loses the information
    rng = np.random.default_rng(0)
    lr, wd, n = 1.0, 0.01, 30
    sharpness = rng.uniform(1.0, 4.0, n)
    critical = theory.critical_elr(sharpness, lr, wd)
    lengths = np.ceil(1 + theory.period_length(0.2 * 2 / 4.0, critical, lr, wd)).astype(int)  # from a bottom of 0.1
    events = np.cumsum(np.r_[5, lengths])
    elr = np.empty(events[-1] + 5)
    for k, (start, end) in enumerate(itertools.pairwise(events)):
        elr[start:end] = 0.1 / (1 - lr * wd) ** (2 * np.arange(-1, end - start - 1))
        elr[start] = critical[k]
    elr[: events[0]], elr[events[-1] :] = 0.1, 0.1
    at = np.arange(elr.size)
    values = sharpness[np.clip(np.searchsorted(events, at, side="right") - 1, 0, n - 1)]
    inputs = horizon_inputs(np.arange(elr.size), elr, events, at, values)
    found = horizon_predictions(inputs, lr=lr, wd=wd)
    assert found.scores.errors["prediction"] < 0.05
    assert found.scores.beats_baselines and found.scores.controls_fail
    assert found.scores.errors["mean_input"] > 0.1


def test_the_forecasts_coverage_is_near_nominal_on_exchangeable_periods():
    # periods = prediction × lognormal noise, independent: split-conformal intervals cover about `level`
    rng = np.random.default_rng(1)
    n = 400
    predicted = rng.uniform(30, 60, n)
    measured = np.round(predicted * np.exp(rng.normal(0, 0.2, n)))
    starts = np.cumsum(np.r_[0, measured[:-1]])
    inputs = {
        "measured": measured,
        "end": starts + measured,
        "cutoff": starts + 5,
        "ended_early": np.zeros(n, bool),
        "previous": np.r_[measured[0], measured[:-1]],
        "past_mean": np.r_[measured[0], np.cumsum(measured)[:-1] / np.arange(1, n)],
    }
    found = forecast(inputs, predicted, level=0.8)
    assert found.n_scored > 350
    assert abs(found.scores["prediction"].coverage - 0.8) <= 0.06
    # the prediction knows each period's scale; the baselines do not, so their intervals are wider
    assert found.scores["prediction"].interval_score < found.scores["past_mean"].interval_score
    assert found.scores["prediction"].interval_score < found.scores["previous_period"].interval_score


def test_bad_input():
    steps, elr, events, at, values = _sawtooth([30] * 5)
    with pytest.raises(ValueError, match="horizon"):
        horizon_inputs(steps, elr, events, at, values, horizon=0.0)
    with pytest.raises(ValueError, match="increasing"):
        horizon_inputs(steps, elr, events[::-1], at, values)
    with pytest.raises(ValueError, match="every step"):
        horizon_inputs(steps[::2], elr[::2], events, at, values)
    inputs = horizon_inputs(steps, elr, events, at, values)
    with pytest.raises(ValueError, match="level"):
        forecast(inputs, inputs["measured"], level=1.0)
    with pytest.raises(ValueError, match="β = 0"):
        period_from_bottom([0], [1], [0.1], [2.0], lr=1.0, wd=0.01, momentum=0.5, log_amplification=10.0)
    with pytest.raises(ValueError, match="threshold"):
        horizon_predictions(inputs, lr=1.0, wd=0.01, threshold="the end")


def test_run_forecast_reports_each_threshold_and_the_next_destabilisation():
    steps, elr, events, at, values = _sawtooth([40, 35, 45, 40, 38, 42, 40, 36])
    now = events[-1] + 15  # the running period is past its horizon (a quarter of ~40 steps)
    found = run_forecast(steps[: now + 1], elr[: now + 1], events, at[at <= now], values[at <= now], lr=1.0, wd=0.01)
    assert set(found) == {"sharpness", "past_events"}
    for entry in found.values():
        assert entry.n_scored == len(events) - 2
        upcoming = entry.next
        assert 0 <= upcoming.low <= upcoming.steps_to_next <= upcoming.high or upcoming.overdue
        json.dumps(dataclasses.asdict(entry))  # plain numbers for summary.json
    before_horizon = run_forecast(steps[: events[-1] + 2], elr[: events[-1] + 2], events, [], [], lr=1.0, wd=0.01)
    assert set(before_horizon) == {"past_events"} and before_horizon["past_events"].next is None
