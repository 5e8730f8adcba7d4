"""``bnwd demo`` (paper_checks.demo): a report from its own runs."""

from __future__ import annotations

import json

import pytest

from bnwd import theory
from bnwd.paper_checks.demo import DemoPlan, run_demo


@pytest.mark.slow
def test_demo_writes_a_report_from_its_own_runs(tmp_path, monkeypatch):
    # Two quick statements stand in for the 24 (proving all takes ~45 s; `bnwd theory` is tested elsewhere).
    monkeypatch.setattr(theory, "STATEMENTS", theory.STATEMENTS[:2])
    plan = DemoPlan(real_wd=(0.01, 0.03), real_steps=120, width=2, sim_lr=(1.0,), sim_wd=(0.01, 0.03), sim_steps=800)
    report = run_demo(tmp_path, plan, device="cpu", progress=False, say=lambda _: None)
    text = report.read_text()
    for figure in ("four_panels.png", "period_vs_etalambda.png"):
        assert f"]({figure})" in text and (tmp_path / figure).stat().st_size > 10_000
    rows = json.loads((tmp_path / "simulate" / "summary.json").read_text())["rows"]
    assert len(rows) == 2 and "2 of 2 statements verified" in text
    for run_dir in (tmp_path / "runs").iterdir():
        summary = json.loads((run_dir / "summary.json").read_text())
        assert f"| {summary['n_destabilizations']} |" in text
