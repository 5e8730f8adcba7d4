"""``bnwd theory`` (paper_checks.cli.theory_cmd): the report files and the exit status."""

from __future__ import annotations

import json

from bnwd.paper_checks.cli import main
from bnwd.theory import sgd
from bnwd.theory.symbolic import lr, wd


def test_theory_writes_report_and_exits_zero(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["theory", "--only", "loss_invariance,elr_map", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "✓ loss_invariance" in printed and "✓ elr_map" in printed and "2/2 statements verified" in printed
    data = json.loads((out / "theory.json").read_text(encoding="utf-8"))
    assert data["all_verified"] and [s["name"] for s in data["statements"]] == ["loss_invariance", "elr_map"]
    assert (out / "theory.md").read_text(encoding="utf-8").startswith("# bnwd theory")


def test_theory_exits_one_when_a_statement_fails(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sgd, "ELR_AFTER_STEP", sgd.ELR_AFTER_STEP.subs((1 - lr * wd) ** 2, 1))
    assert main(["theory", "--only", "elr_map", "--out", str(tmp_path)]) == 1
    assert "✗ elr_map" in capsys.readouterr().out
    assert json.loads((tmp_path / "theory.json").read_text(encoding="utf-8"))["all_verified"] is False
