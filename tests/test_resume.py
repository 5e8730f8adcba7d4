"""A run folder that knows what it is: the spec in config.json and every checkpoint, resumes that refuse another
run, write failures and interrupts in one line that leave the run resumable (``bnwd train``, ``Trainer``)."""

from __future__ import annotations

import builtins
import dataclasses
import errno
import json
import shutil
from pathlib import Path

import pytest

from bnwd.analysis import records
from bnwd.empirical import checkpoints
from bnwd.empirical import trainer as trainer_module
from bnwd.empirical.checkpoints import CURRENT, load_checkpoint, save_checkpoint
from bnwd.empirical.config import MAY_CHANGE_ON_RESUME, RunSpec, TrainConfig
from bnwd.paper_checks.cli import main

BASE = ["train", "--width", "2", "--lr", "1", "--wd", "0.01", "--batch-size", "64", "--eval-points", "4"]
BASE += ["--train-subset", "256", "--device", "cpu"]


def _train(out: Path, *more: str) -> int:
    return main([*BASE, "--out", str(out), *more])


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory) -> Path:
    """A run of 20 steps with a checkpoint every 10."""
    out = tmp_path_factory.mktemp("resume") / "run"
    assert _train(out, "--steps", "20", "--checkpoint-every", "10") == 0
    return out


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "copy"))


def _errors(capsys) -> list[str]:
    """The lines ``bnwd`` printed on stderr but the progress bar's."""
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("bnwd:")]


