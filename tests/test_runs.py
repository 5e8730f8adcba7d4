"""empirical.runs: the run id, building a run from its spec, and training it once."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bnwd.analysis.records import write_json
from bnwd.empirical.runs import RunSpec, build_trainer, read_run, run_id, spec_steps, train_run

TINY = RunSpec(lr=1.0, wd=0.01, steps=30, width=2, train_subset=64, batch_size=32, eval_points=3, device="cpu")

# Values that differ from TINY's for each hashed field.
CHANGES = {
    "lr": 0.5,
    "wd": 0.02,
    "steps": 31,
    "momentum": 0.9,
    "batch_size": 16,
    "noninv_lr": 0.1,
    "fix_norm": 0.0,
    "fix_elr": 0.1,
    "full_batch": True,
    "augment": True,
    "seed": 1,
    "eval_points": 4,
    "sharpness_every": 5,
    "batch_sharpness_every": 3,
    "model": "convnet_si_affine",
    "width": 3,
    "data": "synthetic",
    "data_dir": "/tmp",
    "train_subset": 65,
    "init_scale": 5.0,
    "epochs": 2,
    "dtype": "float64",
    "allow_tf32": True,
}


def test_every_field_is_hashed_or_deliberately_not():
    not_hashed = {"device": "cuda", "checkpoint_every": 7, "channels_last": True}
    assert set(CHANGES) | set(not_hashed) == {f.name for f in dataclasses.fields(RunSpec)}
    for name, value in not_hashed.items():
        assert run_id(TINY.replace(**{name: value})) == run_id(TINY)


@settings(max_examples=25)
@given(name=st.sampled_from(sorted(CHANGES)))
def test_changing_a_hashed_field_changes_the_id(name):
    other = TINY.replace(**{name: CHANGES[name]})
    assert run_id(other) != run_id(TINY)
    assert run_id(other) == run_id(TINY.replace(**{name: CHANGES[name]}))  # and it is a function of the spec


def test_id_is_stable_across_processes():
    # The id is a SHA-256 of sorted JSON: pinned here so that a change in the scheme cannot go unnoticed (it would
    # orphan every finished run of every sweep).
    assert run_id(RunSpec(lr=1.0, wd=0.01)) == run_id(RunSpec(wd=0.01, lr=1.0))
    assert len(run_id(TINY)) == 12 and int(run_id(TINY), 16) >= 0
    # a field added later and left off is not in the hash: the runs from before it keep their ids
    before = {k: v for k, v in dataclasses.asdict(TINY).items() if k not in ("device", "checkpoint_every")}
    before = {k: v for k, v in before.items() if k not in ("channels_last", "batch_sharpness_every", "allow_tf32")}
    assert run_id(TINY) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:12]


def test_train_run_trains_once_then_reads_back(tmp_path):
    out = tmp_path / run_id(TINY)
    train_run(TINY, out)
    run = read_run(out)
    assert run.summary["steps_trained"] == TINY.steps == run.steps.size
    written = json.loads((out / "spec.json").read_text())
    assert written["run_id"] == run_id(TINY) and written["lr"] == TINY.lr
    stamp = (out / "series.jsonl").stat().st_mtime_ns
    train_run(TINY, out)
    assert (out / "series.jsonl").stat().st_mtime_ns == stamp  # nothing retrained
    # what is read back is what the trainer wrote: the same summary, NaN as null
    assert write_json(tmp_path / "again.json", run.summary).read_text() == (out / "summary.json").read_text()


def test_train_run_resumes_an_unfinished_run_bit_for_bit(tmp_path):
    spec = TINY.replace(checkpoint_every=10)
    train_run(spec, tmp_path / "whole")
    # Interrupted after its step-20 checkpoint: the summary is missing, the checkpoint and the stream are there.
    partial = tmp_path / "partial"
    train_run(spec.replace(steps=20), tmp_path / "first_part")
    partial.mkdir()
    for name in ("checkpoint.pt", "series.jsonl"):
        (partial / name).write_bytes((tmp_path / "first_part" / name).read_bytes())
    (partial / "spec.json").write_text(json.dumps({"run_id": run_id(spec)}))
    train_run(spec, partial)
    for name in ("series.jsonl", "summary.json"):
        assert (partial / name).read_text() == (tmp_path / "whole" / name).read_text()


def test_a_folder_of_another_run_is_refused(tmp_path):
    train_run(TINY, tmp_path)
    with pytest.raises(ValueError, match="holds run"):
        train_run(TINY.replace(lr=0.5), tmp_path)


def test_epochs_and_subset(tmp_path):
    for spec in (
        TINY.replace(epochs=3, steps=1),
        TINY.replace(epochs=3, full_batch=True),
        TINY.replace(epochs=2, train_subset=None),
    ):
        trainer = build_trainer(spec, tmp_path)
        # a plan counts the steps before any data is read, and counts what the trainer will train
        assert trainer.config.steps == spec_steps(spec)
    assert spec_steps(TINY.replace(epochs=3, steps=1)) == 3 * 2  # 64 samples, batches of 32
    assert spec_steps(TINY.replace(epochs=3, full_batch=True)) == 3
    assert spec_steps(TINY.replace(epochs=2, train_subset=None)) == 2 * 45  # 1437 digits, batches of 32
    # the paper's run: CIFAR-10, batch 128, 1001 epochs of 391 steps
    assert spec_steps(RunSpec(lr=0.03, wd=1e-3, data="cifar10", batch_size=128, epochs=1001)) == 391_391


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"device": "tpu"}, "device must be"),
        ({"dtype": "float16"}, "dtype must be"),
        ({"train_subset": 0}, "train_subset must be an integer >= 1"),
        ({"train_subset": 10_000}, "train_subset must be in 1..1437"),
        ({"epochs": 0}, r"epochs must be an integer in \[1, 2\*\*53\]"),
        ({"model": "mlp"}, "mlp"),
        ({"data": "cifar10"}, "cifar10"),
    ],
)
def test_bad_specs_are_refused_with_a_reason(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        build_trainer(TINY.replace(**change), tmp_path)


def test_cuda_numerics_are_strict_float32_unless_tf32_is_asked_for(monkeypatch):
    from bnwd.empirical.runs import cuda_numerics

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark, cudnn.deterministic)
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        strict = cuda_numerics()
        assert strict["float32"] == "strict" and strict["cublas_workspace_config"] == ":4096:8"
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.are_deterministic_algorithms_enabled()
        assert cuda_numerics(allow_tf32=True)["float32"] == "tf32" and torch.backends.cuda.matmul.allow_tf32
    finally:
        matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark, cudnn.deterministic = saved
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])


def test_config_records_the_numerics(tmp_path):
    spec = RunSpec(width=2, train_subset=64, batch_size=64, lr=0.5, wd=0.01, steps=2, eval_points=0, device="cpu")
    build_trainer(spec, tmp_path).run(progress=False)
    assert json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))["numerics"] == {
        "device": "cpu",
        "float32": "strict",
    }
