"""``bnwd check`` (paper_checks.cli.check_cmd): one-line usage errors, the GPU refusal, the verdict files."""

from __future__ import annotations

import json

import pytest
import torch

from bnwd.paper_checks import cli


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--claims", "C11"], "unknown claim(s) C11"),
        (["check", "--claims", ","], "(none given)"),
        (["check", "--scale", "huge"], "invalid choice"),
        (["check", "--scale", "paper", "--device", "cpu"], "--data-dir"),
    ],
)
def test_check_usage_errors_are_one_line(tmp_path, capsys, argv, message):
    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_paper_scale_without_a_gpu_is_refused(tmp_path, capsys):
    assert cli.main(["check", "--scale", "paper", "--out", str(tmp_path)]) == cli.EXIT_USAGE
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_check_writes_verdicts_and_exit_status(tmp_path, capsys):
    out = tmp_path / "check"
    status = cli.main(["check", "--claims", "C9", "--scale", "tiny", "--quiet", "--out", str(out)])
    written = json.loads((out / "verdicts.json").read_text())
    assert written["scale"] == "tiny" and [v["claim"] for v in written["verdicts"]] == ["C9"]
    verdict = written["verdicts"][0]
    assert status == (0 if verdict["passed"] else cli.EXIT_FAILED) and written["passed"] == verdict["passed"]
    assert verdict["tolerance"] and verdict["numbers"] and verdict["seconds"] > 0
    assert (out / verdict["figure"]).is_file()
    printed = capsys.readouterr().out
    assert "C9" in printed and verdict["summary"] in printed
