"""analysis.destabilization: one definition of a destabilisation, checked against truth it did not define.

(a) Synthetic runs with known events: a sawtooth ρ whose jumps restore the period's decay, a loss that spikes at
    the same steps and re-converges, both noisy, plus decoys the definition must reject: small ρ bumps (under two
    steps of free decay, no loss spike) and loss bursts without a ρ jump. Every event is found within ±2 samples,
    no decoy is.
(b) Three real runs (tests/data/labelled_runs, ConvNetSI on digits) labelled independently: the plain loss-spike
    rule, then checked on the figures (labels.json says how). Measured at the default settings, matched within
    max(3, 5 % of the period): demo λ = 0.01, 20 found / 19 labels, precision 0.95, recall 1.00; η = 1,
    λ = 0.005, 22 / 20, precision 0.91, recall 1.00; η = 3, λ = 0.0033 (C3's run), 63 / 64, precision 0.98,
    recall 0.97.
(c) On the same runs, the share of destabilisations that ρ's own detection and the loss's own detection both find
    within that tolerance: 0.95–0.97; the loss alone also flags bursts without a ρ jump (Dice agreement of the two
    per-signal detections 0.80–0.88).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from labelled import labelled_runs

from bnwd import theory
from bnwd.analysis import destabilization as ds
from bnwd.analysis.detection import find_spikes


def joint_run(seed, *, n_events=8, period=80, jitter=0.3, spread=3, noise=0.02, decoys=True, bump=1.5, lr=1.0, wd=0.01):
    """(events, series) of a periodic run: ln ρ falls by κ = −ln(1−ηλ) per step and each event restores a whole
    period's fall over ``spread`` samples; the loss re-converges from 2.3 to 1e-3 after each event (and from the
    start); ``noise`` is σ of white noise on ln ρ in units of κ, and ×(1 ± 30 %) multiplicative noise on the loss.
    Decoys between events: ρ bumps of ``bump`` steps of decay with no loss spike, and loss bursts ×5 with no ρ
    jump."""
    rng = np.random.default_rng(seed)
    kappa = -math.log1p(-lr * wd)
    intervals = np.round(period * (1 + rng.uniform(-jitter, jitter, n_events - 1))).astype(int)
    events = 150 + np.concatenate([[0], np.cumsum(intervals)])
    n = int(events[-1] + period)
    increments = np.full(n - 1, -kappa)
    log_loss = np.full(n, math.log(1e-3))
    previous = 0
    # training from initialisation re-converges like a period does, from the loss at chance
    for event, nxt in zip([-1, *events], [*events, n], strict=True):
        if event >= 0:
            increments[event : event + spread] += kappa * (event - previous) / spread
            previous = event
        t = np.arange(nxt - event - 1)
        log_loss[event + 1 : nxt] = math.log(1e-3) + (math.log(2.3) - math.log(1e-3)) * np.exp(-t / (period / 6))
    if decoys:
        for event, nxt in itertools.pairwise(events):
            increments[event + (nxt - event) // 2] += bump * kappa
            burst = event + 3 * (nxt - event) // 4
            log_loss[burst : burst + 2] += math.log(5.0)
    log_rho = np.concatenate([[0.0], np.cumsum(increments)]) + noise * kappa * rng.standard_normal(n)
    loss = np.exp(log_loss) * (1 + 0.3 * rng.uniform(-1, 1, n))
    rho = np.exp(log_rho)
    angle = np.full(n, 0.01)
    return events, {"si_norm": rho, "loss": loss, "elr": lr / rho**2, "angular_update": angle}


@settings(max_examples=30)
@given(
    seed=st.integers(0, 10_000),
    period=st.integers(40, 160),
    spread=st.integers(1, 6),
    noise=st.floats(0.0, 0.1),
)
def test_synthetic_events_are_found_and_decoys_are_not(seed, period, spread, noise):
    events, series = joint_run(seed, period=period, spread=spread, noise=noise)
    found = ds.analyze(series, lr=1.0, wd=0.01)
    assert found.detection.signals == ("si_norm", "loss")
    assert found.events.size == events.size, (found.events, events)
    assert np.abs(found.events - events).max() <= 2
    assert found.regime == "periodic" and found.evidence["n_destabilizations"] == events.size
    # the band agrees: the decoys sit far from every threshold of the declared band
    assert found.band_range("n_destabilizations") == (events.size, events.size)


def test_without_a_loss_the_norm_alone_decides_and_says_so():
    events, series = joint_run(1, decoys=False)
    alone = ds.analyze({**series, "loss": None}, lr=1.0, wd=0.01)
    assert alone.detection.signals == ("si_norm",) and np.abs(alone.events - events).max() <= 2
    stand_in = ds.analyze({**series, "loss": None, "eff_grad_norm": series["loss"]}, lr=1.0, wd=0.01)
    assert stand_in.detection.signals == ("si_norm", "eff_grad_norm")
    assert np.array_equal(stand_in.events, ds.analyze(series, lr=1.0, wd=0.01).events)


def test_each_step_of_the_definition_rejects_what_it_should():
    _, series = joint_run(2, decoys=False)
    quiet_loss = {**series, "loss": np.exp(np.log(series["loss"]).mean()) * np.ones_like(series["loss"])}
    assert ds.analyze(quiet_loss, lr=1.0, wd=0.01, band=()).events.size == 0  # ρ jumps without a loss spike
    # at λ = 0.03 a bump of 3 steps of decay rises out of ρ's noise (step 1), and step 2 rejects it
    events, series = joint_run(2, bump=3.0, wd=0.03)
    found = ds.analyze(series, lr=1.0, wd=0.03, band=())
    assert found.events.size == events.size
    rejected = found.detection.candidates[found.detection.decay_steps < ds.DEFAULT_SETTINGS.min_decay_steps]
    assert rejected.size and not np.isin(rejected, found.events).any()


def test_batches_give_the_rows_results():
    runs = [joint_run(seed, period=period)[1] for seed, period in ((3, 60), (4, 100))]
    n = min(r["si_norm"].size for r in runs)
    batch = {k: np.stack([r[k][:n] for r in runs]) for k in runs[0]}
    together = ds.analyze(batch, lr=1.0, wd=[0.01, 0.01])
    for row, run in zip(together, runs, strict=True):
        alone = ds.analyze({k: v[:n] for k, v in run.items()}, lr=1.0, wd=0.01)
        assert np.array_equal(row.events, alone.events) and row.band == alone.band


@pytest.mark.parametrize("spread", [1, 4, 8])
def test_rise_time_follows_the_jump(spread):
    _, series = joint_run(5, spread=spread, noise=0.0, decoys=False)
    _, rise, _ = ds.rise_times(series["si_norm"][None])
    assert max(spread, 3) <= rise[0] <= max(spread, 3) + 2


def _matched(found, truth, tolerance) -> int:
    """Truth events with a found event within ``tolerance`` (each found event used once, the nearest first)."""
    free, count = list(found), 0
    for t in truth:
        near = [f for f in free if abs(f - t) <= tolerance]
        if near:
            free.remove(min(near, key=lambda f: abs(f - t)))
            count += 1
    return count


@pytest.mark.parametrize(
    ("name", "entry", "series"), list(labelled_runs()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_real_runs_against_independent_labels(name, entry, series):
    labels = np.array(entry["labels"])
    found = ds.analyze(series, lr=entry["run"]["lr"], wd=entry["run"]["wd"])
    tolerance = max(3.0, 0.05 * np.mean(np.diff(labels)))
    hits = _matched(found.events, labels, tolerance)
    precision, recall = hits / found.events.size, hits / labels.size
    assert precision >= 0.9 and recall >= 0.9, (name, precision, recall)
    assert found.regime == "periodic"
    # (c) the destabilisations both per-signal detections find
    detection = found.detection
    rho_alone = detection.candidates[detection.decay_steps >= ds.DEFAULT_SETTINGS.min_decay_steps]
    loss_alone = find_spikes(series["loss"], detection.window)
    tolerance = max(3.0, 0.05 * found.period)
    both = [e for e in found.events if min(abs(rho_alone - e)) <= tolerance and min(abs(loss_alone - e)) <= tolerance]
    assert len(both) / found.events.size >= 0.9, name
    assert ds.agreement(rho_alone, loss_alone, tolerance) >= 0.75


def test_regimes_with_the_numbers_that_decided_them():
    _, series = joint_run(6, decoys=False)
    periodic = ds.analyze(series, lr=1.0, wd=0.01)
    assert periodic.regime == "periodic" and {"median_period", "regularity", "rule"} <= set(periodic.evidence)

    n = 4000
    t = np.arange(n)
    rng = np.random.default_rng(0)
    theta = float(theory.equilibrium_angular_update(0.5, 0.02))
    equilibrium = {
        "si_norm": np.exp(0.01 * rng.standard_normal(n)),
        "loss": np.exp(0.3 * rng.standard_normal(n)),
        "elr": np.full(n, 0.5),
        "angular_update": theta * (1 + 0.2 * rng.standard_normal(n)),
    }
    found = ds.analyze(equilibrium, lr=0.5, wd=0.02)
    assert found.regime == "equilibrium" and found.evidence["relative_to_theory"] <= 0.25
    convergent = {**equilibrium, "si_norm": np.exp(-1e-4 * t), "loss": np.exp(-3e-3 * t), "elr": np.exp(2e-4 * t)}
    convergent["angular_update"] = 1e-3 * np.exp(-1e-3 * t)
    assert ds.analyze(convergent, lr=0.1, wd=1e-3).regime == "convergent"
    failed = {**convergent, "loss": 2.3 * np.exp(3e-3 * t)}
    found = ds.analyze(failed, lr=1000.0, wd=1e-4)
    assert found.regime == "failed" and found.evidence["loss_end"] > found.evidence["loss_start"]
    assert ds.analyze(series, lr=1.0, wd=0.01, norm_control="fixed_norm").regime == "fixed_norm"
    assert ds.analyze(series, lr=1.0, wd=0.01, norm_control="fixed_elr").regime == "fixed_elr"


def test_divergence_and_gaps_are_told_apart():
    events, series = joint_run(7, decoys=False)
    cut = (events[4] + events[5]) // 2
    diverged = {k: np.where(np.arange(v.size) >= cut, np.nan, v) for k, v in series.items()}
    found = ds.analyze(diverged, lr=1.0, wd=0.01)
    assert found.regime == "diverged" and found.evidence["diverged_at"] == cut
    assert np.abs(found.events - events[:5]).max() <= 2  # the events before the divergence are kept
    gap = {k: v.copy() for k, v in series.items()}
    gap["loss"][cut : cut + 3] = np.nan
    found = ds.analyze(gap, lr=1.0, wd=0.01)
    assert found.regime == "undetermined" and "gap" in found.evidence["rule"] and math.isnan(found.period)


@pytest.mark.parametrize(
    ("series", "reason"),
    [
        ({"si_norm": np.ones(3), "loss": np.ones(3)}, "3 finite samples"),
        ({"si_norm": np.ones(50), "loss": np.ones(50)}, "constant"),
    ],
)
def test_series_that_say_nothing_are_undetermined_with_the_reason(series, reason):
    series = {**series, "elr": np.ones(series["si_norm"].size), "angular_update": np.ones(series["si_norm"].size)}
    found = ds.analyze(series, lr=1.0, wd=0.01)
    assert found.regime == "undetermined" and reason in found.evidence["rule"]
    assert found.events.size == 0 and math.isnan(found.period) and found.band == {}


@pytest.mark.parametrize("n", [1, 50])
def test_a_series_never_finite_diverged_at_its_first_sample(n):
    """Non-finite from the first sample to the end is the definition of ``diverged`` at 0 (a run whose first step
    gave a NaN loss is recorded up to that step), not a series that says nothing."""
    series = {name: np.full(n, np.nan) for name in ("si_norm", "loss", "elr", "angular_update")}
    found = ds.analyze(series, lr=1.0, wd=0.01)
    rule = "diverged at sample 0: ρ and the loss non-finite from there on (0 finite samples; at least 8 are needed)"
    assert found.regime == "diverged" and found.evidence == {"rule": rule, "diverged_at": 0}
    assert found.events.size == 0 and math.isnan(found.period) and found.band == {}


def test_settings_are_validated_and_labelled():
    assert ds.DEFAULT_SETTINGS.label() == "default"
    assert ds.DetectorSettings(window=2.0).label() == "window=x2"
    assert ds.DetectorSettings(loss_z=8.0, min_decay_steps=2.5).label() == "min_decay_steps=2.5, loss_z=8"
    for bad in ({"loss_z": -1.0}, {"min_decay_steps": math.inf}, {"window": 0}, {"window": -2.0}, {"loss_z": True}):
        with pytest.raises(ValueError):
            ds.DetectorSettings(**bad)
    with pytest.raises(ValueError, match="needs its loss"):
        ds.analyze({**joint_run(8)[1], "loss": None}, lr=1.0, wd=0.01, norm_control="fixed_norm")


@settings(max_examples=50)
@given(
    a=st.lists(st.integers(0, 500), max_size=12, unique=True),
    b=st.lists(st.integers(0, 500), max_size=12, unique=True),
    tolerance=st.integers(0, 5),
)
def test_agreement_is_symmetric_and_bounded(a, b, tolerance):
    value = ds.agreement(a, b, tolerance)
    assert 0.0 <= value <= 1.0 and value == pytest.approx(ds.agreement(b, a, tolerance))
    assert ds.agreement(a, a, tolerance) == 1.0
    assert ds.agreement(a, [x + 1000 for x in a], tolerance) == (0.0 if a else 1.0)


@pytest.mark.parametrize("n", [0, 1])
def test_a_series_too_short_for_a_step_has_no_spike(n):
    """One sample (a run that diverged at its first step) has no step-to-step noise, none has nothing: no spike,
    and no warning."""
    assert find_spikes(np.ones(n), window=5).size == 0
