"""Paper checks C3 (frequency ∝ ηλ), C4 (period law per period) and C10 (simulator vs real) on tiny settings.

Each verdict is recomputed here from the run files by a different route (the trainer's own ``summary.json``
events, scipy's regression, the closed-form period law), and fixed-norm runs, which have no periods, must fail.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

import paper_checks.c3_frequency as c3
import paper_checks.c4_period_law as c4
import paper_checks.c10_simulator as c10
from paper_checks.common import CheckContext, timed


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """One output folder for the module: C4 and C10 read back C3's tiny runs instead of training them again."""
    return CheckContext(out=tmp_path_factory.mktemp("checks"), device="cpu")


@pytest.fixture(scope="module")
def verdict3(ctx):
    return timed(c3, ctx, c3.SETTINGS["tiny"])


def _run_files(ctx, settings, entry):
    """The trainer's summary and η̃ series of the grid entry's run."""
    run = ctx.train(ctx.spec(**settings["run"], **entry))
    summary = json.loads((run.path / "summary.json").read_text(encoding="utf-8"))
    return run, summary


@pytest.mark.slow  # trains the four tiny runs that the other tests of this module read back (~15 s on 2 idle cores)
def test_c3_verdict_comes_from_the_runs(ctx, verdict3):
    settings = c3.SETTINGS["tiny"]
    assert verdict3.claim == "C3" and (ctx.out / verdict3.figure).exists()
    assert len(verdict3.runs) == len(settings["grid"])
    periods, lr_wd = [], []
    for entry, reported in zip(settings["grid"], verdict3.numbers["runs"], strict=True):
        _, summary = _run_files(ctx, settings, entry)
        # The trainer's own detection (summary.json) must agree with what the check measured.
        assert reported["n_destabilizations"] == summary["n_destabilizations"]
        assert reported["n_periods"] == len(summary["periods"])
        counted = len(summary["periods"]) >= settings["min_periods"]
        assert reported["counted"] == counted
        if counted:
            assert reported["period"] == pytest.approx(np.mean(summary["periods"]))
            periods.append(np.mean(summary["periods"]))
            lr_wd.append(entry["lr"] * entry["wd"])
    if len(periods) >= 2 and np.ptp(lr_wd) > 0:
        fit = stats.linregress(np.log(lr_wd), -np.log(periods))
        assert verdict3.numbers["slope"] == pytest.approx(fit.slope)
    counted = {(r["lr"], r["wd"]): r["counted"] for r in verdict3.numbers["runs"]}
    for pair in verdict3.numbers["pairs"]:
        if all(counted[key] for key in zip(pair["lr"], pair["wd"], strict=True)):
            spread = (max(pair["period"]) - min(pair["period"])) / np.mean(pair["period"])
            assert pair["relative_difference"] == pytest.approx(spread)
            entries = [e for e in settings["grid"] if (e["lr"], e["wd"]) in zip(pair["lr"], pair["wd"], strict=True)]
            members = [_run_files(ctx, settings, entry)[1]["periods"] for entry in entries]
            error = np.sqrt(sum(np.var(m, ddof=1) / len(m) for m in members)) / np.mean(pair["period"])
            assert pair["standard_error"] == pytest.approx(error)
        else:  # a pair member without enough periods cannot be compared, and fails the pair
            assert math.isnan(pair["relative_difference"])
    decades_ok = verdict3.numbers["decades"] >= settings["min_decades"] - 1e-9
    slope_ok = abs(verdict3.numbers["slope"] - 1) <= settings["slope_tolerance"]
    pairs_ok = all(p["relative_difference"] <= settings["pair_tolerance"] for p in verdict3.numbers["pairs"])
    assert verdict3.detector_band["default"]["passed"] == (decades_ok and slope_ok and pairs_ok)
    assert verdict3.tolerance["slope_tolerance"] == settings["slope_tolerance"]


