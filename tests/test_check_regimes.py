"""Paper checks C1, C2, C7, C8 on tiny settings: their verdicts come from the run files, and they can fail."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import paper_checks.c1_periodic as c1
import paper_checks.c2_fixed_norm as c2
import paper_checks.c7_regimes as c7
import paper_checks.c8_practical as c8
from paper_checks.common import CheckContext, timed
from paper_checks.figures import equilibrium_line, four_panels
from simulate.detection import detect_destabilizations


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> CheckContext:
    """One output folder for the module: checks asking for the same spec share its run, as in ``bnwd check``."""
    return CheckContext(out=tmp_path_factory.mktemp("checks"), scale="tiny", device="cpu")


def _files(ctx: CheckContext, run_id: str) -> tuple[dict, list[dict]]:
    folder = Path(ctx.out) / "runs" / run_id
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in (folder / "series.jsonl").read_text(encoding="utf-8").splitlines()]
    return summary, records


def _periodic_numbers_by_hand(summary: dict, records: list[dict], window: int) -> dict:
    """The C1 numbers recomputed step by step from the files, without the check's code."""
    rho = [r["si_norm"] for r in records]
    loss = [r["loss"] for r in records]
    events = summary["events"]
    falls = total = 0
    for k in range(len(events) - 1):
        start, end = events[k], events[k + 1]
        peak = max(range(start, end + 1), key=lambda i: rho[i])
        for i in range(peak, end):
            falls += rho[i + 1] < rho[i]
            total += 1
    jumps = [max(rho[e + 1 : e + 1 + window]) / rho[e] for e in events if e + 1 < len(rho)]
    spikes = [
        max(loss[e + 1 : e + 1 + window]) / np.median(loss[max(e - window, 0) : e + 1])
        for e in events
        if e + 1 < len(rho)
    ]
    return {
        "n_destabilizations": len(events),
        "shrink_fraction": falls / total if total else math.nan,
        "rho_jump": float(np.median(jumps)) if jumps else math.nan,
        "loss_spike": float(np.median(spikes)) if spikes else math.nan,
    }


def _assert_periodic_verdict(verdict, ctx: CheckContext, settings: dict) -> None:
    summary, records = _files(ctx, verdict.runs[0])
    expected = _periodic_numbers_by_hand(summary, records, settings["jump_window"])
    for name, value in expected.items():
        if math.isnan(value):
            assert math.isnan(verdict.numbers[name]), name
        else:
            assert verdict.numbers[name] == pytest.approx(value, rel=1e-9), name
    bounds = {"n_destabilizations": "min_destabilizations", "shrink_fraction": "min_shrink_fraction"}
    bounds |= {"rho_jump": "min_rho_jump", "loss_spike": "min_loss_spike"}
    judged = {name: limit for name, limit in bounds.items() if limit in settings}
    passed = all(expected[name] >= settings[limit] for name, limit in judged.items())
    assert verdict.detector_band["default"]["passed"] == passed
    assert verdict.tolerance == {limit: settings[limit] for limit in judged.values()}
    assert (Path(ctx.out) / verdict.figure).is_file()


def test_c1_verdict_is_computed_from_the_run(ctx, as_planned):
    settings = c1.SETTINGS["tiny"]
    verdict = timed(c1, ctx, settings)
    assert len(verdict.runs) == 1
    as_planned(c1, settings, ctx, verdict)
    # a check's run checkpoints on its scale's schedule (tiny: often, so the tests go through that path)
    assert (ctx.out / "runs" / verdict.runs[0] / "checkpoint.pt").is_file()
    _assert_periodic_verdict(verdict, ctx, settings)
    assert verdict.detector_band["default"]["passed"], verdict.summary
    assert json.dumps(verdict.to_json())


def test_c1_fails_with_the_norm_fixed(ctx):
    settings = {**c1.SETTINGS["tiny"], "run": {**c1.SETTINGS["tiny"]["run"], "fix_norm": 0.0}}
    verdict = timed(c1, ctx, settings)
    assert not verdict.passed
    assert math.isnan(verdict.numbers["rho_jump"]) or verdict.numbers["rho_jump"] == pytest.approx(1.0, abs=1e-5)


