"""Tests of empirical.tracking: the schedule that locates every upward crossing of η̃·s̃ = 2(1−ηλ) to one step."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnwd.empirical.tracking import CrossingSearch, locate_crossing

THRESHOLD = 1.98


def periodic_product(seed: int, n: int, lr_wd: float, drift: float):
    """η̃ and s̃ of a caricature of periodic training: η̃ grows by (1−ηλ)⁻² per step until η̃·s̃ has been above the
    threshold for a few steps, then drops by a random factor (the jump); s̃ drifts as a random walk."""
    rng = np.random.default_rng(seed)
    elr, eff = np.empty(n), np.exp(np.cumsum(drift * rng.standard_normal(n)))
    elr[0], above_for = 0.5, 0
    for t in range(1, n):
        above_for = above_for + 1 if elr[t - 1] * eff[t - 1] >= THRESHOLD else 0
        jump = above_for > rng.integers(1, 8)
        elr[t] = elr[t - 1] / rng.uniform(3, 30) if jump else elr[t - 1] / (1 - lr_wd) ** 2
        above_for = 0 if jump else above_for
    return elr, eff


def drive(elr, eff, every: int) -> dict[int, float]:
    """The trainer's loop around :class:`CrossingSearch` with exact measurements and a ring buffer of the last
    ``every`` steps (η̃ falling is ρ rising): the measured products by step."""
    search, measured = CrossingSearch(THRESHOLD, every), {}

    for t in range(elr.size):

        def product_at(u, now=t):
            if u < now - every:  # fallen out of the ring buffer
                return None
            measured[u] = elr[u] * eff[u]
            return measured[u]

        if t and search.look_back(t, rising=elr[t] < elr[t - 1]):
            bracket = search.update(t - 1, elr[t - 1], eff[t - 1], looked_back=True)
            measured[t - 1] = elr[t - 1] * eff[t - 1]
            if bracket:
                locate_crossing(*bracket, product_at, THRESHOLD)
        if search.due(t, elr[t]):
            measured[t] = elr[t] * eff[t]
            bracket = search.update(t, elr[t], eff[t])
            if bracket:
                locate_crossing(*bracket, product_at, THRESHOLD)
    return measured


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    lr_wd=st.sampled_from([0.003, 0.01, 0.03]),
    drift=st.sampled_from([0.0, 0.005, 0.03]),
    every=st.sampled_from([10, 50]),
)
def test_crossings_are_located_to_one_step_at_a_fraction_of_the_cost(seed, lr_wd, drift, every):
    elr, eff = periodic_product(seed, 3000, lr_wd, drift)
    product = elr * eff
    measured = drive(elr, eff, every)
    steps = np.array(sorted(measured))
    assert steps[0] == 0 and np.all(np.diff(steps) <= every)  # no stretch longer than K goes unmeasured
    # every measured upward crossing is one step wide
    values = np.array([measured[t] for t in steps])
    up = np.flatnonzero((values[:-1] < THRESHOLD) & (values[1:] >= THRESHOLD))
    assert np.all(steps[up + 1] - steps[up] == 1)
    # before each jump, an upward crossing since the previous one is located to one step (the prediction early or
    # late; when the product dips below and crosses again unmeasured, the first one)
    jumps = np.flatnonzero(elr[1:] < elr[:-1]) + 1
    assert jumps.size
    located = steps[up + 1]
    for previous, jump in zip([0, *jumps], jumps, strict=False):
        if np.any(product[previous:jump] < THRESHOLD):
            assert np.any((located > previous) & (located < jump)), jump
    assert len(measured) < 0.5 * product.size


def test_a_product_hovering_at_the_threshold_costs_log_k_measurements_not_one_per_step():
    # η̃ grows but s̃ falls as fast: the prediction says "crossing now" at every step and is wrong every time
    n, every = 400, 64
    elr = 0.5 * 1.02 ** np.arange(n)
    eff = 0.999 * THRESHOLD / elr
    measured = drive(elr, eff, every)
    assert len(measured) <= n / every * (np.log2(every) + 2)


def test_the_latest_crossing_is_found_and_the_search_stops_where_the_buffer_ends():
    def product_at(step):
        return float(step >= 70)

    assert locate_crossing(0, 100, product_at, 0.5) == (69, 70)  # steps back to 99, 97, 93, 85, 69, 37; bisects
    # a dip at least as wide as the stride is found, and the crossing after it is the latest (not 30 -> 31) ...
    dip = lambda step: float(31 <= step <= 35 or step >= 68)  # noqa: E731
    assert locate_crossing(0, 100, dip, 0.5) == (67, 68)
    # ... a narrower one, far from the end, can be stepped over
    narrow = lambda step: float(31 <= step <= 50 or step >= 60)  # noqa: E731
    assert locate_crossing(0, 100, narrow, 0.5) == (30, 31)
    # beyond the ring buffer the search stops with the bracket it has
    assert locate_crossing(0, 100, lambda step: None if step < 90 else 1.0, 0.5) == (0, 93)
    with pytest.raises(ValueError, match="positive integer"):
        CrossingSearch(2.0, 0)
