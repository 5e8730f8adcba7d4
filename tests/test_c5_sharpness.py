"""C5 (η̃·s̃ at destabilisations) on tiny settings: its numbers are the runs', and without a destabilisation it fails."""

from __future__ import annotations

import math

import numpy as np
import pytest
from checks_support import tiny_settings

import bnwd.paper_checks.c5_sharpness as c5
from bnwd.paper_checks.common import CheckContext, timed


@pytest.mark.slow
def test_c5_numbers_are_the_runs_and_no_destabilisation_fails(tmp_path, checked_alone):
    ctx, verdict = checked_alone(c5)
    settings = c5.SETTINGS["tiny"]
    run = ctx.train(ctx.spec(**settings["run"]))
    threshold = 2 * (1 - run.spec.lr * run.spec.wd)
    assert verdict.numbers["threshold"] == pytest.approx(run.summary["elr_times_sharpness_threshold"])
    measured = [(r["step"], r["elr_times_sharpness"]) for r in run.records if "elr_times_sharpness" in r]
    assert verdict.numbers["n_sharpness_measurements"] == len(measured)
    assert verdict.numbers["n_events"] == len(run.summary["events"])
    t_max = c5.growth_steps(run.spec.lr, run.spec.wd, settings["log_amplification"])
    assert verdict.tolerance["max_steps_crossing_to_event"] == pytest.approx(t_max)
    on = []
    for previous, event in zip([-1, *run.summary["events"]], run.summary["events"], strict=False):
        # direct recomputation: the last measurement below the threshold since the previous event, and the next one
        # (an event is the last step before the rise: the measurement at that step precedes it)
        window = [(s, v) for s, v in measured if previous < s <= event]
        below = [k for k, (_, v) in enumerate(window) if v < threshold]
        after = window[below[-1] + 1 :] if below else []
        on.append(
            bool(after)
            and after[0][0] - window[below[-1]][0] <= settings["max_measure_gap"]
            and event - after[0][0] <= t_max
        )
    assert [e["on_threshold"] for e in verdict.numbers["events"]] == on
    last = run.summary["elr_times_sharpness_before_destabilization"]
    assert verdict.numbers["last_ratios"] == pytest.approx([e["last"] / threshold for e in last])
    expected = len(on) >= settings["min_events"] and sum(on) / len(on) >= settings["min_fraction"]
    assert verdict.detector_band["default"]["passed"] == expected
    # the minibatch run is reported, not decided: its numbers are those of its records
    minibatch = ctx.train(ctx.spec(**settings["minibatch_run"]))
    for name, key in (("lambda_max", "elr_times_sharpness"), ("batch_sharpness", "elr_times_batch_sharpness")):
        values = [r[key] for r in minibatch.records if key in r]
        assert values and verdict.numbers["minibatch"][name]["median_ratio"] == pytest.approx(
            np.median(values) / threshold
        )
        assert [e["event"] for e in verdict.numbers["minibatch"][name]["per_event"]] == minibatch.summary["events"]

    # without weight decay η̃ only falls: no destabilisation, so the "≥ N events" requirement fails
    calm = timed(
        c5, CheckContext(out=tmp_path / "calm", scale="tiny", device="cpu"), tiny_settings(c5, run={"wd": 0.0})
    )
    assert calm.numbers["n_events"] == 0
    assert not calm.passed


def test_growth_steps():
    assert c5.growth_steps(1.0, 0.0, 16.0) == math.inf
    assert c5.growth_steps(1.0, 0.03, 16.0) == pytest.approx(math.sqrt(16.0 / 0.06))
