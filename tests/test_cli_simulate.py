"""``bnwd simulate`` (paper_checks.cli.simulate_cmd): its files and one-line errors."""

from __future__ import annotations

import json

import pytest

from bnwd.paper_checks.cli import main


def test_bnwd_simulate_writes_summary_plot_and_series(tmp_path, capsys):
    out = tmp_path / "sim"
    argv = ["simulate", "--lr", "1,2", "--wd", "0.005,0.01", "--steps", "3000", "--dim", "16", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "slope of log frequency vs log ηλ" in printed
    summary = json.loads((out / "summary.json").read_text())
    keys = {
        "lr",
        "wd",
        "momentum",
        "regime",
        "n_destabilizations",
        "period_measured",
        "period_predicted",
        "relative_error",
    }
    assert len(summary["rows"]) == 4 and all(keys <= set(row) for row in summary["rows"])
    assert {"slope", "slope_ci", "n_points"} <= set(summary["frequency_slope"])
    assert (out / "period_vs_etalambda.png").stat().st_size > 10_000
    assert len(list((out / "series").glob("*.csv"))) == 4


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bnwd_simulate_mlp_runs_the_batchnorm_mlp_on_digits(tmp_path, capsys, dtype):
    out = tmp_path / "mlp"
    argv = ["simulate", "--model", "mlp", "--width", "8", "--depth", "2", "--batch-size", "64", "--lr", "1"]
    argv += ["--dtype", dtype]
    assert main([*argv, "--wd", "0.01,0.02", "--steps", "300", "--out", str(out)]) == 0
    assert "slope of log frequency vs log ηλ" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "mlp" and len(summary["rows"]) == 2
    assert all(row["steps_trained"] == 300 for row in summary["rows"])


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--lr", ""], "needs one or more numbers"),
        (["--lr", "0,1"], "each must be finite and > 0"),
        (["--lr", "abc"], "not a comma-separated list"),
        (["--lr", "1", "--wd", "2"], "lr * wd must be < 1"),
        (["--model", "nope"], "invalid choice"),
        (["--steps", "0"], "must be an integer >= 1"),
        (["--momentum", "1"], "each must be finite and in [0, 1)"),
        (["--noise", "-1"], "must be finite and >= 0"),
        (["--noise", "1,2"], "not a number"),
        (["--si-norm0", "0"], "must be finite and > 0"),
        (["--model", "mlp", "--batch-size", "1"], "batch_size must be an integer >= 2"),
        (["--model", "mlp", "--batch-size", "5000"], "batch_size must be at most n_samples=1797"),
        (["--model", "mlp", "--width", "0"], "must be an integer >= 1"),
        (["--model", "mlp", "--dtype", "float16"], "invalid choice"),
    ],
)
def test_bnwd_simulate_bad_input_is_one_line_exit_two(argv, fragment, tmp_path, capsys):
    assert main(["simulate", *argv, "--out", str(tmp_path / "never")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and fragment in captured.err
    assert not (tmp_path / "never").exists()
