"""C10 (held-out ηλ from the simulator) on tiny settings: each product held out, against the baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
from checks_support import grid_run_files

import bnwd.paper_checks.c10_simulator as c10
from bnwd.paper_checks.common import timed


def test_c10_holds_out_each_product_and_compares_with_the_baseline(ctx, verdict3, as_planned):
    settings = c10.SETTINGS["tiny"]
    verdict = timed(c10, ctx, settings)
    as_planned(c10, settings, ctx, verdict)
    assert (ctx.out / verdict.figure).exists()
    numbers = verdict.numbers
    assert "runs" in numbers, "the tiny grid must have two products with enough periods for this test to check"
    runs = numbers["runs"]
    lr_wd = np.array([r["lr_wd"] for r in runs])
    measured = np.array([r["period_measured"] for r in runs])
    for i, run in enumerate(runs):
        _, summary = grid_run_files(ctx, settings, settings["grid"][i])
        counted = len(summary["periods"]) >= settings["min_periods"]
        assert (
            (run["period_measured"] == pytest.approx(summary["period_measured"]))
            if counted
            else math.isnan(run["period_measured"])
        )
        others = ~np.isclose(lr_wd, lr_wd[i]) & np.isfinite(measured)
        expected = np.exp(np.mean(np.log(measured[others] * lr_wd[others]))) / lr_wd[i]
        assert run["period_baseline"] == pytest.approx(expected)
    scored = np.isfinite(measured) & np.isfinite([r["period_predicted"] for r in runs])
    errors = {
        key: float(np.median(np.abs(np.array([r[key] for r in runs])[scored] / measured[scored] - 1)))
        for key in ("period_predicted", "period_baseline", "period_control")
    }
    assert numbers["median_abs_relative_error"] == pytest.approx(errors["period_predicted"])
    expected_pass = (
        scored.sum() == np.isfinite(measured).sum()
        and errors["period_predicted"] <= settings["period_tolerance"]
        and errors["period_predicted"] < errors["period_baseline"]
        and errors["period_control"] > errors["period_predicted"]
        and all(r["regime_predicted"] == r["regime_measured"] for r in runs)
    )
    assert verdict.detector_band["default"]["passed"] == expected_pass
    assert verdict.runs == verdict3.runs  # C3's runs, read back: nothing trained twice
