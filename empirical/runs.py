"""A training run as one flat, hashable record: build it, train it, find its results again.

:class:`RunSpec` holds everything that decides a run's numbers (model, data, every :class:`TrainConfig` field);
:func:`run_id` hashes it, so that sweeps and checks can put each run in ``<root>/<run_id>/`` and skip or resume it
later. :func:`train_run` is the one way to execute a spec (``bnwd train``, ``bnwd sweep`` and the paper checks), and
:func:`train_runs` the way to execute several, those that can be trained together (:mod:`empirical.batched`) in one
computation; :func:`read_run` reads a finished run folder back, its summary computed from its records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from bnwd.analysis.destabilization import DEFAULT_SETTINGS
from bnwd.analysis.records import read_jsonl, series_arrays
from bnwd.analysis.summary import summarize_records
from bnwd.empirical.batched import train_together
from bnwd.empirical.config import RunSpec, TrainConfig
from bnwd.empirical.data import SEEDED, TRAIN_SIZES, load_dataset
from bnwd.empirical.nets import build_model
from bnwd.empirical.trainer import Trainer, steps_per_epoch

__all__ = [
    "MeasuredRun",
    "build_trainer",
    "cuda_numerics",
    "is_finished",
    "read_run",
    "resolve_device",
    "run_id",
    "spec_steps",
    "together_groups",
    "train_run",
    "train_runs",
]

_TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig))
# Fields that change where or how a run is executed, not its numbers: kept out of the run id.
_NOT_HASHED = ("device", "checkpoint_every", "channels_last")
# Fields added after runs existed, hashed only when switched on: the runs that do not use them keep their ids.
_HASHED_WHEN_ON = ("batch_sharpness_every", "allow_tf32")


def run_id(spec: RunSpec) -> str:
    """A stable 12-hex-digit id of everything in ``spec`` that decides the run's numbers.

    The SHA-256 of the sorted JSON of the fields, without ``device``, ``checkpoint_every`` and ``channels_last``
    (a run restarted elsewhere keeps its id), and without ``batch_sharpness_every`` when it is 0 (added later: the
    runs without it keep the ids they had). Equal specs have equal ids on every machine and Python version.
    """
    hashed = {k: v for k, v in asdict(spec).items() if k not in _NOT_HASHED and not (k in _HASHED_WHEN_ON and not v)}
    return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:12]


def cuda_numerics(allow_tf32: bool = False) -> dict:
    """Set CUDA's float32 numerics for a run and return them for ``config.json``.

    By default strict float32: TF32 off in matmuls (cuBLAS) and convolutions (cuDNN), cuDNN's deterministic
    algorithms without autotuning, ``torch.use_deterministic_algorithms`` (warning, not failing, on the few ops
    without a deterministic kernel) and the cuBLAS workspace setting it needs (``CUBLAS_WORKSPACE_CONFIG``, set
    before the first cuBLAS call of the process). The checks' tolerances (C5's growth time, C6's and C9's
    reproductions) assume float32 rounding; ``allow_tf32`` trades that for speed and is recorded.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)
    return {
        "float32": "tf32" if allow_tf32 else "strict",
        "deterministic_algorithms": "warn_only",
        "cublas_workspace_config": os.environ["CUBLAS_WORKSPACE_CONFIG"],
    }


