"""C3 (frequency ∝ ηλ) on tiny settings: the verdict recomputed from the trainer's own summaries and scipy's
regression; without a decade of ηλ, or with the norm fixed, the period checks fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
from checks_support import grid_run_files
from scipy import stats

import bnwd.paper_checks.c3_frequency as c3
import bnwd.paper_checks.c4_period_law as c4
import bnwd.paper_checks.c10_simulator as c10
from bnwd.paper_checks.common import CheckContext


@pytest.mark.slow  # trains the four tiny runs that the tests of C4 and C10 read back (~15 s on 2 idle cores)
def test_c3_verdict_comes_from_the_runs(ctx, verdict3, as_planned):
    settings = c3.SETTINGS["tiny"]
    assert verdict3.claim == "C3" and (ctx.out / verdict3.figure).exists()
    assert len(verdict3.runs) == len(settings["grid"])
    as_planned(c3, settings, ctx, verdict3)
    periods, lr_wd = [], []
    for entry, reported in zip(settings["grid"], verdict3.numbers["runs"], strict=True):
        _, summary = grid_run_files(ctx, settings, entry)
        # The trainer's own detection (summary.json) must agree with what the check measured.
        assert reported["n_destabilizations"] == summary["n_destabilizations"]
        assert reported["n_periods"] == len(summary["periods"])
        counted = len(summary["periods"]) >= settings["min_periods"]
        assert reported["counted"] == counted
        if counted:
            assert reported["period"] == pytest.approx(np.mean(summary["periods"]))
            periods.append(np.mean(summary["periods"]))
            lr_wd.append(entry["lr"] * entry["wd"])
    assert len(periods) >= 2 and np.ptp(lr_wd) > 0, "the tiny grid must give a slope for this test to check"
    fit = stats.linregress(np.log(lr_wd), -np.log(periods))
    assert verdict3.numbers["slope"] == pytest.approx(fit.slope)
    counted = {(r["lr"], r["wd"]): r["counted"] for r in verdict3.numbers["runs"]}
    for pair in verdict3.numbers["pairs"]:
        if all(counted[key] for key in zip(pair["lr"], pair["wd"], strict=True)):
            spread = (max(pair["period"]) - min(pair["period"])) / np.mean(pair["period"])
            assert pair["relative_difference"] == pytest.approx(spread)
            entries = [e for e in settings["grid"] if (e["lr"], e["wd"]) in zip(pair["lr"], pair["wd"], strict=True)]
            members = [grid_run_files(ctx, settings, entry)[1]["periods"] for entry in entries]
            error = np.sqrt(sum(np.var(m, ddof=1) / len(m) for m in members)) / np.mean(pair["period"])
            assert pair["standard_error"] == pytest.approx(error)
        else:  # a pair member without enough periods cannot be compared, and fails the pair
            assert math.isnan(pair["relative_difference"])
    decades_ok = verdict3.numbers["decades"] >= settings["min_decades"] - 1e-9
    slope_ok = abs(verdict3.numbers["slope"] - 1) <= settings["slope_tolerance"]
    pairs_ok = all(p["relative_difference"] <= settings["pair_tolerance"] for p in verdict3.numbers["pairs"])
    assert verdict3.detector_band["default"]["passed"] == (decades_ok and slope_ok and pairs_ok)
    assert verdict3.tolerance["slope_tolerance"] == settings["slope_tolerance"]


def test_c3_slope_only_says_what_the_pairs_would_need(ctx, verdict3):
    """At a scale where the pair test cannot be powered (paper) the verdict is the slope's, and it says why, with the
    periods a pair would need computed from the runs' own scatter."""
    settings = {**c3.SETTINGS["tiny"], "pair_test": False}
    verdict = c3.run(ctx, settings)
    runs = [r for r in verdict.numbers["runs"] if r["counted"]]
    cv = float(np.median([r["period_std"] / r["period"] for r in runs]))
    need = verdict.numbers["pairs_need"]
    assert need["period_cv"] == pytest.approx(cv)
    assert need["periods_per_run"] == math.ceil(2 * (2 * cv / settings["pair_tolerance"]) ** 2)
    assert need["steps_per_run"] == int(need["periods_per_run"] * min(r["period"] for r in runs))
    assert "NOT TESTED" in verdict.summary and f"≥ {need['periods_per_run']} periods a run" in verdict.summary
    decades_ok = verdict.numbers["decades"] >= settings["min_decades"] - 1e-9
    assert verdict.passed == (decades_ok and abs(verdict.numbers["slope"] - 1) <= settings["slope_tolerance"])
    assert c3.SETTINGS["paper"]["pair_test"] is False and c3.SETTINGS["small"]["pair_test"] is True


def test_c3_equal_products_alone_cannot_give_a_slope(ctx, verdict3):
    """The two runs with ηλ = 0.02 (already trained for the tiny grid) span no decade: the claim cannot hold."""
    settings = {**c3.SETTINGS["tiny"], "grid": c3.SETTINGS["tiny"]["grid"][:2]}
    verdict = c3.run(ctx, settings)
    assert verdict.numbers["decades"] == 0.0
    assert not verdict.passed


def test_fixed_norm_runs_fail_every_period_check(tmp_path):
    """With ρ projected back after every step nothing decays: no destabilisation of ρ, no period to measure."""
    tiny = c3.SETTINGS["tiny"]
    run_fields = {**tiny["run"], "fix_norm": 0.0}
    grid = [{**entry, "steps": 60} for entry in tiny["grid"][::2]]
    ctx = CheckContext(out=tmp_path, scale="tiny", device="cpu")
    verdicts = [
        c3.run(ctx, {**tiny, "run": run_fields, "grid": grid}),
        c4.run(ctx, {**c4.SETTINGS["tiny"], "run": run_fields, "grid": grid, "sharpness_run": grid[0]}),
        c10.run(ctx, {**c10.SETTINGS["tiny"], "run": run_fields, "grid": grid}),
    ]
    assert all(not verdict.passed for verdict in verdicts)
    assert verdicts[0].numbers["decades"] == 0.0
    assert verdicts[1].numbers["n_periods"] == 0
    assert verdicts[2].numbers["n_runs"] == 0
