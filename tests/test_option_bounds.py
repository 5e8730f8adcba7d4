"""Every option of a run bounded by its meaning: one line, exit 2, before any work (issue 31, item 4)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bnwd.analysis.regimes import classify, screen
from bnwd.empirical.config import INITIAL_NORM, RunSpec
from bnwd.empirical.data import DataError, load_dataset
from bnwd.empirical.runs import run_id
from bnwd.empirical.sweep import open_client
from bnwd.paper_checks.cli import main

TINY = ["--lr", "1", "--wd", "0", "--steps", "20", "--width", "2", "--device", "cpu"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--eval-points", "1000000000"], "eval_points must be at most max(steps + 1, 20) = 21"),
        (["--fix-norm", "0"], "argument --fix-norm: must be finite and > 0: '0'"),
        (["--seed", "-1"], "argument --seed: must be an integer in [0, 2**32): '-1'"),
        (["--seed", str(10**23)], "argument --seed: must be an integer in [0, 2**32)"),
        (["--data-dir", "/nonexistent"], "digits reads no files: data_dir /nonexistent is not used"),
        (["--steps", "1" + "0" * 400], "argument --steps: must be an integer in [1, 2**53]"),
        (["--init-scale", "1e308"], "argument --init-scale: must be finite and in (0, 1e18]"),
        (["--width", "100000"], "argument --width: must be an integer in [1, 1024]"),
    ],
)
def test_train_refuses_an_option_beyond_its_meaning_in_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main(["train", *TINY, *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_the_bare_fix_norm_flag_still_means_the_initial_norm_and_keeps_its_run_id():
    args = ["--lr", "1", "--wd", "0"]
    from bnwd.paper_checks.cli import build_parser
    from bnwd.paper_checks.cli.options import spec_values

    spec = RunSpec(**spec_values(build_parser().parse_args(["train", *args, "--fix-norm"])))
    assert spec.fix_norm == INITIAL_NORM
    assert run_id(spec) == "80793d31d82f"  # the id this spec had before INITIAL_NORM was named
    with pytest.raises(ValueError, match="fix_norm must be finite and > 0"):
        RunSpec(lr=1, wd=0, fix_norm=-1.0)


@given(seed=st.integers(0, 2**32 - 1))
def test_every_allowed_seed_is_valid_for_the_split_and_the_augmentation(seed):
    import torch
    from sklearn.utils import check_random_state

    RunSpec(lr=1, wd=0, seed=seed)
    check_random_state(seed)
    torch.Generator().manual_seed(seed * 1_000_003 + 2**53)  # the trainer's augmentation seed at the last step


def test_eval_points_are_bounded_by_the_steps_epochs_included():
    RunSpec(lr=1, wd=0, steps=5)  # the default 20 stays allowed for short runs
    RunSpec(lr=1, wd=0, steps=20, eval_points=21)
    with pytest.raises(ValueError, match="at most max"):
        RunSpec(lr=1, wd=0, steps=20, eval_points=22)
    RunSpec(lr=1, wd=0, epochs=1, eval_points=1000)  # its steps are known once the data is: build_trainer checks


@pytest.mark.parametrize("name", ["digits", "synthetic"])
def test_a_data_set_that_reads_no_files_refuses_a_data_dir(name, tmp_path):
    with pytest.raises(DataError, match=f"{name} reads no files: data_dir"):
        load_dataset(name, data_dir=tmp_path, synthetic_size=(4, 2))


def test_a_refused_scheduler_connection_fails_at_once():
    started = time.perf_counter()
    with pytest.raises(OSError, match="refused"), open_client("tcp://127.0.0.1:1", timeout=30):
        pass
    assert time.perf_counter() - started < 5  # it waited its full 30 s before


def test_the_analogue_refusal_states_the_steps_asked_for(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["analogue", "--steps", "12", "--out", str(tmp_path / "a")]) == 2
    assert "four ConvNetSI c=32 runs of 12 steps and needs a CUDA GPU" in capsys.readouterr().err


def test_a_run_whose_weights_never_move_is_static_not_failed():
    rng = np.random.default_rng(0)
    series = {"elr": np.full(40, 1e-301), "angular_update": np.zeros(40), "loss": 7 + rng.random(40)}
    regime, evidence = classify(series, [], lr=1e-300, wd=0.01)
    assert regime == "static" and "η̃ = 1e-301 is too small to change them in 40 steps" in evidence["rule"]
    series["angular_update"] = np.full(40, 1e-3)  # the control: a moving run with that loss has failed
    assert classify(series, [], lr=1e-300, wd=0.01)[0] == "failed"


def test_a_diverged_run_names_its_divergence():
    _, reason, diverged = screen({"si_norm": [3.0, np.inf, np.nan], "loss": [2.0, 5.0, np.nan]})
    assert diverged == 1
    assert reason == "diverged at sample 1: ρ non-finite from there on (1 finite samples; at least 8 are needed)"
