"""``bnwd demo`` (paper_checks.demo): a report from its own runs."""

from __future__ import annotations

import json

import pytest
from warning_support import toy_run

from bnwd import theory
from bnwd.paper_checks.demo import DemoPlan, early_warning_table, run_demo


@pytest.mark.slow
def test_demo_writes_a_report_from_its_own_runs(tmp_path, monkeypatch):
    # Two quick statements stand in for the 24 (proving all takes ~45 s; `bnwd theory` is tested elsewhere).
    monkeypatch.setattr(theory, "STATEMENTS", theory.STATEMENTS[:2])
    plan = DemoPlan(real_wd=(0.01, 0.03), real_steps=120, width=2, sim_lr=(1.0,), sim_wd=(0.01, 0.03), sim_steps=800)
    report = run_demo(tmp_path, plan, device="cpu", progress=False, say=lambda _: None)
    text = report.read_text()
    for figure in ("four_panels.png", "period_vs_etalambda.png", "early_warning.png"):
        assert f"]({figure})" in text and (tmp_path / figure).stat().st_size > 10_000
    rows = json.loads((tmp_path / "simulate" / "summary.json").read_text())["rows"]
    assert len(rows) == 2 and "2 of 2 statements verified" in text
    warning_rows = text.split("## 4. Early warning", 1)[1].split("| ηλ | destabilisations scored |", 1)[1]
    warning_rows = [line for line in warning_rows.splitlines()[2:] if line.startswith("|")]
    assert len(warning_rows) == 2
    for run_dir in (tmp_path / "runs").iterdir():
        summary = json.loads((run_dir / "summary.json").read_text())
        assert f"| {summary['n_destabilizations']} |" in text
        # the run's row in the early warning's table: its verdict, or why it has none
        (row,) = [r for r in warning_rows if r.startswith(f"| {summary['lr_wd']:g} |")]
        report = summary["early_warning"]
        if report is None:
            assert "| — | — | — | — | — | — | not scored: " in row
        else:
            scored = report["by_horizon"]["0.25"]["warning"]["n_destabilizations"]
            assert row.startswith(f"| {summary['lr_wd']:g} | {scored} | ") and row.endswith(f" | {report['verdict']} |")


def test_the_early_warning_table_states_each_runs_scores_or_why_it_has_none():
    scored, short = toy_run(0.02, 1000).summary, toy_run(0.01, 150).summary
    header, rule, *rows = early_warning_table([scored, short])
    assert header.count("|") == rule.count("|") == rows[0].count("|") == rows[1].count("|") == 9
    at = scored["early_warning"]["by_horizon"]["0.25"]
    warning, clock = at["warning"], at["clock"]
    assert rows[0].split(" | ") == [
        "| 0.02",
        str(warning["n_destabilizations"]),
        str(warning["n_warned"]),
        f"{warning['median_lead']:g}",
        f"{warning['precision']:.2f}",
        f"{warning['false_alarms_per_1000']:.1f}",
        # no clock is as precise, here
        f"{clock['f1']:.2f} (the most precise clock: none reaches the warning's precision) vs {warning['f1']:.2f}",
        f"{scored['early_warning']['verdict']} |",
    ]
    assert short["early_warning"] is None
    assert (
        rows[1] == "| 0.01 | — | — | — | — | — | — | not scored: 3 destabilisations, fewer than 4: 3 to learn the "
        "threshold from, then one to warn of |"
    )
