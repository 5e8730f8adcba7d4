"""``bnwd train`` (paper_checks.cli.train_cmd): its files, what it prints, one-line errors."""

from __future__ import annotations

import json

import pytest

from bnwd.paper_checks.cli import main


def test_bnwd_train_writes_its_files(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train",
        "--lr",
        "1.0",
        "--wd",
        "0.01",
        "--steps",
        "150",
        "--batch-size",
        "128",
        "--channels-last",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert "regime" in capsys.readouterr().out
    series = [json.loads(line) for line in (out / "series.jsonl").read_text().splitlines()]
    assert len(series) == 150 and {"step", "loss", "acc", "si_norm", "elr", "eff_grad_norm", "angular_update"} <= set(
        series[0]
    )
    evals = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    assert evals[0]["step"] == 0 and evals[-1]["step"] == 150 and "test_acc" in evals[-1]
    assert {"regime", "n_destabilizations", "periods"} <= set(json.loads((out / "summary.json").read_text()))
    assert json.loads((out / "config.json").read_text())["si_groups"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--lr", "0", "--wd", "0.01"], "must be finite and > 0"),
        (["--lr", "1", "--wd", "-1"], "must be finite and >= 0"),
        (["--lr", "1", "--wd", "0.01", "--model", "vgg"], "invalid choice"),
        (["--lr", "1", "--wd", "0.01", "--width", "0"], "must be an integer in [1, 1024]"),
        (["--lr", "1", "--wd", "0.01", "--batch-size", "100000"], "larger than"),
        (["--lr", "1", "--wd", "0.01", "--steps", "5", "--epochs", "2"], "not allowed with"),
        (["--lr", "1", "--wd", "0.01", "--data", "cifar10", "--data-dir", "/nonexistent"], "cifar"),
    ],
)
def test_bnwd_train_bad_input(argv, fragment, tmp_path, capsys):
    assert main(["train", *argv, "--out", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and fragment in captured.err.lower()


def test_bnwd_train_epochs_count_passes_over_the_data(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--lr", "1.0", "--wd", "0.01", "--epochs", "2", "--batch-size", "512", "--out", str(out)]
    assert main(argv) == 0
    assert len((out / "series.jsonl").read_text().splitlines()) == 2 * 3  # 1437 samples: 3 batches of <= 512


def test_bnwd_train_prints_elr_times_sharpness_before_each_destabilisation(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--lr", "1.0", "--wd", "0.02", "--steps", "90", "--batch-size", "64", "--width", "2"]
    assert main([*argv, "--sharpness-every", "10", "--train-subset", "256", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = capsys.readouterr().out.split("value\n", 1)[1].splitlines()[: summary["n_destabilizations"]]
    assert summary["events"], "no destabilisation: the table is not exercised"
    for row, found in zip(rows, summary["elr_times_sharpness_before_destabilization"], strict=True):
        cells = row.split()
        assert int(cells[0]) == found["event"]
        assert cells[-2:] == [str(found["last_measured_at"]), f"{found['last']:.4g}"]
