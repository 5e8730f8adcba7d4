"""Plain files for runs, simulated or measured, in the names of :mod:`analysis.schema`.

A simulated run's series is a CSV file with a ``step`` column and one column per name in :data:`SERIES`; a
trainer's is ``series.jsonl``, one record per step with the same names. :func:`read_series` reads both into one
form (folders written before the schema, with ``rho`` for ρ, included), so that both go through the same analysis.

This module is the one place where missing values change form: NaN (and ±inf, which JSON cannot hold) in memory
is ``null`` in JSON; NaN is an empty cell in CSV. Readers turn them back into NaN.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from bnwd.analysis.schema import EVAL_FIELDS, SERIES, SERIES_FIELDS, SUMMARY_FIELDS, current_name

__all__ = [
    "append_jsonl",
    "check_writable",
    "current_record",
    "make_durable",
    "read_jsonl",
    "read_series",
    "read_series_csv",
    "series_arrays",
    "write_csv",
    "write_json",
    "write_jsonl",
    "write_rows_csv",
    "write_series_csv",
]

_FLOAT_NAMES = frozenset(
    name for table in (SERIES_FIELDS, EVAL_FIELDS, SUMMARY_FIELDS) for name, f in table.items() if f.kind == "float"
)


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


def current_record(record: dict) -> dict:
    """A record as read from a file in memory form: the schema's names (:data:`~analysis.schema.LEGACY_NAMES`
    mapped), NaN for the null of a float field."""
    record = {current_name(k): v for k, v in record.items()}
    return {k: math.nan if v is None and k in _FLOAT_NAMES else v for k, v in record.items()}


def _write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` through a temporary file and a rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:  # a full disk or an interrupt: the file before stays whole, no temporary one behind
        tmp.unlink(missing_ok=True)
        raise
    return path


def check_writable(folder: Path, need_bytes: int = 0) -> None:
    """Raise ``OSError`` (with the folder as its filename) unless a file can be created in ``folder`` and its disk
    has ``need_bytes`` free: a run fails before its work, not at its first write."""
    folder = Path(folder)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(folder)) from None
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        needed = f"{need_bytes / 2**20:.1f} MiB needed, {free / 2**20:.1f} MiB free"
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: {needed}", str(folder))


def write_json(path: Path, data) -> Path:
    """Write ``data`` as indented JSON (numpy values converted, NaN and ±inf as null), atomically."""
    return _write_atomically(path, json.dumps(_plain(data), indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """Write one JSON object per line (NaN and ±inf as null), atomically (:func:`append_jsonl` streams them)."""
    return _write_atomically(path, "".join(json.dumps(_plain(r), ensure_ascii=False) + "\n" for r in records))


def append_jsonl(path: Path, records: list[dict], offset: int) -> int:
    """Write ``records`` as JSON lines at byte ``offset`` of ``path`` (cutting what lay beyond it: an earlier
    run's tail, or a chunk a kill cut short) in one write; return the new length in bytes."""
    data = "".join(json.dumps(_plain(r), ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "r+b" if path.exists() else "wb") as stream:
        stream.seek(offset)
        stream.truncate()
        stream.write(data)
    return offset + len(data)


def make_durable(path: Path) -> None:
    """Flush ``path`` to the disk (fsync): what a checkpoint points to survives a crash of the machine too."""
    with open(path, "rb+") as stream:
        os.fsync(stream.fileno())


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file in memory form: schema names (legacy ones mapped), NaN for null floats.

    Files written before the schema (``NaN`` and ``Infinity`` tokens, ``rho``) are read too.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [current_record(json.loads(line)) for line in lines if line.strip()]


def _cells(values) -> list[str]:
    """CSV cells of one column: numbers in full precision, NaN and None empty, anything else (a flag: ``True``) as
    ``str``."""
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return [str(v) for v in array.tolist()]
    if array.dtype.kind == "f":
        return np.where(np.isnan(array), "", np.char.mod("%.17g", array)).tolist()
    return ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values]


def write_csv(path: Path, columns: dict) -> Path:
    """Write a table of equal-length columns (name -> values) as CSV, atomically; NaN and None are empty cells."""
    names = list(columns)
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of unequal length: {sorted(lengths)}")
    cells = [_cells(columns[name]) for name in names]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")  # quotes a cell that holds a comma (a regime's rule)
    writer.writerow(names)
    writer.writerows(zip(*cells, strict=True))
    return _write_atomically(path, text.getvalue())


def write_rows_csv(path: Path, rows: list[dict]) -> Path:
    """Write dict rows as CSV: one column per key met (in order of first appearance), empty where a row lacks it."""
    names = list(dict.fromkeys(key for row in rows for key in row))
    return write_csv(path, {name: [row.get(name) for row in rows] for name in names})


def write_series_csv(path: Path, steps: np.ndarray, series: dict) -> Path:
    """Write ``step`` and the :data:`SERIES` columns (each shaped like ``steps``) to ``path``."""
    columns = {"step": np.asarray(steps, dtype=np.int64)}
    columns |= {name: np.asarray(series[name], dtype=np.float64) for name in SERIES}
    return write_csv(path, columns)


def read_series_csv(path: Path) -> tuple[np.ndarray, dict]:
    """Inverse of :func:`write_series_csv`: ``(steps, {name: values})``; empty cells (and ``nan``) are NaN."""
    with open(path, newline="", encoding="utf-8") as handle:
        header = [current_name(name) for name in next(csv.reader(handle))]
    missing = {"step", *SERIES} - set(header)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    data = np.genfromtxt(path, delimiter=",", skip_header=1, ndmin=2, dtype=np.float64)
    columns = {name: data[:, i] for i, name in enumerate(header)}
    return columns["step"].astype(np.int64), {name: columns[name] for name in SERIES}


def read_series(path: Path) -> tuple[np.ndarray, dict]:
    """``(steps, {name: values})`` of a simulated (``.csv``) or measured (``series.jsonl``) run, in one schema.

    Missing and non-finite values come back as floats (NaN, or ±inf where a file before the schema held them).
    """
    path = Path(path)
    if path.suffix == ".csv":
        return read_series_csv(path)
    return series_arrays(read_jsonl(path), path)


def series_arrays(records: list[dict], source="records") -> tuple[np.ndarray, dict]:
    """``(steps, {name: values})`` of per-step records in memory form, one float64 array per :data:`SERIES` name.

    ``source`` names them in the error for a missing field.
    """
    missing = {"step", *SERIES} - set(records[0] if records else ())
    if missing:
        raise ValueError(f"{source}: missing fields {sorted(missing)}")
    steps = np.array([r["step"] for r in records], dtype=np.int64)
    return steps, {name: np.array([r[name] for r in records], dtype=np.float64) for name in SERIES}
