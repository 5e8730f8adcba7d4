"""``bnwd analogue`` (paper_checks.analogue): the four learning rates trained together and drawn; bad input."""

from __future__ import annotations

import json

import pytest
import torch

from bnwd.paper_checks import cli


def test_analogue_trains_the_four_learning_rates_together_and_draws_them(tmp_path, capsys):
    """Fashion-MNIST stand-in files (the IDX format, 300 random images): the command's whole path in seconds."""
    from test_data import write_idx_set

    write_idx_set(tmp_path / "fm", n_train=300, n_test=50)
    out = tmp_path / "out"
    argv = ["analogue", "--data-dir", str(tmp_path / "fm"), "--device", "cpu", "--steps", "12", "--width", "2"]
    assert cli.main([*argv, "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ANALOGUE" in printed and "not a reproduction" in printed and (out / "figure2.png").is_file()
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 4
    configs = [json.loads((run / "config.json").read_text()) for run in runs]
    assert sorted(c["lr"] for c in configs) == [0.001, 0.01, 0.03, 1.0]
    assert all(c["wd"] == 1e-3 and c["batch_size"] == 128 and len(c["trained_together_with"]) == 3 for c in configs)
    # a second call reads the finished runs back and trains nothing
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("series.jsonl")}
    assert cli.main([*argv, "--quiet", "--out", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("series.jsonl")} == mtimes


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["analogue", "--device", "cpu", "--data-dir", "/nonexistent"], "/nonexistent"),
        (["analogue", "--steps", "0"], "--steps"),
    ],
)
def test_analogue_bad_input_is_one_line(tmp_path, capsys, argv, message):
    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_analogue_without_a_gpu_is_refused(tmp_path, capsys):
    assert cli.main(["analogue", "--out", str(tmp_path / "out")]) == cli.EXIT_USAGE
    assert "needs a CUDA GPU" in capsys.readouterr().err and not (tmp_path / "out").exists()