def test_c2_counts_come_from_both_summaries_and_share_c1s_run(ctx, as_planned):
    settings = c2.SETTINGS["tiny"]
    verdict = timed(c2, ctx, settings)
    as_planned(c2, settings, ctx, verdict)
    free_id = timed(c1, ctx, c1.SETTINGS["tiny"]).runs[0]
    assert free_id in verdict.runs and len(verdict.runs) == 2
    (fixed_id,) = set(verdict.runs) - {free_id}
    free_summary, free_records = _files(ctx, free_id)
    fixed_summary, fixed_records = _files(ctx, fixed_id)
    assert verdict.numbers["free_destabilizations"] == len(free_summary["events"])
    assert verdict.numbers["fixed_loss_events_default_threshold"] == len(fixed_summary["events"])
    assert fixed_summary["detected_on"] == "loss"
    min_jump = np.log(settings["min_loss_spike"])
    spikes = {
        name: detect_destabilizations([r["loss"] for r in records], "loss", min_jump=min_jump).size
        for name, records in (("free", free_records), ("fixed", fixed_records))
    }
    assert verdict.numbers["free_loss_spikes"] == spikes["free"]
    assert verdict.numbers["fixed_loss_spikes"] == spikes["fixed"]
    median = np.quantile([r["si_norm"] for r in free_records], settings["fixed_norm_quantile"])
    assert verdict.numbers["fixed_norm"] == pytest.approx(median, rel=1e-3)
    assert np.allclose([r["si_norm"] for r in fixed_records[1:]], verdict.numbers["fixed_norm"], rtol=1e-5)
    passed = (
        min(len(free_summary["events"]), spikes["free"]) >= settings["min_free_destabilizations"]
        and spikes["fixed"] <= settings["max_fixed_destabilizations"]
        and verdict.numbers["fixed_final_over_initial_loss"] <= settings["max_fixed_loss_ratio"]
    )
    assert verdict.detector_band["default"]["passed"] == passed


def test_c7_regimes_and_equilibrium_numbers_match_the_files(ctx, as_planned):
    settings = c7.SETTINGS["tiny"]
    verdict = timed(c7, ctx, settings)
    as_planned(c7, settings, ctx, verdict)
    by_lr_wd = {}
    for run_id in verdict.runs:
        summary, records = _files(ctx, run_id)
        spec = json.loads((Path(ctx.out) / "runs" / run_id / "spec.json").read_text(encoding="utf-8"))
        by_lr_wd[spec["lr"] * spec["wd"]] = (spec, summary, records)
    for name in c7.EXPECTED:
        spec, summary, _ = by_lr_wd[verdict.numbers[name]["lr_wd"]]
        assert verdict.numbers[name]["regime"] == summary["regime"]
        assert verdict.numbers[name]["n_destabilizations"] == len(summary["events"])
    spec, _, records = by_lr_wd[verdict.numbers["large_lr_wd"]["lr_wd"]]
    tail = records[2 * len(records) // 3 :]
    rms = np.sqrt(np.mean([(r["elr"] * r["eff_grad_norm"]) ** 2 for r in tail]))
    lr_wd = spec["lr"] * spec["wd"]
    large = verdict.numbers["large_lr_wd"]
    assert large["elr_times_grad_ratio"] == pytest.approx(rms / np.sqrt(lr_wd * (2 - lr_wd)), rel=1e-9)
    angle = np.sqrt(np.mean([r["angular_update"] ** 2 for r in tail]))
    assert large["angular_update_ratio"] == pytest.approx(angle / np.arccos(1 - lr_wd), rel=1e-9)
    regimes_ok = all(verdict.numbers[n]["regime"] == expected for n, expected in c7.EXPECTED.items())
    ratios_ok = all(
        abs(large[k] - 1) <= settings["equilibrium_tolerance"] for k in ("elr_times_grad_ratio", "angular_update_ratio")
    )
    small = verdict.numbers["small_lr_wd"]
    converged = (
        small["n_destabilizations"] == 0 and small["final_over_initial_loss"] <= settings["max_converged_loss_ratio"]
    )
    assert verdict.detector_band["default"]["passed"] == (regimes_ok and ratios_ok and converged)


def test_c7_fails_when_the_runs_are_in_the_wrong_regimes(ctx):
    runs = c7.SETTINGS["tiny"]["runs"]
    swapped = {
        "small_lr_wd": runs["large_lr_wd"],
        "moderate_lr_wd": runs["small_lr_wd"],
        "large_lr_wd": runs["moderate_lr_wd"],
    }
    verdict = timed(c7, ctx, {**c7.SETTINGS["tiny"], "runs": swapped})
    assert not verdict.passed


def test_c8_verdict_is_computed_from_the_run(ctx, as_planned):
    settings = c8.SETTINGS["tiny"]
    verdict = timed(c8, ctx, settings)
    as_planned(c8, settings, ctx, verdict)
    _assert_periodic_verdict(verdict, ctx, settings)
    assert verdict.numbers["regime"] == _files(ctx, verdict.runs[0])[0]["regime"]


def test_four_panels_draws_any_number_of_runs(ctx, tmp_path):
    runs = [ctx.train(ctx.spec(**c1.SETTINGS["tiny"]["run"])), ctx.train(ctx.spec(**c8.SETTINGS["tiny"]["run"]))]
    path = four_panels(runs, tmp_path / "sub" / "four.png", labels=["free", "practical"])
    assert path.is_file() and path.stat().st_size > 0
    with pytest.raises(ValueError, match="one entry per run"):
        four_panels(runs, tmp_path / "x.png", labels=["only one"])
    # The equilibrium line comes from theory: its product with ‖g̃‖ is √(ηλ(2−ηλ)) everywhere.
    grad = np.geomspace(0.1, 10, 5)
    spec = runs[0].spec
    assert np.allclose(equilibrium_line(runs[0], grad) * grad, np.sqrt(spec.lr * spec.wd * (2 - spec.lr * spec.wd)))
    assert equilibrium_line(runs[1], grad) is None  # momentum: plain SGD's line does not apply
