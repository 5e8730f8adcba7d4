"""C1 (periodic behaviour) on tiny settings: the verdict comes from the run files, and it fails with the norm fixed."""

from __future__ import annotations

import json
import math

import pytest
from checks_support import assert_periodic_verdict

import bnwd.paper_checks.c1_periodic as c1
from bnwd.paper_checks.common import timed


def test_c1_verdict_is_computed_from_the_run(ctx, as_planned):
    settings = c1.SETTINGS["tiny"]
    verdict = timed(c1, ctx, settings)
    assert len(verdict.runs) == 1
    as_planned(c1, settings, ctx, verdict)
    # a check's run checkpoints on its scale's schedule (tiny: often, so the tests go through that path)
    assert (ctx.out / "runs" / verdict.runs[0] / "checkpoint.pt").is_file()
    assert_periodic_verdict(verdict, ctx, settings)
    assert verdict.detector_band["default"]["passed"], verdict.summary
    assert json.dumps(verdict.to_json())


def test_c1_fails_with_the_norm_fixed(ctx):
    settings = {**c1.SETTINGS["tiny"], "run": {**c1.SETTINGS["tiny"]["run"], "fix_norm": 0.0}}
    verdict = timed(c1, ctx, settings)
    assert not verdict.passed
    assert math.isnan(verdict.numbers["rho_jump"]) or verdict.numbers["rho_jump"] == pytest.approx(1.0, abs=1e-5)