def test_c3_equal_products_alone_cannot_give_a_slope(ctx, verdict3):
    """The two runs with ηλ = 0.02 (already trained for the tiny grid) span no decade: the claim cannot hold."""
    settings = {**c3.SETTINGS["tiny"], "grid": c3.SETTINGS["tiny"]["grid"][:2]}
    verdict = c3.run(ctx, settings)
    assert verdict.numbers["decades"] == 0.0
    assert not verdict.passed


def test_c4_errors_match_the_closed_form_law(ctx, verdict3):
    settings = c4.SETTINGS["tiny"]
    verdict = timed(c4, ctx, settings)
    assert (ctx.out / verdict.figure).exists()
    all_errors = []
    for entry, reported in zip(settings["grid"], verdict.numbers["runs"], strict=True):
        run, summary = _run_files(ctx, settings, entry)
        events, n = np.array(summary["events"]), len(summary["periods"])
        elr = run.series["elr"]
        lr_wd = entry["lr"] * entry["wd"]
        predicted = []
        for start, end in zip(events[:-1][len(events) - 1 - n :], events[1:][len(events) - 1 - n :], strict=True):
            bottom = start + 1 + int(np.argmin(elr[start + 1 : end]))
            decay = max(np.log(elr[end] / elr[bottom]), 0.0) / (-2 * np.log1p(-lr_wd))
            predicted.append(bottom - start + decay)
        measured = np.diff(events)[len(events) - 1 - n :]
        assert reported["period_measured"] == pytest.approx(measured.tolist())
        assert reported["period_predicted"] == pytest.approx(predicted)
        all_errors.extend((np.array(predicted) - measured) / measured)
    median = float(np.median(np.abs(all_errors))) if all_errors else math.nan
    assert verdict.numbers["n_periods"] == len(all_errors)
    if all_errors:
        assert verdict.numbers["median_abs_relative_error"] == pytest.approx(median)
    enough = len(all_errors) >= settings["min_periods"]
    assert verdict.detector_band["default"]["passed"] == (enough and median <= settings["median_error_tolerance"])
    assert verdict.runs == verdict3.runs  # C3's runs, read back: nothing trained twice


def test_c10_compares_measured_periods_with_the_simulator(ctx, verdict3):
    settings = c10.SETTINGS["tiny"]
    verdict = timed(c10, ctx, settings)
    assert (ctx.out / verdict.figure).exists()
    run, summary = _run_files(ctx, settings, settings["reference"])
    n = len(summary["periods"])
    numbers = verdict.numbers
    assert numbers["n_periods"] == n
    if n < settings["min_periods"]:
        assert not verdict.passed
        return
    events = np.array(summary["events"])
    assert numbers["period_measured"] == pytest.approx(np.diff(events)[-n:].tolist())
    assert numbers["elr_threshold"] == pytest.approx(run.series["elr"][events[-n:]].tolist())
    simulated, measured = np.array(numbers["period_simulated"]), np.array(numbers["period_measured"])
    difference = (simulated.mean() - measured.mean()) / measured.mean()
    assert numbers["relative_difference"] == pytest.approx(difference, nan_ok=True)  # NaN: a period not simulated
    assert verdict.detector_band["default"]["passed"] == (abs(difference) <= settings["period_tolerance"])


def test_fixed_norm_runs_fail_every_period_check(tmp_path):
    """With ρ projected back after every step nothing decays: no destabilisation of ρ, no period to measure."""
    tiny = c3.SETTINGS["tiny"]
    run_fields = {**tiny["run"], "fix_norm": 0.0}
    grid = [{**entry, "steps": 60} for entry in tiny["grid"][::2]]
    ctx = CheckContext(out=tmp_path, device="cpu")
    verdicts = [
        c3.run(ctx, {**tiny, "run": run_fields, "grid": grid}),
        c4.run(ctx, {**c4.SETTINGS["tiny"], "run": run_fields, "grid": grid}),
        c10.run(ctx, {**c10.SETTINGS["tiny"], "run": run_fields, "reference": grid[0]}),
    ]
    assert all(not verdict.passed for verdict in verdicts)
    assert verdicts[0].numbers["decades"] == 0.0
    assert verdicts[1].numbers["n_periods"] == 0
    assert verdicts[2].numbers["n_periods"] == 0
