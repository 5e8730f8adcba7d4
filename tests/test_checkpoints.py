"""Long runs: records streamed out of memory, checkpoints that survive kills and damage, weights-only loading."""

from __future__ import annotations

import runpy
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bnwd.empirical import monitor as empirical_monitor
from bnwd.empirical import record_stream
from bnwd.empirical.checkpoints import CURRENT, PREVIOUS, load_checkpoint, save_checkpoint
from bnwd.empirical.runs import RunSpec, build_trainer
from bnwd.paper_checks.cli import main

SPEC = RunSpec(width=2, train_subset=128, batch_size=32, lr=1.0, wd=0.01, steps=40, eval_points=4, device="cpu")


KILL_RESUME = Path(__file__).resolve().parents[1] / "benchmarks" / "kill_resume.py"


def test_records_leave_memory_for_the_stream_as_the_run_goes(tmp_path, monkeypatch):
    monkeypatch.setattr(record_stream, "STREAM_CHUNK", 16)
    trainer = build_trainer(replace(SPEC, steps=200), tmp_path)
    in_memory = []
    trainer.run(progress=False, after_step=lambda step: in_memory.append(len(trainer.monitor.record_stream.in_memory)))
    # one chunk plus one transfer's worth at most, whatever the length of the run
    assert max(in_memory) < 16 + empirical_monitor.SYNC_EVERY
    lines = (tmp_path / "series.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 200 and [r["step"] for r in trainer.series] == list(range(200))


@pytest.mark.slow
def test_runs_killed_anywhere_resume_to_the_same_files_byte_for_byte(tmp_path):
    # benchmarks/kill_resume.py runs 24 such trials; here one of each fault
    results = runpy.run_path(str(KILL_RESUME))["run_trials"](4, 60, seed=1, folder=tmp_path)
    assert all(r["interrupted"] for r in results)
    for r in results:
        assert r["series.jsonl"] and r["eval.jsonl"] and r["summary.json"], r


class _Crash(Exception):
    pass


def _checkpointed(folder: Path, crash_after: int | None = None):
    """SPEC with a checkpoint every 10 steps, crashed after step ``crash_after`` (None: run to the end)."""

    def crash(step: int) -> None:
        if step == crash_after:
            raise _Crash

    try:
        build_trainer(replace(SPEC, checkpoint_every=10), folder).run(progress=False, after_step=crash)
    except _Crash:
        pass


@pytest.mark.parametrize("damage", ["cut in half", "one byte changed", "missing"])
def test_a_damaged_checkpoint_gives_way_to_the_previous_one(tmp_path, damage):
    _checkpointed(tmp_path / "straight")
    _checkpointed(tmp_path / "broken", crash_after=33)  # checkpoints after 10, 20 and 30 steps
    path = tmp_path / "broken" / CURRENT
    data = path.read_bytes()
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(data[: len(data) // 2] if damage == "cut in half" else data[:100] + b"\0" + data[101:])
    resumed = build_trainer(replace(SPEC, checkpoint_every=10), tmp_path / "broken")
    assert resumed.resume() and resumed.step == 20 and resumed.resumed_from.name == PREVIOUS
    resumed.run(progress=False)
    for name in ("series.jsonl", "eval.jsonl", "summary.json"):
        assert (tmp_path / "broken" / name).read_bytes() == (tmp_path / "straight" / name).read_bytes(), name


def test_every_checkpoint_damaged_is_one_clear_line(tmp_path, capsys):
    _checkpointed(tmp_path, crash_after=25)
    for name in (CURRENT, PREVIOUS):
        (tmp_path / name).write_bytes((tmp_path / name).read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"checkpoint\.pt and checkpoint\.prev\.pt damaged"):
        build_trainer(SPEC, tmp_path).resume()
    argv = ["train", "--width", "2", "--lr", "1", "--wd", "0.01", "--out", str(tmp_path), "--resume", "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "damaged" in err[0]


class _Payload:
    def __reduce__(self):
        return (print, ("this would run on resume",))


def test_a_checkpoint_that_would_run_code_is_refused_not_loaded(tmp_path):
    save_checkpoint(tmp_path, {"step": 1, "payload": _Payload()})
    with pytest.raises(ValueError, match="damaged"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path, {"step": 2, "weights": torch.ones(3)})  # plain values and tensors load
    state, path = load_checkpoint(tmp_path)
    assert state["step"] == 2 and path.name == CURRENT and torch.equal(state["weights"], torch.ones(3))