def resolve_device(device: str) -> str:
    """``"cpu"`` or ``"cuda"`` for ``device`` (``"auto"``: CUDA when torch sees one); ``ValueError`` for an unknown
    name or for CUDA asked for but absent."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda: no CUDA device is available to this torch")
    return device


def build_trainer(spec: RunSpec, out: Path, *, loaded: dict | None = None) -> Trainer:
    """Seed torch, load the data, build the model and return its :class:`Trainer` writing to ``out``.

    ``loaded``, if given, keeps the datasets loaded by earlier calls (keyed by what decides them), so that runs
    trained together share one copy. Raises ``ValueError`` (or :class:`~empirical.data.DataError`, a subclass) for
    a spec that cannot run: unknown model or data, missing files, CUDA asked for but absent, bad hyper-parameters.
    """
    device = resolve_device(spec.device)
    # before any CUDA work (cuBLAS reads its workspace setting once); CPU float32 is strict and deterministic already
    numerics = cuda_numerics(spec.allow_tf32) if device == "cuda" else {"float32": "strict"}
    dtypes = {"float32": torch.float32, "float64": torch.float64}  # RunSpec's DTYPES
    torch.manual_seed(spec.seed)
    key = (spec.data, spec.data_dir, device, spec.dtype, spec.seed if spec.data in SEEDED else None)
    loaded = {} if loaded is None else loaded
    if key not in loaded:
        loaded[key] = load_dataset(
            spec.data, data_dir=spec.data_dir, device=device, dtype=dtypes[spec.dtype], seed=spec.seed
        )
    data = loaded[key]
    if spec.train_subset is not None:
        if spec.train_subset > data.n_train:
            raise ValueError(f"train_subset must be in 1..{data.n_train} for {spec.data}, got {spec.train_subset}")
        data = dataclasses.replace(
            data, train_x=data.train_x[: spec.train_subset], train_y=data.train_y[: spec.train_subset]
        )
    model = build_model(
        spec.model, width=spec.width, in_channels=data.in_channels, n_classes=data.n_classes, init_scale=spec.init_scale
    ).to(device=device, dtype=dtypes[spec.dtype])
    if spec.channels_last:  # NHWC: faster convolutions on CPUs (benchmarks/train_step.py --channels-last measures it)
        model = model.to(memory_format=torch.channels_last)
        data = dataclasses.replace(
            data,
            train_x=data.train_x.contiguous(memory_format=torch.channels_last),
            test_x=data.test_x.contiguous(memory_format=torch.channels_last),
        )
    values = {name: getattr(spec, name) for name in _TRAIN_FIELDS} | {"steps": spec_steps(spec, data.n_train)}
    trainer = Trainer(model, data, TrainConfig(**values), out, spec=asdict(spec))
    trainer.monitor.run_config["numerics"] = {"device": device, **numerics}
    return trainer


def spec_steps(spec: RunSpec, n_train: int | None = None) -> int:
    """The optimiser steps ``spec`` trains: ``spec.steps``, or with ``epochs`` ``E`` that many passes,
    ``E·⌈n/B⌉`` minibatch steps (``E`` in full-batch mode).

    ``n_train`` is the number of training samples (default: :data:`~empirical.data.TRAIN_SIZES` of ``spec.data``,
    cut to ``train_subset``: what a plan knows before the data is read).
    """
    if spec.epochs is None:
        return spec.steps
    if n_train is None:
        n_train = min(TRAIN_SIZES[spec.data], spec.train_subset or TRAIN_SIZES[spec.data])
    return spec.epochs * steps_per_epoch(spec, n_train)


def is_finished(out: Path) -> bool:
    """Whether a run finished in ``out``: the trainer writes ``summary.json`` last, atomically."""
    return (Path(out) / "summary.json").exists()


@dataclass
class MeasuredRun:
    """A finished run folder, read back: ``config`` (``config.json``), the per-step ``records`` (``series.jsonl``
    in memory form) with ``steps`` and the :data:`analysis.schema.SERIES` arrays ``series`` made of them, the
    ``evals`` (``eval.jsonl``) and the ``summary`` (:func:`analysis.summary.summarize_records`)."""

    path: Path
    config: dict
    steps: np.ndarray
    series: dict
    records: list[dict]
    evals: list[dict]
    summary: dict


def read_run(out: Path, settings=DEFAULT_SETTINGS) -> MeasuredRun:
    """Read the finished run in ``out``; its summary is computed from its records with the detector's ``settings``
    (with the defaults, what the trainer wrote in ``summary.json``, for a folder written by this version; folders
    written before, with ``rho`` for ρ, are read in today's names and analysis). ``ValueError`` for a folder without
    a finished run."""
    out = Path(out)
    if not is_finished(out):
        raise ValueError(f"{out}: no finished run there (no summary.json)")
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    records = read_jsonl(out / "series.jsonl")
    steps, series = series_arrays(records, out / "series.jsonl")
    evals = read_jsonl(out / "eval.jsonl")
    return MeasuredRun(out, config, steps, series, records, evals, summarize_records(config, records, settings))


def train_run(spec: RunSpec, out: Path, *, progress: bool = False) -> None:
    """Train ``spec`` into ``out``; a finished run is left as it is, an unfinished one resumed.

    ``out/spec.json`` records the spec and its id; a folder holding another spec's run is refused (``ValueError``)
    rather than mixed. :func:`read_run` reads the result.
    """
    trainer = _open_run(spec, Path(out))
    if trainer is not None:
        trainer.run(progress=progress)


def _open_run(spec: RunSpec, out: Path, loaded: dict | None = None) -> Trainer | None:
    """The trainer of ``spec`` in ``out``, resumed from its checkpoint if it has one; None for a run finished
    there. ``ValueError`` for a folder of another run (see :func:`train_run`)."""
    record = {"run_id": run_id(spec), **asdict(spec)}
    spec_path = out / "spec.json"
    if spec_path.exists():
        existing = json.loads(spec_path.read_text(encoding="utf-8"))
        if existing.get("run_id") != record["run_id"]:
            raise ValueError(f"{out} holds run {existing.get('run_id')}, not {record['run_id']}")
        if is_finished(out):
            return None
    trainer = build_trainer(spec, out, loaded=loaded)
    out.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    trainer.resume()
    return trainer


_TOGETHER_KEY = (
    "model", "width", "data", "data_dir", "train_subset", "batch_size", "full_batch", "dtype", "device",
    "channels_last", "allow_tf32",
)  # fmt: skip
"""The fields runs must share to be trained together: one architecture, batches of one size on one device."""


def together_groups(specs: list[RunSpec], size: int) -> list[list[int]]:
    """Indices of ``specs`` in groups that can be trained together (equal :data:`_TOGETHER_KEY` fields), each of at
    most ``size`` members, in the order of ``specs``; ``size`` 1 gives one group per run."""
    if size < 1:
        raise ValueError(f"the group size must be >= 1, got {size}")
    by_key: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        by_key.setdefault(tuple(getattr(spec, name) for name in _TOGETHER_KEY), []).append(i)
    return [members[j : j + size] for members in by_key.values() for j in range(0, len(members), size)]


def train_runs(runs: list[tuple[RunSpec, Path]], *, together: int = 8, progress: bool = False) -> None:
    """Train every ``(spec, out)`` as :func:`train_run` would, up to ``together`` of them at once
    (:func:`together_groups`, :func:`empirical.batched.train_together`); finished runs are left as they are."""
    loaded: dict = {}
    for group in together_groups([spec for spec, _ in runs], together):
        trainers = [t for t in (_open_run(runs[i][0], Path(runs[i][1]), loaded) for i in group) if t is not None]
        if len(trainers) == 1:
            trainers[0].run(progress=progress)
        elif trainers:
            train_together(trainers, progress=progress)
