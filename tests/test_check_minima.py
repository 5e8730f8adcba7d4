"""Paper checks C5 (η̃·s̃ at destabilisations), C6 (different minima, ensembles) and C9 (the symmetry law) on tiny
settings: their verdicts come from the measured numbers, and configurations where the claim must fail fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import paper_checks.c5_sharpness as c5
import paper_checks.c6_minima as c6
import paper_checks.c9_symmetry as c9
from paper_checks.common import CheckContext, timed


def _tiny(module, **changes) -> dict:
    settings = {**module.SETTINGS["tiny"], **changes}
    settings["run"] = {**module.SETTINGS["tiny"]["run"], **changes.get("run", {})}
    return settings


def test_every_check_states_its_scales():
    for module in (c5, c6, c9):
        assert set(module.SETTINGS) == {"tiny", "small", "paper"}
        assert module.CLAIM in ("C5", "C6", "C9") and module.TITLE


def test_c9_symmetric_map_keeps_directions_and_a_broken_map_does_not(tmp_path, monkeypatch, as_planned):
    ctx = CheckContext(out=tmp_path, scale="tiny", device="cpu")
    verdict = timed(c9, ctx, c9.SETTINGS["tiny"])
    as_planned(c9, c9.SETTINGS["tiny"], ctx, verdict)
    numbers = verdict.numbers
    assert verdict.passed, verdict.summary
    assert numbers["max_direction_gap_symmetric"] <= c9.SETTINGS["tiny"]["max_direction_gap"]
    assert numbers["max_direction_gap_control"] >= c9.SETTINGS["tiny"]["min_control_gap"]
    c = numbers["scale"]
    assert numbers["config_symmetric"]["lr"] == pytest.approx(c * numbers["config_reference"]["lr"])
    assert numbers["config_symmetric"]["wd"] == pytest.approx(numbers["config_reference"]["wd"] / c)
    assert numbers["config_symmetric"]["si_init_scale"] == pytest.approx(math.sqrt(c))
    assert (tmp_path / verdict.figure).exists()

    # a map that forgets to divide λ by c: the "symmetric" net is then the control, and the check must fail
    monkeypatch.setattr(c9.theory, "symmetric_config", lambda lr, wd, rho, scale: (scale * lr, wd, rho * scale**0.5))
    broken = timed(c9, CheckContext(out=tmp_path / "broken", scale="tiny", device="cpu"), c9.SETTINGS["tiny"])
    assert not broken.passed
    assert broken.numbers["max_direction_gap_symmetric"] == broken.numbers["max_direction_gap_control"]


@pytest.mark.slow
def test_c5_numbers_are_the_runs_and_no_destabilisation_fails(tmp_path, as_planned):
    ctx = CheckContext(out=tmp_path, scale="tiny", device="cpu")
    settings = c5.SETTINGS["tiny"]
    verdict = timed(c5, ctx, settings)
    as_planned(c5, settings, ctx, verdict)
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
    calm = timed(c5, CheckContext(out=tmp_path / "calm", scale="tiny", device="cpu"), _tiny(c5, run={"wd": 0.0}))
    assert calm.numbers["n_events"] == 0
    assert not calm.passed


def test_growth_steps():
    assert c5.growth_steps(1.0, 0.0, 16.0) == math.inf
    assert c5.growth_steps(1.0, 0.03, 16.0) == pytest.approx(math.sqrt(16.0 / 0.06))


def test_cosine_matrix_is_symmetric_with_unit_diagonal():
    generator = torch.Generator().manual_seed(0)
    vectors = [torch.randn(50, generator=generator, dtype=torch.float64) for _ in range(4)]
    sims = c6.cosine_matrix(vectors)
    np.testing.assert_allclose(sims, sims.T, atol=1e-15)
    np.testing.assert_allclose(np.diag(sims), 1.0, atol=1e-15)
    assert sims[0, 1] == pytest.approx(float(vectors[0] @ vectors[1] / (vectors[0].norm() * vectors[1].norm())))


@pytest.mark.slow
def test_c6_numbers_match_a_direct_evaluation(tmp_path, as_planned):
    ctx = CheckContext(out=tmp_path, scale="tiny", device="cpu")
    settings = c6.SETTINGS["tiny"]
    verdict = timed(c6, ctx, settings)
    as_planned(c6, settings, ctx, verdict)
    numbers = verdict.numbers
    assert numbers["rerun_rho_max_relative_error"] <= settings["reproduce_rtol"]
    n = settings["n_periods"]
    assert len(numbers["cos_along_period"]) == len(numbers["cos_across_periods"]) == n
    lower = np.mean(np.array(numbers["cos_across_periods"]) < np.array(numbers["cos_along_period"]))
    assert numbers["across_lower_fraction"] == pytest.approx(lower)
    expected = (
        np.mean(numbers["cos_across_periods"]) < np.mean(numbers["cos_along_period"])
        and lower >= settings["min_across_lower_fraction"]
        and numbers["period_ensemble_test_acc"] >= max(numbers["member_test_acc"])
    )
    assert verdict.passed == expected

    # the last member's accuracy is what the trainer's own evaluation gives for a fresh copy of that checkpoint
    spec = ctx.spec(**settings["run"])
    last = numbers["period_ends"][-1]
    states, trainer = c6._states_at(ctx, spec, [last])
    probs, record = c6.evaluate_state(trainer, states[last])
    assert record["test_acc"] == pytest.approx(numbers["member_test_acc"][-1])
    assert float((probs.argmax(1) == trainer.data.test_y).double().mean()) == pytest.approx(record["test_acc"])
    np.testing.assert_allclose(probs.sum(1).numpy(), 1.0, rtol=1e-5)
    assert (tmp_path / verdict.figure).exists()


def test_c6_fails_without_enough_periods(tmp_path):
    ctx = CheckContext(out=tmp_path, scale="tiny", device="cpu")
    verdict = timed(c6, ctx, _tiny(c6, run={"steps": 20}))
    assert not verdict.passed
    assert verdict.numbers["n_events"] < verdict.tolerance["min_events"]
