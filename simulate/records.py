"""Plain files for runs, simulated or measured: one schema everywhere.

A simulated run's series is a CSV file with a ``step`` column and one column per name in :data:`SERIES`; a
trainer's is ``series.jsonl``, one record per step with the same names (ρ as ``rho``). :func:`read_series` reads
both into one form, so that both go through the same analysis; configs and verdicts are JSON.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

SERIES = ("loss", "si_norm", "grad_norm", "elr", "eff_grad_norm", "angular_update")
"""Per-step series of every run: the loss of the step's (mini)batch; ρ = ‖w‖ of the scale-invariant weights
before the step; ‖∇L_B‖ of the step's gradient; η̃ = η/ρ²; ‖g̃‖ = ρ‖∇L_B‖; the angle (radians) between w and w⁺."""


def write_series_csv(path: Path, steps: np.ndarray, series: dict) -> Path:
    """Write ``step`` and the :data:`SERIES` columns (each shaped like ``steps``) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = np.column_stack([steps, *(np.asarray(series[name], dtype=np.float64) for name in SERIES)])
    header = ",".join(("step", *SERIES))
    np.savetxt(path, columns, delimiter=",", header=header, comments="", fmt=["%d"] + ["%.17g"] * len(SERIES))
    return path


def read_series_csv(path: Path) -> tuple[np.ndarray, dict]:
    """Inverse of :func:`write_series_csv`: ``(steps, {name: values})``."""
    with open(path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    missing = {"step", *SERIES} - set(header)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    columns = {name: data[:, i] for i, name in enumerate(header)}
    return columns["step"].astype(np.int64), {name: columns[name] for name in SERIES}


TRAINER_NAMES = {"rho": "si_norm"}
"""Names in a trainer's ``series.jsonl`` that differ from :data:`SERIES` (the trainer writes ρ as ``rho``)."""


def read_series(path: Path) -> tuple[np.ndarray, dict]:
    """``(steps, {name: values})`` of a simulated (``.csv``) or measured (``series.jsonl``) run, in one schema.

    Non-finite values written by the trainer (``NaN``, ``Infinity``) come back as floats.
    """
    path = Path(path)
    if path.suffix == ".csv":
        return read_series_csv(path)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    columns = {TRAINER_NAMES.get(key, key): key for key in (records[0] if records else {})}
    missing = {"step", *SERIES} - set(columns)
    if missing:
        raise ValueError(f"{path}: missing fields {sorted(missing)}")
    steps = np.array([r["step"] for r in records], dtype=np.int64)
    return steps, {name: np.array([r[columns[name]] for r in records], dtype=np.float64) for name in SERIES}


def _plain(value):
    """JSON-safe view: numpy scalars and arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data) -> Path:
    """Write ``data`` as indented JSON (numpy values converted, NaN and inf as null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_plain(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
