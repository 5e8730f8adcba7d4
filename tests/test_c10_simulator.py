"""C10 (one-run calibration of the catapult simulator) on tiny settings: every calibration run's constants measured
on its own series, its predictions scored on the runs at other ηλ beside T·ηλ = const through the same run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from checks_support import grid_run_files

import bnwd.paper_checks.c10_simulator as c10
from bnwd.analysis.catapult import run_catapult_constants
from bnwd.paper_checks.common import timed


def test_c10_calibrates_on_one_run_and_predicts_the_others(ctx, verdict3, as_planned):
    settings = c10.SETTINGS["tiny"]
    verdict = timed(c10, ctx, settings)
    as_planned(c10, settings, ctx, verdict)
    assert (ctx.out / verdict.figure).exists()
    numbers = verdict.numbers
    assert "calibrations" in numbers, "the tiny grid must have a calibration run and a run at another ηλ"
    runs = numbers["runs"]
    lr_wd = np.array([r["lr_wd"] for r in runs])
    measured = np.array([r["period_measured"] for r in runs])
    for i, run in enumerate(runs):
        trained, summary = grid_run_files(ctx, settings, settings["grid"][i])
        counted = len(summary["periods"]) >= settings["min_periods"]
        assert (
            (run["period_measured"] == pytest.approx(summary["period_measured"]))
            if counted
            else (math.isnan(run["period_measured"]))
        )
        assert run["calibrates"] == (
            run_catapult_constants(trained.steps, trained.series, summary) is not None and counted
        )
    assert numbers["n_calibration_runs"] == len(numbers["calibrations"])
    per_calibration = []
    for c in numbers["calibrations"]:
        i = c["calibration_run"]
        assert runs[i]["calibrates"] and c["calibration_lr_wd"] == runs[i]["lr_wd"]
        held_out = np.array(c["held_out"])
        assert not held_out[np.isclose(lr_wd, lr_wd[i])].any()  # never scored at its own ηλ
        np.testing.assert_allclose(c["period_constant_product"], measured[i] * lr_wd[i] / lr_wd)
        predicted = np.array(c["period_predicted"], dtype=float)
        predicted[np.isnan(predicted)] = np.inf  # no period predicted where one was measured: a miss
        error = float(np.median(np.abs(predicted[held_out] / measured[held_out] - 1)))
        assert c["errors"]["prediction"] == pytest.approx(error)
        per_calibration.append(c["errors"])
    errors = numbers["errors"]
    for name in ("prediction", "constant_period_times_lr_wd", "shuffled_constants"):
        assert errors[name] == pytest.approx(np.median([e[name] for e in per_calibration]))
    assert numbers["median_abs_relative_error"] == errors["prediction"]
    expected_pass = (
        errors["prediction"] <= settings["period_tolerance"]
        and errors["prediction"] < errors["constant_period_times_lr_wd"]
        and errors["shuffled_constants"] > errors["prediction"]
        and 1 / settings["spread_factor"] <= numbers["spread_ratio"] <= settings["spread_factor"]
    )
    assert verdict.passed == expected_pass
    assert verdict.runs == verdict3.runs  # C3's runs, read back: nothing trained twice
