"""What the tests of the paper checks share: a check's run files read back, the numbers of a periodic run
recomputed by hand, and a check's tiny settings with changes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bnwd.paper_checks.common import CheckContext


def grid_run_files(ctx, settings, entry):
    """The run of ``settings``' grid ``entry`` (trained, or read back when trained already) and its summary.json."""
    run = ctx.train(ctx.spec(**settings["run"], **entry))
    summary = json.loads((run.path / "summary.json").read_text(encoding="utf-8"))
    return run, summary


def run_files(ctx: CheckContext, run_id: str) -> tuple[dict, list[dict]]:
    """The summary.json and the series records of the run ``run_id`` in ``ctx``'s folder, read as a user would."""
    folder = Path(ctx.out) / "runs" / run_id
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in (folder / "series.jsonl").read_text(encoding="utf-8").splitlines()]
    return summary, records


def periodic_numbers_by_hand(summary: dict, records: list[dict], window: int) -> dict:
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


def assert_periodic_verdict(verdict, ctx: CheckContext, settings: dict) -> None:
    summary, records = run_files(ctx, verdict.runs[0])
    expected = periodic_numbers_by_hand(summary, records, settings["jump_window"])
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


def tiny_settings(module, **changes) -> dict:
    settings = {**module.SETTINGS["tiny"], **changes}
    settings["run"] = {**module.SETTINGS["tiny"]["run"], **changes.get("run", {})}
    return settings
