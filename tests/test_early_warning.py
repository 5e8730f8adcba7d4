"""analysis.early_warning: the score of alarms by construction, the clock, the reactive detectors' rules, the warning
on η̃ series built by pure decay with drops at known steps, its causality (nothing after a step changes the warning
at it, on a synthetic series and on a real run) and its state across a checkpoint."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from labelled import labelled_runs
from numpy.testing import assert_allclose, assert_array_equal

from bnwd.analysis.early_warning import (
    CLOCK_FRACTIONS,
    HORIZON_BAND,
    HORIZON_FRACTION,
    MIN_HISTORY,
    MIN_LEAD,
    REACTIVE_RULES,
    AlarmScore,
    EarlyWarning,
    WarningReport,
    alarm_onsets,
    clock_alarms,
    reactive_alarms,
    score_alarms,
    score_run,
    warnings_of,
)

LR, WD = 1.0, 0.01
GROWTH = -2 * math.log(1 - LR * WD)  # the growth of ln η̃ per step of pure decay at LR, WD, no momentum
THRESHOLD = math.log(0.05)  # ln η̃ at which the synthetic runs destabilise
FALL = 3  # steps over which ln η̃ falls after each destabilisation (the jump of ρ)


def decay_series(events, thresholds, *, fall: int = FALL, tail: int = 50) -> np.ndarray:
    """η̃ of a run that destabilises at ``events`` (increasing, gaps > ``fall``): ln η̃ grows by :data:`GROWTH` a
    step and reaches ``thresholds[k]`` at ``events[k]``, then falls linearly over ``fall`` steps to where the next
    period starts (``thresholds[k + 1]`` less the growth of that period); after the last one it falls by 2 and
    decays for ``tail`` steps."""
    n = events[-1] + fall + tail
    level = np.empty(n)
    begin = 0
    for event, threshold in zip(events, thresholds, strict=True):
        level[begin : event + 1] = threshold - GROWTH * (event - np.arange(begin, event + 1))
        begin = event + fall
    level[begin:] = thresholds[-1] - 2 + GROWTH * np.arange(n - begin)
    for event in events:
        level[event : event + fall + 1] = np.linspace(level[event], level[event + fall], fall + 1)
    return np.exp(level)


def periodic_events(seed: int = 0, n_events: int = 8) -> np.ndarray:
    """Destabilisations at random periods of 80 to 120 steps, the first at step 50 + one period."""
    return 50 + np.cumsum(np.random.default_rng(seed).integers(80, 121, size=n_events))


def online(elr, lr=LR, wd=WD, momentum=0.0, warner=None, first_step=0):
    """:meth:`EarlyWarning.update` over ``elr`` one step after the other: the warner and its outputs by key."""
    warner = warner or EarlyWarning()
    out = [warner.update(first_step + t, float(e), lr, wd, momentum) for t, e in enumerate(elr)]
    return warner, {key: np.array([o[key] for o in out]) for key in ("warning", "steps_to_threshold")}


# --- score_alarms by construction -----------------------------------------------------------------------------

EVENTS = np.array([100, 200, 310, 400, 520])
N_STEPS = 600


@pytest.mark.parametrize("lead", [MIN_LEAD, 12, 25])
def test_alarms_exactly_lead_steps_before_each_destabilisation_score_perfectly(lead):
    score = score_alarms(EVENTS[1:] - lead, EVENTS, N_STEPS, horizon=25)
    assert (score.recall, score.precision, score.f1) == (1.0, 1.0, 1.0)
    assert score.lead.tolist() == [lead] * 4 and score.median_lead == lead
    assert (score.n_alarms, score.n_true, score.false_alarms_per_1000) == (4, 4, 0.0)


def test_a_warning_that_stays_on_scores_one_alarm():
    on_from = EVENTS[1] - 10
    warning = np.arange(N_STEPS) >= on_from  # on after the first destabilisation, to the end
    assert alarm_onsets(warning).tolist() == [on_from]
    score = score_alarms(alarm_onsets(warning), EVENTS, N_STEPS, horizon=25)
    assert (score.n_alarms, score.n_true) == (1, 1)
    assert score.warned.tolist() == [True, False, False, False] and score.lead[0] == 10
    # on from the start: its one alarm comes before the first destabilisation, which is not scored
    assert alarm_onsets(np.ones(N_STEPS)).tolist() == [0]
    assert score_alarms([0], EVENTS, N_STEPS, horizon=25).n_alarms == 0


@pytest.mark.parametrize("lead", [0, 1, MIN_LEAD - 1])
def test_alarms_closer_than_min_lead_do_not_warn_and_are_false(lead):
    score = score_alarms(EVENTS[1:] - lead, EVENTS, N_STEPS, horizon=25)
    assert (score.recall, score.precision, score.f1, score.n_true) == (0.0, 0.0, 0.0, 0)
    assert np.isnan(score.lead).all() and math.isnan(score.median_lead)
    assert score.false_alarms_per_1000 == pytest.approx(1000 * 4 / (N_STEPS - EVENTS[0] - 1))


def test_the_first_destabilisation_is_not_scored_and_alarms_before_it_are_ignored():
    onsets = np.concatenate([[EVENTS[0] - 10, EVENTS[0]], EVENTS[1:] - 10])  # the first two at or before it
    score = score_alarms(onsets, EVENTS, N_STEPS, horizon=25)
    assert score.events.tolist() == EVENTS[1:].tolist()
    assert (score.n_alarms, score.n_true, score.precision, score.recall) == (4, 4, 1.0, 1.0)
    assert score.steps == N_STEPS - EVENTS[0] - 1


def test_false_alarms_per_1000_counts_the_false_alarms_per_step_scored():
    events, n_steps = np.array([100, 300, 500]), 1000
    # true: 290 (300 in [295, 315]); false: 150, 400, 700, 800 (nothing in their windows); 50 ignored (before 100)
    score = score_alarms([50, 150, 290, 400, 700, 800], events, n_steps, horizon=15)
    assert (score.n_alarms, score.n_true, score.steps) == (5, 1, 899)
    assert score.false_alarms_per_1000 == pytest.approx(4000 / 899)
    assert score.precision == 0.2 and score.recall == 0.5 and score.f1 == pytest.approx(2 * 0.1 / 0.7)


def test_a_horizon_below_min_lead_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^horizon must be >= min_lead; got 4 < 5$"):
        score_alarms([], EVENTS, N_STEPS, horizon=4)


@st.composite
def alarms_and_events(draw):
    """Increasing destabilisations, increasing distinct alarm onsets, ``min_lead`` (negative: a reactive detector)
    and a horizon ≥ it."""
    events = np.cumsum(draw(st.lists(st.integers(1, 150), min_size=1, max_size=12)))
    n_steps = int(events[-1]) + draw(st.integers(1, 100))
    onsets = np.array(sorted(draw(st.sets(st.integers(0, n_steps - 1), max_size=40))), dtype=np.int64)
    min_lead = draw(st.integers(-5, 10))
    return events, n_steps, onsets, min_lead, min_lead + draw(st.integers(0, 60))


@settings(max_examples=200)
@given(case=alarms_and_events(), data=st.data())
def test_scores_are_fractions_and_each_lead_is_in_its_window(case, data):
    events, n_steps, onsets, min_lead, horizon = case
    score = score_alarms(onsets, events, n_steps, horizon=horizon, min_lead=min_lead)
    assert 0 <= score.n_true <= score.n_alarms <= onsets.size
    for value in (score.precision, score.recall, score.f1):
        assert math.isnan(value) or 0 <= value <= 1
    lead = score.lead[score.warned]
    assert np.all((min_lead <= lead) & (lead <= horizon)) and np.isnan(score.lead[~score.warned]).all()
    assert set((score.events[score.warned] - lead).astype(int).tolist()) <= set(onsets.tolist())
    # an alarm with no destabilisation within the horizon after it is false: it never raises the precision
    far = [a for a in range(n_steps) if a not in onsets and not np.any((events >= a) & (events <= a + horizon))]
    assume(far)
    added = data.draw(st.sampled_from(far))
    more = score_alarms(np.sort(np.append(onsets, added)), events, n_steps, horizon=horizon, min_lead=min_lead)
    assert more.n_true == score.n_true
    assert math.isnan(more.precision) or more.precision <= np.nan_to_num(score.precision, nan=1.0)
    assert_array_equal(more.lead, score.lead)


# --- the clock ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fraction, expected",
    [
        # past mean periods 50, 75, 66.7, 80 from 150, 250, 300, 420; ends 250, 300, 420, 460
        (0.5, [150 + 25, 250 + 38, 300 + 34]),  # 420 + 40 is the run's end
        (1.2, [150 + 60, 300 + 80]),  # 250 + 90 is past 300; 420 + 96 past the end
    ],
)
def test_the_clock_alarms_once_a_period_has_lasted_a_fraction_of_the_past_mean(fraction, expected):
    assert clock_alarms([100, 150, 250, 300, 420], 460, fraction).tolist() == expected


def test_the_clock_has_nothing_to_tell_before_two_destabilisations():
    assert clock_alarms([], 100, 0.5).size == 0 and clock_alarms([40], 100, 0.5).size == 0


@settings(max_examples=60)
@given(period=st.integers(10, 300), fraction=st.sampled_from([f for f in CLOCK_FRACTIONS if f < 1]))
def test_on_a_periodic_run_the_clock_leads_by_the_period_less_its_fraction(period, fraction):
    events = 7 + period * np.arange(1, 7)
    lead = period - math.ceil(fraction * period)
    assume(lead >= 1)
    score = score_alarms(
        clock_alarms(events, events[-1] + 1, fraction), events, events[-1] + 1, horizon=period, min_lead=1
    )
    assert math.isnan(score.lead[0])  # the first period has no past one: no alarm before the second destabilisation
    assert score.lead[1:].tolist() == [lead] * 4 and score.precision == 1.0


# --- the reactive detectors -----------------------------------------------------------------------------------

SPIKE = 400


def noisy_loss(n: int = 600, seed: int = 0) -> np.ndarray:
    """A flat loss: 2 plus Gaussian noise of 0.01."""
    return 2 + 0.01 * np.random.default_rng(seed).standard_normal(n)


def spiked_loss(length: int, start: int = SPIKE, height: float = 30.0) -> np.ndarray:
    loss = noisy_loss()
    loss[start : start + length] = height
    return loss


@pytest.mark.parametrize(
    "rule, first", [("olmo_core", SPIKE), ("llm_foundry", SPIKE + 4), ("lightning", SPIKE), ("megatron", SPIKE)]
)
def test_each_reactive_rule_flags_a_spike_at_or_after_it_and_not_before(rule, first):
    onsets = reactive_alarms(spiked_loss(10), rule)
    assert onsets.size and onsets[0] == first and np.all(onsets < SPIKE + 10)


@pytest.mark.parametrize("rule", ["olmo_core", "megatron"])
def test_on_flat_noise_olmo_core_and_megatron_flag_nothing(rule):
    assert reactive_alarms(noisy_loss(3000), rule).size == 0


def test_llm_foundry_needs_five_outlier_steps_in_a_row():
    assert reactive_alarms(spiked_loss(4), "llm_foundry").size == 0
    assert reactive_alarms(spiked_loss(5), "llm_foundry").tolist() == [SPIKE + 4]
    interrupted = spiked_loss(4)
    interrupted[SPIKE + 5 : SPIKE + 9] = 30.0  # 4 outliers, one step back to 2, 4 more
    assert reactive_alarms(interrupted, "llm_foundry").size == 0


# --- the warning on synthetic η̃ ---------------------------------------------------------------------------------


@settings(max_examples=30)
@given(
    periods=st.lists(st.integers(40, 200), min_size=MIN_HISTORY + 1, max_size=8),
    offsets=st.lists(st.floats(-0.25, 0.25), min_size=8, max_size=8),
    fall=st.integers(1, 3),
)
def test_the_warning_sees_each_drop_of_elr_as_a_destabilisation_at_its_peak(periods, offsets, fall):
    events = 30 + np.cumsum(periods)
    thresholds = THRESHOLD + np.array(offsets[: events.size])
    elr = decay_series(events, thresholds, fall=fall)
    warner, out = online(elr)
    assert warner.peak_steps == events.tolist()
    assert_allclose(warner.peaks, thresholds, atol=1e-12)
    # no threshold predicted before MIN_HISTORY destabilisations are seen and the fall after the last has ended
    seen = events[MIN_HISTORY - 1] + fall
    assert np.isnan(out["steps_to_threshold"][: seen + 1]).all() and np.isfinite(out["steps_to_threshold"][seen + 1])
    assert not out["warning"][: seen + 1].any()


def test_the_warning_comes_lead_target_before_a_threshold_like_the_past_ones_and_is_off_while_elr_falls():
    events = periodic_events()
    elr = decay_series(events, [THRESHOLD] * events.size)
    _, out = online(elr)
    warning, steps_to_threshold = out["warning"], out["steps_to_threshold"]
    onsets = alarm_onsets(warning)
    assert onsets.size == events.size - MIN_HISTORY  # one alarm a period once MIN_HISTORY destabilisations are seen
    # lead_target: the middle of [MIN_LEAD, horizon], the horizon HORIZON_FRACTION of the mean past period and at
    # least 2 × MIN_LEAD
    horizon = [
        max(round(HORIZON_FRACTION * np.diff(events[:k]).mean()), 2 * MIN_LEAD) for k in range(MIN_HISTORY, events.size)
    ]
    lead_target = (np.array(horizon) + MIN_LEAD) / 2
    lead = events[MIN_HISTORY:] - onsets
    assert np.all(np.abs(lead - lead_target) <= 1) and np.all(lead >= MIN_LEAD)
    for event, previous in zip(events[MIN_HISTORY:], events[MIN_HISTORY - 1 : -1], strict=True):
        period = np.arange(previous + FALL + 1, event + 1)
        assert_allclose(steps_to_threshold[period], event - period, atol=1e-6)  # the threshold the past ones had
        assert warning[event] == 1
    for event in events:
        assert not warning[event + 1 : event + FALL + 1].any()  # η̃ falls: off


@pytest.mark.parametrize(
    "elr, lr, wd, momentum",
    [
        (0.05, LR, 0.0, 0.0),  # λ = 0: no decay, no period
        (math.nan, LR, WD, 0.0),
        (math.inf, LR, WD, 0.0),
        (0.0, LR, WD, 0.0),
        (-0.05, LR, WD, 0.0),
        (0.05, 0.0, WD, 0.0),
        (0.05, 100.0, WD, 0.0),  # ηλ = 1
        (0.05, 1e300, 1e300, 0.0),  # ηλ beyond the floats
        (0.05, LR, 0.2, 0.9),  # ηλ > (1 − √β)²: the decay oscillates
        (0.05, LR, WD, math.nan),
    ],
)
def test_outside_the_domain_the_warning_is_off_without_an_error(elr, lr, wd, momentum):
    events = periodic_events()
    series = decay_series(events, [THRESHOLD] * events.size)
    warner, out = online(series[: events[-1]])  # on: the last destabilisation is a few steps ahead
    assert out["warning"][-1] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = warner.update(events[-1], elr, lr, wd, momentum)
    assert quiet["warning"] == 0 and math.isnan(quiet["steps_to_threshold"])


# --- causality ----------------------------------------------------------------------------------------------------


def _real_run():
    """The labelled run demo_lr1_wd0.01 (2000 steps, lr 1, wd 0.01): its η̃."""
    _, entry, series = next(run for run in labelled_runs() if run[0] == "demo_lr1_wd0.01")
    return series["elr"], entry["run"]["lr"], entry["run"]["wd"]


def _synthetic_run():
    events = periodic_events()
    return decay_series(events, [THRESHOLD] * events.size), LR, WD


@pytest.mark.parametrize("run", [_synthetic_run, _real_run], ids=["synthetic", "real"])
@pytest.mark.parametrize("replacement", ["random", "shuffled", "nan"])
def test_nothing_after_a_step_changes_the_warning_up_to_it(run, replacement):
    elr, lr, wd = run()
    n = elr.size
    steps = np.arange(n)
    whole = warnings_of(steps, elr, lr, wd)
    assert whole["warning"].any()  # something to change
    rng = np.random.default_rng(1)
    cuts = set(np.linspace(0, n - 2, 7).astype(int).tolist()) | set(alarm_onsets(whole["warning"])[:3].tolist())
    for cut in sorted(cuts):  # evenly and where the warning switches on
        later = slice(cut + 1, None)
        moved = {"elr": elr.copy(), "lr": np.full(n, lr), "wd": np.full(n, wd)}
        if replacement == "random":
            moved["elr"][later] = np.exp(rng.uniform(-8, 0, n - cut - 1))
            moved["lr"][later] = rng.uniform(0.1, 3.0, n - cut - 1)
            moved["wd"][later] = rng.uniform(1e-4, 0.1, n - cut - 1)
        elif replacement == "shuffled":
            moved["elr"][later] = rng.permutation(elr[later])
        else:
            moved["elr"][later] = math.nan
        changed = warnings_of(steps, moved["elr"], moved["lr"], moved["wd"])
        for key in ("warning", "steps_to_threshold"):
            assert_array_equal(changed[key][: cut + 1], whole[key][: cut + 1], err_msg=f"{key} at cut {cut}")


# --- score_run --------------------------------------------------------------------------------------------------


def test_score_run_needs_min_history_plus_one_destabilisations():
    warning = np.zeros(N_STEPS)
    warnings = dict.fromkeys(HORIZON_BAND, warning)
    assert score_run(warnings, EVENTS[:MIN_HISTORY], N_STEPS) is None
    report = score_run(warnings, EVENTS[: MIN_HISTORY + 1], N_STEPS, loss=noisy_loss(N_STEPS), rise_time=3)
    assert set(report.warning) == set(HORIZON_BAND) and set(report.reactive) == set(REACTIVE_RULES)
    assert all(score.min_lead == -3 for score in report.reactive.values())


@settings(max_examples=40)
@given(
    gaps=st.lists(st.integers(20, 120), min_size=MIN_HISTORY + 1, max_size=10),
    switches=st.lists(st.integers(0, 1200), max_size=30),
)
def test_the_clock_beside_the_warning_is_at_least_as_precise_whenever_it_can_be(gaps, switches):
    events = np.cumsum(gaps)
    n_steps = int(events[-1]) + 20
    warning = np.zeros(n_steps, dtype=bool)
    for switch in sorted(switches):
        warning[switch % n_steps :] = ~warning[switch % n_steps :]
    report = score_run(dict.fromkeys(HORIZON_BAND, warning), events, n_steps)
    for fraction in HORIZON_BAND:
        precision, clock = np.nan_to_num(report.warning[fraction].precision), report.clock[fraction]
        horizon = clock.horizon
        reachable = [
            f
            for f in CLOCK_FRACTIONS
            if score_alarms(clock_alarms(events, n_steps, f), events, n_steps, horizon=horizon).precision >= precision
        ]
        assert report.clock_precision_matched[fraction] == bool(reachable)
        if reachable:
            assert clock.precision >= precision and report.clock_fraction[fraction] in reachable
        again = score_alarms(
            clock_alarms(events, n_steps, report.clock_fraction[fraction]), events, n_steps, horizon=horizon
        )
        assert (again.n_alarms, again.n_true) == (clock.n_alarms, clock.n_true)


def _score(recall: float, precision: float) -> AlarmScore:
    """An AlarmScore over 10 destabilisations with the given recall and precision (tenths)."""
    warned = np.arange(10) < round(10 * recall)
    return AlarmScore(
        horizon=25,
        min_lead=MIN_LEAD,
        events=100 * np.arange(1, 11),
        lead=np.where(warned, 10.0, np.nan),
        warned=warned,
        n_alarms=10,
        n_true=round(10 * precision),
        steps=1000,
    )


GOOD, POOR, CLOCK = _score(1.0, 1.0), _score(0.5, 0.5), _score(0.5, 1.0)


def _report(warning: list[AlarmScore], clock: AlarmScore = CLOCK, matched: bool = True) -> WarningReport:
    return WarningReport(
        warning=dict(zip(HORIZON_BAND, warning, strict=True)),
        clock=dict.fromkeys(HORIZON_BAND, clock),
        clock_fraction=dict.fromkeys(HORIZON_BAND, 0.5),
        clock_precision_matched=dict.fromkeys(HORIZON_BAND, matched),
    )


@pytest.mark.parametrize(
    "warning, clock, matched, meets, verdict",
    [
        ([GOOD, GOOD, GOOD], CLOCK, True, [True, True, True], "meets"),
        ([GOOD, GOOD, POOR], CLOCK, True, [True, True, False], "fragile"),
        ([POOR, GOOD, POOR], CLOCK, True, [False, True, False], "fragile"),
        ([POOR, POOR, POOR], CLOCK, True, [False, False, False], "misses"),
        ([GOOD, GOOD, GOOD], _score(0.95, 1.0), True, [False, False, False], "misses"),  # F1 0.03 above the clock's
        ([GOOD, GOOD, GOOD], _score(0.95, 0.95), False, [False, False, False], "misses"),  # its F1 still counts
    ],
)
def test_the_verdict_is_fragile_when_the_targets_are_met_at_some_horizons_only(warning, clock, matched, meets, verdict):
    report = _report(warning, clock, matched)
    assert [report.meets_targets(f) for f in HORIZON_BAND] == meets
    assert report.verdict == verdict and report.as_dict()["verdict"] == verdict


# --- the warner's state ---------------------------------------------------------------------------------------


def _through_torch_save(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("run", [_synthetic_run, _real_run], ids=["synthetic", "real"])
def test_a_state_round_trip_splits_a_series_without_changing_a_warning(run):
    elr, lr, wd = run()
    whole = warnings_of(np.arange(elr.size), elr, lr, wd)
    for cut in np.linspace(1, elr.size - 1, 9).astype(int).tolist():
        first, before = online(elr[:cut], lr, wd)
        kept, saved = first.state_dict(), _through_torch_save(first.state_dict())
        online(elr[cut:], lr, wd, warner=first, first_step=cut)  # the warner goes on: its state dict stays as taken
        for state in (kept, saved):
            resumed = EarlyWarning()
            resumed.load_state_dict(state)
            _, after = online(elr[cut:], lr, wd, warner=resumed, first_step=cut)
            for key in ("warning", "steps_to_threshold"):
                assert_array_equal(np.concatenate([before[key], after[key]]), whole[key], err_msg=f"{key} at {cut}")


def test_an_alarm_announces_the_next_destabilisation_only():
    """An alarm 2 steps before a destabilisation does not count for the one after it, even inside its horizon:
    precision and recall are both 0."""
    found = score_alarms([98], [0, 100, 110], 300, horizon=20)
    assert (found.n_true, found.precision, found.recall) == (0, 0.0, 0.0)
