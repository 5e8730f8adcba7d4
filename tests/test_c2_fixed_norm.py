"""C2 (no periods at a fixed norm) on tiny settings: its counts come from both runs' files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from checks_support import run_files

import bnwd.paper_checks.c1_periodic as c1
import bnwd.paper_checks.c2_fixed_norm as c2
from bnwd.analysis.detection import find_spikes
from bnwd.analysis.regimes import MIN_DESTABILIZATIONS
from bnwd.paper_checks.common import CheckContext, Run, timed


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
        and spikes["fixed"] <= settings["max_fixed_loss_spikes"]
        and verdict.numbers["fixed_final_over_initial_loss"] <= settings["max_fixed_loss_ratio"]
    )
    assert verdict.detector_band["default"]["passed"] == passed


class _SyntheticRuns(CheckContext):
    """A context whose ``train`` hands back made-up runs: ``free`` for the free spec, ``fixed`` for the fixed one."""

    def __init__(self, out, free: dict, fixed: dict):
        super().__init__(out=out, scale="small", device="cpu")
        self.made = {"free": free, "fixed": fixed}

    def train(self, spec):
        made = self.made["free" if spec.fix_norm is None else "fixed"]
        steps = np.arange(made["loss"].size)
        series = {"loss": made["loss"], "si_norm": made["si_norm"], "elr": spec.lr / made["si_norm"] ** 2}
        summary = {"n_destabilizations": made["n_destabilizations"], "detection_window": 10, "events": []}
        return Run(Path(self.out), {}, steps, series, [], [], summary, spec=spec, id=str(spec.fix_norm))


def _loss_with_bursts(bursts: list[int], seed: int) -> np.ndarray:
    """A loss that trains from 2.3 to ~1e-3 with SGD-like noise (×e^±0.3 per step) and a ×1000 burst of 5 steps at
    each of ``bursts``."""
    rng = np.random.default_rng(seed)
    steps = np.arange(3000)
    loss = (2.3 * np.exp(-steps / 200) + 1e-3) * np.exp(0.3 * rng.standard_normal(steps.size))
    for start in bursts:
        loss[start : start + 5] *= 1000.0
    return loss


@pytest.mark.parametrize(("n_bursts", "passed"), [(0, True), (1, True), (2, True), (3, False), (5, False)])
def test_c2_passes_on_isolated_bursts_at_a_fixed_norm_and_fails_on_a_periodic_sequence(tmp_path, n_bursts, passed):
    # The run: ρ fixed at 9.07 had 1 loss spike ≥ ×100 and failed (need ≤ 0). Isolated bursts are no
    # periodic behaviour; as many as make a run periodic (MIN_DESTABILIZATIONS) are.
    free_bursts = [400, 900, 1400, 1900, 2400]
    free = {"loss": _loss_with_bursts(free_bursts, seed=1), "si_norm": np.full(3000, 9.07), "n_destabilizations": 5}
    fixed_bursts = [700, 1300, 1800, 2100, 2500][:n_bursts]
    fixed = {"loss": _loss_with_bursts(fixed_bursts, seed=2), "si_norm": np.full(3000, 9.07), "n_destabilizations": 0}
    verdict = c2.run(_SyntheticRuns(tmp_path, free, fixed), c2.SETTINGS["small"])
    assert verdict.numbers["free_loss_spikes"] == len(free_bursts)
    assert verdict.numbers["fixed_loss_spikes"] == n_bursts
    assert (
        np.abs(np.subtract(verdict.numbers["fixed_loss_spike_steps"], fixed_bursts)).max(initial=0) <= 5
    )  # within the burst's length
    assert verdict.passed is passed
    assert f"fewer than the {MIN_DESTABILIZATIONS} that make a run periodic" in verdict.summary
