"""C7 (three regimes) on tiny settings: regimes and equilibrium numbers from the files; swapped runs fail."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from checks_support import run_files

import bnwd.paper_checks.c7_regimes as c7
from bnwd.paper_checks.common import timed


def test_c7_regimes_and_equilibrium_numbers_match_the_files(ctx, as_planned):
    settings = c7.SETTINGS["tiny"]
    verdict = timed(c7, ctx, settings)
    as_planned(c7, settings, ctx, verdict)
    by_lr_wd = {}
    for run_id in verdict.runs:
        summary, records = run_files(ctx, run_id)
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
