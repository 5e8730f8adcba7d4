"""One schema: what every writer emits is named and typed by analysis.schema; folders written before it are read.

The writers checked: the trainer (``series.jsonl``, ``eval.jsonl``, ``summary.json``), ``bnwd simulate``
(``series/*.csv``, ``summary.json``) and ``bnwd sweep``'s table (``sweep.csv``). Missing values: NaN in memory,
null in JSON, an empty cell in CSV, NaN again when read.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnwd.analysis.records import read_jsonl, read_series, read_series_csv, write_json, write_jsonl, write_series_csv
from bnwd.analysis.schema import (
    EVAL_FIELDS,
    LEGACY_NAMES,
    SERIES,
    SERIES_FIELDS,
    SUMMARY_FIELDS,
    validate,
)
from bnwd.analysis.summary import summarize_run
from bnwd.empirical.runs import RunSpec, read_run, run_id, train_run
from bnwd.empirical.sweep import aggregate
from bnwd.paper_checks.cli import main

# Three evaluations, a few periods (the fields of a run with sharpness measured: tests/test_trainer.py).
MEASURED = RunSpec(lr=1.0, wd=0.03, steps=120, width=2, train_subset=128, batch_size=64, eval_points=3, device="cpu")
# present only where s̃ was measured, or (period_forecast) where a run has enough periods to predict
CONDITIONAL = {"elr_times_sharpness_threshold", "elr_times_sharpness_before_destabilization", "period_forecast"}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    out = tmp_path_factory.mktemp("measured") / run_id(MEASURED)
    train_run(MEASURED, out)
    return out


def _lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_trainers_files_follow_the_schema(measured):
    series = _lines(measured / "series.jsonl")
    for record in series:
        validate(record, SERIES_FIELDS, required=("step", *SERIES))
    for record in _lines(measured / "eval.jsonl"):
        validate(record, EVAL_FIELDS, required=EVAL_FIELDS)
    summary = json.loads((measured / "summary.json").read_text(encoding="utf-8"))
    validate(summary, SUMMARY_FIELDS, required=set(SUMMARY_FIELDS) - {"run_id", *CONDITIONAL})
    assert summary["detected_on"] == "si_norm+loss" and summary["norm_control"] == "free" and summary["events"]
    config = json.loads((measured / "config.json").read_text(encoding="utf-8"))
    assert not set(LEGACY_NAMES) & (set(config) | set(summary) | {k for r in series for k in r})


def test_bnwd_simulate_writes_the_schema(tmp_path):
    out = tmp_path / "sim"
    assert (
        main(["simulate", "--lr", "1", "--wd", "0.005,0.01", "--steps", "2000", "--dim", "8", "--out", str(out)]) == 0
    )
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for row in summary["rows"]:
        validate(row, SUMMARY_FIELDS, required=set(SUMMARY_FIELDS) - CONDITIONAL)
        with open(out / "series" / f"{row['run_id']}.csv", newline="", encoding="utf-8") as handle:
            assert next(csv.reader(handle)) == ["step", *SERIES]


def test_the_sweep_table_holds_spec_fields_and_summary_scalars(measured):
    rows = aggregate([MEASURED], measured.parent)["rows"]
    with open(measured.parent / "sweep.csv", newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    spec_fields = {f.name for f in dataclasses.fields(RunSpec)}
    assert set(header) <= spec_fields | set(SUMMARY_FIELDS) and header == list(rows[0])
    scalars = {name for name, f in SUMMARY_FIELDS.items() if f.kind not in ("list", "dict")} - CONDITIONAL
    assert scalars <= set(header)
    summary = json.loads((measured / "summary.json").read_text(encoding="utf-8"))
    assert rows[0]["period_measured"] == summary["period_measured"]


def test_validate_names_what_is_wrong():
    with pytest.raises(ValueError, match="unknown field 'rho'"):
        validate({"step": 0, "rho": 1.0}, SERIES_FIELDS)
    with pytest.raises(ValueError, match="missing field 'loss'"):
        validate({"step": 0}, SERIES_FIELDS, required=("step", "loss"))
    with pytest.raises(ValueError, match=r"n_destabilizations: expected int, got 2\.0"):
        validate({"n_destabilizations": 2.0}, SUMMARY_FIELDS)
    with pytest.raises(ValueError, match="regime: expected str, got None"):
        validate({"regime": None}, SUMMARY_FIELDS)
    validate({"diverged_at": None, "period_measured": None, "period_std": math.nan}, SUMMARY_FIELDS)


def test_a_folder_written_before_the_schema_is_read_in_todays_names(measured, tmp_path):
    """The files of the version before: ``rho``, ``rho_per_tensor``, ``rho0``, NaN as a bare token, and a
    summary with ``detected_on: "rho"`` and ``period``."""
    old = tmp_path / "old"
    old.mkdir()
    legacy = {new: old_name for old_name, new in LEGACY_NAMES.items()}
    for name in ("series.jsonl", "eval.jsonl"):
        records = [{legacy.get(k, k): v for k, v in r.items()} for r in _lines(measured / name)]
        (old / name).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    config = json.loads((measured / "config.json").read_text(encoding="utf-8"))
    (old / "config.json").write_text(json.dumps({legacy.get(k, k): v for k, v in config.items()}), encoding="utf-8")
    (old / "summary.json").write_text(json.dumps({"detected_on": "rho", "period": None, "steps": 120}))
    assert '"rho"' in (old / "series.jsonl").read_text(encoding="utf-8")

    then, now = read_run(old), read_run(measured)
    assert json.dumps(then.summary) == json.dumps(now.summary)
    assert json.dumps(then.records) == json.dumps(now.records) and json.dumps(then.evals) == json.dumps(now.evals)
    steps, series = read_series(old / "series.jsonl")
    assert np.array_equal(steps, now.steps) and set(series) == set(SERIES)
    assert np.array_equal(series["si_norm"], now.series["si_norm"])


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
maybe_nan = st.one_of(finite, st.just(math.nan))


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.tuples(maybe_nan, maybe_nan), min_size=1, max_size=20))
def test_nan_is_null_on_disk_and_nan_again_in_memory(tmp_path_factory, values):
    folder = tmp_path_factory.mktemp("roundtrip")
    records = [{"step": i, "loss": a, "period_measured": b} for i, (a, b) in enumerate(values)]
    path = write_jsonl(folder / "r.jsonl", records)
    assert "NaN" not in path.read_text(encoding="utf-8")  # plain JSON, which every reader accepts
    back = read_jsonl(path)
    for record, got in zip(records, back, strict=True):
        for name in ("loss", "period_measured"):
            assert got[name] == record[name] or (math.isnan(got[name]) and math.isnan(record[name]))
    assert json.loads(write_json(folder / "r.json", records[0]).read_text())["loss"] == (
        None if math.isnan(records[0]["loss"]) else records[0]["loss"]
    )


@settings(max_examples=30, deadline=None)
@given(columns=st.lists(st.lists(maybe_nan, min_size=6, max_size=6), min_size=len(SERIES), max_size=len(SERIES)))
def test_series_csv_round_trips_bit_for_bit_with_empty_cells_for_nan(tmp_path_factory, columns):
    path = tmp_path_factory.mktemp("csv") / "s.csv"
    series = dict(zip(SERIES, (np.array(c) for c in columns), strict=True))
    write_series_csv(path, np.arange(6), series)
    assert "nan" not in path.read_text(encoding="utf-8").lower()
    steps, back = read_series_csv(path)
    assert np.array_equal(steps, np.arange(6))
    for name in SERIES:
        assert np.array_equal(back[name], series[name], equal_nan=True)


def _decaying_run(n=400, lr=1.0, wd=0.01):
    """ρ under weight decay alone with jumps every 80 steps, the loss spiking with them."""
    t = np.arange(n)
    rho = (1 - lr * wd) ** (t % 80) * 2.0
    loss = np.where(t % 80 < 3, 2.0, 0.01 * (1 + 0.01 * np.cos(t)))
    return t, {"si_norm": rho, "elr": lr / rho**2, "loss": loss}


def test_one_row_function_covers_no_decay_fixed_norm_and_fixed_elr():
    steps, series = _decaying_run()
    free = summarize_run(steps, series, lr=1.0, wd=0.01, eff_sharpness=4.0)
    assert free["detected_on"] == "si_norm+loss" and math.isfinite(free["period_predicted"])
    assert free["elr_critical"] == pytest.approx(2 * (1 - 0.01) / 4.0)
    no_decay = summarize_run(steps, series, lr=1.0, wd=0.0, eff_sharpness=4.0)  # no free decay: no period law
    assert math.isnan(no_decay["period_predicted"]) and math.isnan(no_decay["period_predicted_measured_threshold"])
    for control in ("fixed_norm", "fixed_elr"):
        row = summarize_run(steps, series, lr=1.0, wd=0.01, lr_effective=0.5, norm_control=control)
        assert row["detected_on"] == "loss" and row["norm_control"] == control
        assert row["lr_wd"] == 0.5 * 0.01 and math.isnan(row["period_predicted_measured_threshold"])
        assert row["n_destabilizations"] == free["n_destabilizations"]  # the spikes are in the loss
    for row in (free, no_decay):
        validate(row, SUMMARY_FIELDS)
    with pytest.raises(ValueError, match="norm_control must be one of"):
        summarize_run(steps, series, lr=1.0, wd=0.01, norm_control="fixed")


def test_importing_bnwd_leaves_the_plotting_backend_alone():
    """A notebook's backend is its own: no module of bnwd chooses one, nor imports pyplot (but the Lightning
    callback, imported last: lightning imports torchmetrics, which imports pyplot; the backend stays)."""
    code = (
        "import matplotlib, sys, pkgutil, importlib\n"
        "for package in ('bnwd.theory', 'bnwd.analysis', 'bnwd.simulate', 'bnwd.empirical', 'bnwd.paper_checks'):\n"
        "    importlib.import_module(package)\n"
        "    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):\n"
        "        if module.name != 'lightning_callback':\n"
        "            importlib.import_module(f'{package}.{module.name}')\n"
        "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)\n"
        "importlib.import_module('bnwd.empirical.lightning_callback')\n"
        "print(matplotlib.get_backend())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "svg"},
        check=True,
    )
    assert done.stdout.split() == ["svg", "False", "svg"]


def test_pandas_reads_every_file_as_written(measured, tmp_path):
    series = pd.read_json(measured / "series.jsonl", lines=True)
    assert {"step", *SERIES} <= set(series.columns) and len(series) == MEASURED.steps
    aggregate([MEASURED], measured.parent)
    table = pd.read_csv(measured.parent / "sweep.csv")
    assert table["run_id"].tolist() == [run_id(MEASURED)] and np.isnan(table["period_predicted"][0])
    assert table["full_batch"].dtype == bool and table["steps_trained"].tolist() == [MEASURED.steps]
    steps = np.arange(4)
    columns = {name: np.array([1.0, np.nan, 2.0, 3.0]) for name in SERIES}
    frame = pd.read_csv(write_series_csv(tmp_path / "s.csv", steps, columns))
    assert frame.columns.tolist() == ["step", *SERIES] and frame["loss"].isna().tolist() == [False, True, False, False]
