"""analysis.detection on synthetic series whose destabilisations are known exactly.

The sawtooth is log ρ of periodic training: a linear fall at the weight-decay rate between events and a jump up
at each event (spread over 1–5 samples), with jittered periods, a long transient first period, an extra linear
trend and white Gaussian noise. The same signal is also given as η̃ = η/ρ², and a loss with spikes is built
separately. Accuracy asserted: ρ's jumps without noise every event exactly at its index, with noise
σ ≤ (smallest jump)/15 within ±2 samples; never a missed or a false event; η̃ and ρ give the same events. The loss's
spikes: every one found, each within the window after the last sample before it.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnwd.analysis import detection as det

LR = 0.1
NOISE_MAX = 1 / 15  # σ of the noise on the log series, relative to the smallest jump
NOISY_TOLERANCE = 2  # samples


def _event_times(rng, n_events, period, jitter, transient):
    """Event indices with periods ``period·(1 ± jitter)``; a ``transient`` > 1 makes the first ``transient·period``."""
    intervals = period * (1 + rng.uniform(-jitter, jitter, n_events - 1))
    if transient > 1:
        intervals[0] = transient * period
    lead = int(rng.integers(period // 2, 2 * period))
    events = lead + np.concatenate([[0], np.cumsum(np.round(intervals))]).astype(np.int64)
    return events, int(events[-1] + rng.integers(period // 2, period) + 6)


def sawtooth(seed, n_events=6, period=60, jitter=0.3, jump=0.7, spread=1, noise=0.0, trend=0.0, transient=1.0):
    """Return (events, ρ, decay per sample) of a periodic run; jumps vary ×0.8–1.25 around ``jump``.

    The decay ``jump/period`` makes the sawtooth stationary (on average a period's fall equals a jump), ``trend``
    adds ``trend·decay`` per sample and ``noise`` is σ relative to the smallest jump.
    """
    rng = np.random.default_rng(seed)
    events, n = _event_times(rng, n_events, period, jitter, transient)
    jumps = jump * rng.uniform(0.8, 1.25, n_events)
    decay = jump / period
    increments = np.full(n - 1, (trend - 1) * decay)
    for event, size in zip(events, jumps, strict=True):
        increments[event : event + spread] += size / spread
    log_rho = np.concatenate([[0.0], np.cumsum(increments)]) + noise * jumps.min() * rng.standard_normal(n)
    return events, np.exp(log_rho), decay


def loss_spikes(seed, n_events=6, period=60, jitter=0.3, spike=100.0, spread=1, noise=0.0, transient=1.0):
    """Return (events, loss): spikes ×0.8–1.25 ``spike`` (in log), then re-convergence towards 1e-3."""
    rng = np.random.default_rng(seed)
    events, n = _event_times(rng, n_events, period, jitter, transient)
    floor, timescale = np.log(1e-3), period / 5
    log_loss = np.empty(n)
    start, value = 0, np.log(2.3)
    for end in [*events, n - 1]:
        t = np.arange(start, end + 1)
        log_loss[t] = floor + (value - floor) * np.exp(-(t - start) / timescale)
        if end < n - 1:
            peak = log_loss[end] + np.log(spike) * rng.uniform(0.8, 1.25)
            log_loss[end + 1 : end + spread + 1] = np.linspace(log_loss[end], peak, spread + 1)[1:]
            start, value = end + spread, peak
    return events, np.exp(log_loss + noise * 0.8 * np.log(spike) * rng.standard_normal(n))


noise_levels = st.one_of(st.just(0.0), st.floats(0.0, NOISE_MAX))
# From 3 periods on, a transient stands out of any ±30 % jitter under the rule of period_lengths.
transients = st.one_of(st.just(1.0), st.floats(3.0, 4.0))


@st.composite
def sawtooth_kwargs(draw):
    return {
        "seed": draw(st.integers(0, 2**32 - 1)),
        "n_events": draw(st.integers(3, 12)),
        "period": draw(st.integers(30, 150)),
        "jump": draw(st.floats(np.log(1.1), np.log(3))),
        "spread": draw(st.integers(1, 5)),
        "noise": draw(noise_levels),
        "trend": draw(st.floats(-1.0, 2.0)),
        "transient": draw(transients),
    }


def _assert_recovered(found, events, tolerance):
    assert found.dtype == np.int64
    assert found.shape == events.shape, f"found {found.tolist()}, true {events.tolist()}"
    assert np.abs(found - events).max() <= tolerance


@settings(max_examples=60, deadline=None)
@given(kwargs=sawtooth_kwargs())
def test_sawtooth_events_and_periods_recovered(kwargs):
    events, rho, _ = sawtooth(**kwargs)
    found = det.find_jumps(rho)
    _assert_recovered(found, events, NOISY_TOLERANCE if kwargs["noise"] else 0)
    # log η̃ = log η − 2·log ρ: the same run seen through η̃ gives the same events.
    assert np.array_equal(det.find_jumps(LR / rho**2, "elr"), found)

    # The mean period telescopes to (last − first)/count: its error is at most 2·tolerance/count. A jittered first
    # interval may sit at the edge of the transient rule, so the rule is checked on true transients only.
    tolerance = NOISY_TOLERANCE if kwargs["noise"] else 0
    for discard in (False, True) if kwargs["transient"] > 1 else (False,):
        periods = det.period_lengths(found, discard_transient=discard)
        true_periods = det.period_lengths(events, discard_transient=discard)
        assert periods.size == true_periods.size == events.size - 1 - discard
        assert abs(periods.mean() - true_periods.mean()) <= 2 * tolerance / periods.size
    if kwargs["noise"] == 0:
        assert np.array_equal(periods, true_periods)
        if periods.size >= 2:
            low, high = det.frequency_interval(periods)
            assert low <= 1 / true_periods.mean() <= high


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_events=st.integers(3, 12),
    period=st.integers(40, 150),
    spike=st.floats(10.0, 1e4),
    spread=st.integers(1, 5),
    noise=noise_levels,
    transient=transients,
)
def test_loss_spikes_recovered(seed, n_events, period, spike, spread, noise, transient):
    events, loss = loss_spikes(seed, n_events, period, 0.3, spike, spread, noise, transient)
    found = det.find_spikes(loss, det.DEFAULT_WINDOW, min_jump=np.log(2.0))
    assert found.size == events.size
    # the statistic peaks once the spike fills its window: at most W samples after the last sample before it
    assert ((found > events) & (found <= events + det.DEFAULT_WINDOW)).all()
    # the control: a size floor above every spike leaves none
    assert det.find_spikes(loss, det.DEFAULT_WINDOW, min_jump=1.3 * np.log(spike) + 1).size == 0


@settings(max_examples=30, deadline=None)
@given(kwargs=sawtooth_kwargs(), noise=st.floats(1.5, 2.0))
def test_negative_control_jumps_under_the_noise_yield_nothing(kwargs, noise):
    # Every jump is at most 1.25/0.8 times the smallest, so at most 1.04 σ: inside the noise.
    _, rho, _ = sawtooth(**{**kwargs, "noise": noise})
    assert det.find_jumps(rho).size == 0


@settings(max_examples=30, deadline=None)
@given(kwargs=sawtooth_kwargs(), jump=st.floats(np.log(1.01), np.log(1.035)))
def test_negative_control_jumps_below_the_floor_yield_nothing(kwargs, jump):
    events, rho, _ = sawtooth(**{**kwargs, "jump": jump, "noise": 0.0})
    assert det.find_jumps(rho).size == 0
    # The floor, not blindness, hides them: a lower min_jump finds them all.
    _assert_recovered(det.find_jumps(rho, min_jump=np.log(1.005)), events, 0)


def test_2d_input_matches_rows():
    rows = [
        sawtooth(seed, n_events=8, period=40 + 10 * seed, noise=0.05 * (seed % 2), spread=1 + seed % 3)[1]
        for seed in range(6)
    ]
    n = min(row.size for row in rows)
    series = np.stack([row[:n] for row in rows])
    for kind, x in (("si_norm", series), ("elr", LR / series**2)):
        found = det.find_jumps(x, kind)
        assert isinstance(found, list) and len(found) == len(rows)
        for row, events in zip(x, found, strict=True):
            assert np.array_equal(det.find_jumps(row, kind), events)


def test_steady_trends_are_not_events():
    t = np.arange(2000)
    decay = np.exp(-1e-3 * t)
    assert det.find_jumps(decay).size == 0
    assert det.find_jumps(LR / decay**2, "elr").size == 0
    assert det.find_jumps(np.exp(2e-3 * t)).size == 0
    assert det.find_spikes(np.exp(-0.02 * t), det.DEFAULT_WINDOW, min_jump=det.MIN_JUMP_FLOOR).size == 0


def test_growth_from_initialisation_is_no_event():
    rho = np.concatenate([[1.0, 1.4, 1.7, 1.8], 1.8 * np.exp(-1e-3 * np.arange(1, 300))])
    assert det.find_jumps(rho).size == 0


def test_spread_jump_and_double_spike_are_one_event():
    log_rho = np.zeros(100)
    log_rho[41:] += np.log(2) * np.minimum(np.arange(1, 60) / 4, 1)  # a rise over 4 samples
    assert det.find_jumps(np.exp(log_rho)).tolist() == [40]
    loss = np.full(100, 1e-3)
    loss[[51, 52, 58, 59]] = 1.0  # spike, back down, spike again: one spike for a window of 4 (peaks 2W apart)
    assert det.find_spikes(loss, 4).tolist() == [49]
    assert det.find_spikes(loss, 3).tolist() == [39, 50]  # a window of 3 sees two, the first early


def test_nonfinite_ends_the_series():
    events, rho, _ = sawtooth(3, n_events=10, period=50, noise=0.05)
    cut = (events[5] + events[6]) // 2
    for bad in (np.nan, np.inf):
        broken = rho.copy()
        broken[cut] = bad
        broken[cut + 5] = 1.0  # finite values after the divergence are ignored too
        assert np.array_equal(det.find_jumps(broken), det.find_jumps(rho[:cut]))
        assert np.abs(det.find_jumps(broken) - events[:6]).max() <= NOISY_TOLERANCE


def test_loss_may_touch_zero():
    loss = np.full(200, 1e-4)
    loss[::7] = 0.0  # floored at the smallest positive value: the zeros are dips of ×1 at most
    loss[100:103] = 5.0
    assert det.find_spikes(loss, 5, min_jump=np.log(100)).tolist() == [98]
    assert np.isfinite(det.spike_statistic(loss, 5)[5:-5]).all()


def test_period_lengths_transient_rule():
    assert det.period_lengths([3, 200, 250, 301, 349, 400]).tolist() == [50, 51, 48, 51]
    assert det.period_lengths([3, 60, 110, 161, 209, 260]).tolist() == [57, 50, 51, 48, 51]
    assert det.period_lengths([3, 200, 250, 301], discard_transient=False).tolist() == [197, 50, 51]
    assert det.period_lengths([3, 200]).tolist() == [197]
    assert det.period_lengths([7]).size == 0


def test_frequency_interval():
    assert det.frequency_interval([50, 50, 50, 50]) == (0.02, 0.02)
    assert all(np.isnan(det.frequency_interval([50])))
    periods = np.random.default_rng(0).uniform(40, 60, 30)
    low, high = det.frequency_interval(periods)
    assert low < 1 / periods.mean() < high and high - low < 0.1 / periods.mean()
    assert det.frequency_interval(periods, seed=1) != (low, high)
    assert det.frequency_interval(periods) == (low, high)
    narrower = det.frequency_interval(periods, confidence=0.5)
    assert low < narrower[0] < narrower[1] < high


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: det.find_jumps(np.ones((2, 2, 2))), "1-D"),
        (lambda: det.find_jumps(np.float64(1.0)), "1-D"),
        (lambda: det.find_jumps(["a", "b"]), "real"),
        (lambda: det.find_jumps(np.ones(9), "norm"), "kind"),
        (lambda: det.find_jumps(-np.ones(9)), "> 0"),
        (lambda: det.find_jumps(np.zeros(9), "elr"), "> 0"),
        (lambda: det.find_jumps(np.ones(9), "loss"), "kind"),
        (lambda: det.find_spikes(-np.ones(9), 3), ">= 0"),
        (lambda: det.spike_statistic(np.ones((2, 2, 2)), 3), "1-D or 2-D"),
        (lambda: det.find_jumps(np.ones(9), window=0), "window"),
        (lambda: det.find_jumps(np.ones(9), min_separation=2.5), "min_separation"),
        (lambda: det.find_jumps(np.ones(9), min_jump=-1.0), "min_jump"),
        (lambda: det.period_lengths([3, 3, 5]), "increasing"),
        (lambda: det.period_lengths([[1, 2]]), "1-D"),
        (lambda: det.frequency_interval([1.0, -2.0]), "> 0"),
        (lambda: det.frequency_interval([1.0, 2.0], confidence=1.0), "confidence"),
    ],
)
def test_domain_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