def _contents(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_config_json_holds_the_whole_spec_the_numerics_and_the_versions(checkpointed):
    config = json.loads((checkpointed / "config.json").read_text(encoding="utf-8"))
    for f in dataclasses.fields(RunSpec):
        assert f.name in config, f.name
    assert (config["model"], config["width"], config["data"], config["dtype"]) == ("convnet_si", 2, "digits", "float32")
    assert config["numerics"]["device"] == "cpu" and set(config["versions"]) == {"python", "bnwd", "torch", "numpy"}
    state, _ = load_checkpoint(checkpointed)
    assert state["spec"]["width"] == 2 and state["spec"]["train_subset"] == 256 and state["resumes"] == []


@pytest.mark.parametrize(
    ("changed", "field"),
    [
        (["--width", "4"], "width"),
        (["--model", "convnet_si_affine"], "model"),
        (["--data", "synthetic"], "data"),
        (["--dtype", "float64"], "dtype"),
        (["--lr", "0.5"], "lr"),
        (["--wd", "0.02"], "wd"),
        (["--momentum", "0.5"], "momentum"),
        (["--seed", "3"], "seed"),
        (["--batch-size", "32"], "batch_size"),
        (["--augment"], "augment"),
    ],
)
def test_resume_with_another_spec_is_refused_in_one_line_naming_the_field(
    checkpointed, tmp_path, capsys, changed, field
):
    out = _copy(checkpointed, tmp_path)
    before = _contents(out)
    argv = [*BASE, "--steps", "20", "--checkpoint-every", "10", *changed, "--out", str(out), "--resume"]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f" {field} " in err[0] and "may change on resume" in err[0], err
    assert _contents(out) == before  # nothing written, nothing lost


def test_a_checkpoint_beyond_the_steps_asked_for_is_refused(checkpointed, tmp_path, capsys):
    out = _copy(checkpointed, tmp_path)
    capsys.readouterr()
    assert _train(out, "--steps", "15", "--resume") == 2
    assert "checkpoint is at step 20, beyond the 15 steps asked for" in capsys.readouterr().err


def test_extending_a_run_on_resume_is_recorded_and_trains_what_a_longer_run_trains(checkpointed, tmp_path, capsys):
    out = _copy(checkpointed, tmp_path)
    assert _train(out, "--steps", "30", "--checkpoint-every", "5", "--resume") == 0
    assert "resuming from step 20 (checkpoint.pt; steps 20 → 30; checkpoint_every 10 → 5)" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["steps"] == 30 and config["checkpoint_every"] == 5
    changed = {"steps": [20, 30], "checkpoint_every": [10, 5]}
    assert config["resumes"] == [{"step": 20, "checkpoint": CURRENT, "changed": changed}]
    assert set(changed) <= set(MAY_CHANGE_ON_RESUME)
    straight = tmp_path / "straight"
    assert _train(straight, "--steps", "30") == 0
    assert (out / "series.jsonl").read_bytes() == (straight / "series.jsonl").read_bytes()


def test_a_checkpoint_from_before_specs_is_checked_against_config_json(checkpointed, tmp_path, capsys):
    out = _copy(checkpointed, tmp_path)
    state, _ = load_checkpoint(out)
    save_checkpoint(out, {k: v for k, v in state.items() if k not in ("spec", "resumes")})
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    old = {
        k: v for k, v in config.items() if k in train_fields or k not in {f.name for f in dataclasses.fields(RunSpec)}
    }
    (out / "config.json").write_text(json.dumps(old), encoding="utf-8")  # as written before: no model, width, ...
    capsys.readouterr()
    assert _train(out, "--steps", "20", "--checkpoint-every", "10", "--lr", "0.5", "--resume") == 2
    assert "lr 1.0 (now 0.5)" in capsys.readouterr().err
    assert _train(out, "--steps", "20", "--checkpoint-every", "10", "--width", "4", "--resume") == 2
    assert "its weights do not fit this model and optimizer (Error(s) in loading" in capsys.readouterr().err


def test_resume_without_a_checkpoint_says_it_starts_over(tmp_path, capsys):
    assert _train(tmp_path / "new", "--steps", "5", "--resume") == 0
    assert f"no checkpoint in {tmp_path / 'new'}: starting from step 0" in capsys.readouterr().out


def test_training_over_checkpoints_without_resume_says_so(checkpointed, tmp_path, capsys):
    out = _copy(checkpointed, tmp_path)
    assert _train(out, "--steps", "5") == 0
    assert "holds checkpoints of an earlier run: starting over" in capsys.readouterr().out


def _fail_at_step(monkeypatch, step: int, error: BaseException) -> None:
    """Make the trainer raise ``error`` after the update of ``step``."""
    end_step = trainer_module.Trainer._end_step

    def failing(self, *args):
        end_step(self, *args)
        if self.step == step + 1:
            raise error

    monkeypatch.setattr(trainer_module.Trainer, "_end_step", failing)


def test_an_interrupt_says_where_resume_goes_on_and_resume_ends_as_the_straight_run(
    checkpointed, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "interrupted"
    with monkeypatch.context() as patch:
        _fail_at_step(patch, 14, KeyboardInterrupt())
        assert _train(out, "--steps", "20", "--checkpoint-every", "10") == 130
    err = _errors(capsys)
    assert err == ["bnwd: interrupted at step 15; --resume continues from step 10"]
    assert _train(out, "--steps", "20", "--checkpoint-every", "10", "--resume") == 0
    for name in ("series.jsonl", "eval.jsonl", "summary.json"):
        assert (out / name).read_bytes() == (checkpointed / name).read_bytes(), name


def test_an_interrupt_before_any_checkpoint_says_resume_starts_over(tmp_path, capsys, monkeypatch):
    _fail_at_step(monkeypatch, 3, KeyboardInterrupt())
    assert _train(tmp_path / "run", "--steps", "20") == 130
    assert "interrupted at step 4; no checkpoint was written, so --resume starts over" in capsys.readouterr().err


def test_a_full_disk_at_a_checkpoint_is_one_line_no_temporary_file_and_resumable(
    checkpointed, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "full"
    opened = []

    def open_then_full(path, mode):  # the second checkpoint's file fills the disk halfway through
        opened.append(path)
        if len(opened) == 2:
            with builtins.open(path, mode) as stream:
                stream.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return builtins.open(path, mode)

    with monkeypatch.context() as patch:
        patch.setattr(checkpoints, "open", open_then_full, raising=False)
        assert _train(out, "--steps", "20", "--checkpoint-every", "10") == 2
    err = _errors(capsys)
    assert len(err) == 1 and "(No space left on device) at step 20; --resume continues from step 10" in err[0], err
    assert not list(out.glob("*.tmp"))
    assert _train(out, "--steps", "20", "--checkpoint-every", "10", "--resume") == 0
    for name in ("series.jsonl", "eval.jsonl", "summary.json"):
        assert (out / name).read_bytes() == (checkpointed / name).read_bytes(), name


def test_no_room_for_a_checkpoint_fails_before_the_first_step(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(records.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(1, 1, 1000))
    assert _train(tmp_path / "run", "--steps", "20", "--checkpoint-every", "10") == 2
    err = _errors(capsys)
    assert len(err) == 1 and "No space left on device: " in err[0] and "MiB needed, 0.0 MiB free" in err[0], err
    assert "at step 0" in err[0] and not (tmp_path / "run" / "series.jsonl").exists()


def test_an_out_folder_without_write_permission_fails_before_the_work(tmp_path, capsys, monkeypatch):
    def refused(**_):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(records.tempfile, "TemporaryFile", refused)
    assert _train(tmp_path / "run", "--steps", "20") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bnwd: error: --out {tmp_path / 'run'}: cannot write in that folder (Permission denied)"]


def test_a_failed_atomic_write_keeps_the_file_before_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = records.write_json(tmp_path / "a.json", {"x": 1})

    def refused(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(records.os, "replace", refused)
    with pytest.raises(OSError, match="No space left"):
        records.write_json(path, {"x": 2})
    assert json.loads(path.read_text(encoding="utf-8")) == {"x": 1} and [p.name for p in tmp_path.iterdir()] == [
        "a.json"
    ]


def test_a_write_failure_in_any_command_is_one_line(tmp_path, capsys, monkeypatch):
    from bnwd.paper_checks.cli import theory_cmd

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "report.md"))

    monkeypatch.setattr(theory_cmd, "run", full)
    assert main(["theory", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"bnwd: error: {tmp_path / 'report.md'}: No space left on device\n"


def test_every_spec_field_changed_on_resume_is_refused_unless_it_may_change(checkpointed, tmp_path):
    """Each field of RunSpec, changed alone in the checkpoint's spec: refused naming it, or recorded as changed."""
    from bnwd.empirical.runs import build_trainer

    state, _ = load_checkpoint(checkpointed)
    spec = RunSpec(**state["spec"])
    trainer = build_trainer(spec, tmp_path)
    for f in dataclasses.fields(RunSpec):
        written = {**state["spec"], f.name: "another value"}
        if f.name in MAY_CHANGE_ON_RESUME:
            changed = trainer._changed_since({**state, "spec": written})
            assert changed == {f.name: ["another value", getattr(spec, f.name)]}
        else:
            with pytest.raises(ValueError, match=f"its checkpoint has {f.name} 'another value'"):
                trainer._changed_since({**state, "spec": written})
