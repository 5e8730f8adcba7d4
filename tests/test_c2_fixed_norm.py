"""C2 (no periods at a fixed norm) on tiny settings: its counts come from both runs' files."""

from __future__ import annotations

import numpy as np
import pytest
from checks_support import run_files

import bnwd.paper_checks.c1_periodic as c1
import bnwd.paper_checks.c2_fixed_norm as c2
from bnwd.analysis.detection import find_spikes
from bnwd.paper_checks.common import timed


def test_c2_counts_come_from_both_summaries_and_share_c1s_run(ctx, as_planned):
    settings = c2.SETTINGS["tiny"]
    verdict = timed(c2, ctx, settings)
    as_planned(c2, settings, ctx, verdict)
    free_id = timed(c1, ctx, c1.SETTINGS["tiny"]).runs[0]
    assert free_id in verdict.runs and len(verdict.runs) == 2
    (fixed_id,) = set(verdict.runs) - {free_id}
    free_summary, free_records = run_files(ctx, free_id)
    fixed_summary, fixed_records = run_files(ctx, fixed_id)
    assert verdict.numbers["free_destabilizations"] == len(free_summary["events"])
    assert verdict.numbers["fixed_loss_events_default_threshold"] == len(fixed_summary["events"])
    assert fixed_summary["detected_on"] == "loss"
    min_jump = np.log(settings["min_loss_spike"])
    spikes = {
        name: find_spikes([r["loss"] for r in records], summary["detection_window"], min_jump=min_jump).size
        for name, summary, records in (("free", free_summary, free_records), ("fixed", fixed_summary, fixed_records))
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
