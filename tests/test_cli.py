"""The ``bnwd`` command line: output files, exit codes, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from paper_checks.cli import main
from theory import sgd
from theory.symbolic import lr, wd


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


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "required"),
        (["bogus"], "invalid choice"),
        (["theory", "--bogus"], "unrecognized arguments"),
        (["theory", "--only", "no_such_statement"], "unknown statement(s) no_such_statement"),
        (["theory", "--only", ","], "(none given)"),
    ],
)
def test_bad_arguments_print_one_line_and_exit_two(argv, fragment, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("bnwd: error: ") and fragment in captured.err


def test_unwritable_out_is_a_usage_error_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["theory", "--out", str(blocker / "sub")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "cannot create that folder" in captured.err


def test_console_entry_point_never_shows_a_traceback():
    done = subprocess.run(
        [sys.executable, "-m", "paper_checks.cli", "theory", "--only"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
