"""``bnwd train`` (paper_checks.cli.train_cmd): its files, what it prints, one-line errors."""

from __future__ import annotations

import json

import pytest
from warning_support import toy_run

from bnwd.analysis.early_warning import HORIZON_BAND, MIN_HISTORY, TARGETS
from bnwd.paper_checks.cli import main
from bnwd.paper_checks.cli.printing import REACTIVE_NAMES, early_warning_lines


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
    printed = capsys.readouterr().out
    assert "regime" in printed
    summary = json.loads((out / "summary.json").read_text())
    # 150 steps: too few destabilisations for a score, and the line says so with their number
    assert summary["early_warning"] is None and summary["n_destabilizations"] <= MIN_HISTORY
    n = summary["n_destabilizations"]
    assert f"\nearly warning: not scored ({n} destabilisation{'' if n == 1 else 's'}, fewer than 4: " in printed
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


@pytest.mark.parametrize(("wd", "steps"), [(0.02, 1000), (0.01, 300)])
def test_the_early_warning_lines_state_the_summarys_scores(wd, steps):
    # toy runs with tens of destabilisations: one whose clock cannot match the warning's precision, one that can
    summary = toy_run(wd, steps).summary
    report = summary["early_warning"]
    at = report["by_horizon"]["0.25"]
    warning, clock = at["warning"], at["clock"]
    first, verdict = early_warning_lines(summary)
    assert first.startswith(
        f"early warning (a destabilisation within {warning['horizon']} steps, a quarter of a period, and ≥5 ahead): "
        f"{warning['n_warned']} of {warning['n_destabilizations']} warned, median lead {warning['median_lead']:g} "
        f"steps, precision {warning['precision']:.2f}, {warning['false_alarms_per_1000']:.1f} false alarms per 1000 "
        f"steps; the clock at matched precision vs the warning: F1 {clock['f1']:.2f}"
    )
    assert (" (the most precise clock: none reaches the warning's precision)" in first) is not clock[
        "precision_matched"
    ]
    assert f" vs {warning['f1']:.2f}; reactive detectors on the loss warn " in first
    for rule, score in report["reactive"].items():
        ahead = sum(lead is not None and lead >= 5 for lead in score["lead"])
        assert (f"{REACTIVE_NAMES[rule]} {ahead} of {score['n_destabilizations']}" in first) is (ahead > 0)
        assert f"{REACTIVE_NAMES[rule]} {score['recall']:.0%}" in first
    horizons = [report["by_horizon"][f"{f:g}"] for f in HORIZON_BAND]
    recall = " / ".join(f"{h['warning']['recall']:.2f}" for h in horizons)
    clock_f1 = " / ".join(f"{h['clock']['f1']:.2f}" for h in horizons)
    assert verdict.startswith(
        f"  verdict against the targets (recall ≥ {TARGETS['recall']:g}, precision ≥ {TARGETS['precision']:g}, "
        f"F1 ≥ the clock's + {TARGETS['f1_over_clock']:g}) over horizons of an eighth, a quarter and half of a "
        f"period: {'fragile (' if report['verdict'] == 'fragile' else report['verdict'] + ' them at every one'}"
    )
    assert f"; recall {recall}, precision " in verdict and verdict.endswith(f"vs the clock's {clock_f1}")


def test_the_two_toy_runs_cover_both_clocks_and_both_reactive_outcomes():
    """The cases the test above is meant to exercise, so that a change in the toy does not leave one untested."""
    reports = [toy_run(wd, steps).summary["early_warning"] for wd, steps in [(0.02, 1000), (0.01, 300)]]
    matched = {r["by_horizon"]["0.25"]["clock"]["precision_matched"] for r in reports}
    warned_ahead = {
        any(lead is not None and lead >= 5 for s in r["reactive"].values() for lead in s["lead"]) for r in reports
    }
    assert matched == {True, False} and warned_ahead == {True, False}


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"norm_control": "fixed_norm"}, "ρ is held fixed: η̃ does not grow toward a threshold"),
        ({"norm_control": "fixed_elr"}, "η̃ is held fixed: it does not grow toward a threshold"),
        ({"wd": 0.0}, "λ = 0: η̃ does not grow toward a threshold"),
        ({"momentum": 0.9}, "ηλ > (1 − √β)²: the norm's decay oscillates"),
        ({"steps": 150}, "3 destabilisations, fewer than 4: 3 to learn the threshold from, then one to warn of"),
    ],
)
def test_a_run_without_an_early_warning_score_says_why(options, reason):
    run = {"wd": 0.01, "steps": 300} | options
    summary = toy_run(run.pop("wd"), run.pop("steps"), **run).summary
    assert summary["early_warning"] is None
    assert early_warning_lines(summary) == [f"early warning: not scored ({reason})"]
