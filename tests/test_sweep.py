"""`bnwd sweep`: grid expansion, grid files, bad input, and a Dask sweep that survives a killed worker."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnwd.empirical.runs import RunSpec, run_id
from bnwd.empirical.sweep import GridError, aggregate, expand_grid, load_grid_file, open_client, pending, run_sweep
from bnwd.paper_checks import cli

# Four tiny runs of ConvNetSI on 256 digits, ~1 s each on an idle core; 3 checkpoints, so a run can be killed mid-way.
TINY = ["--width", "4", "--train-subset", "256", "--batch-size", "64", "--steps", "120", "--eval-points", "2"]
TINY += ["--checkpoint-every", "40", "--device", "cpu"]
GRID = ["--lr", "1", "--wd", "0.03,0.06", "--seeds", "0,1"]


def test_expand_grid_is_the_product_of_the_axes_without_repeats():
    specs = expand_grid({"lr": [1, 2.0], "wd": [0.01, 0.01, 0.02], "seed": [0, 1], "width": 4})
    assert len(specs) == 2 * 2 * 2
    assert [(s.lr, s.wd, s.seed) for s in specs[:3]] == [(1.0, 0.01, 0), (1.0, 0.01, 1), (1.0, 0.02, 0)]
    assert all(s.width == 4 and isinstance(s.lr, float) for s in specs)
    # lr = 1 and lr = 1.0 are one run: the id hashes the coerced value
    assert run_id(specs[0]) == run_id(RunSpec(lr=1.0, wd=0.01, seed=0, width=4))


@settings(max_examples=30, deadline=None)
@given(
    lrs=st.lists(st.sampled_from([0.1, 0.5, 1.0, 2.0]), min_size=1, max_size=4),
    wds=st.lists(st.sampled_from([0.0, 0.001, 0.01]), min_size=1, max_size=3),
    seeds=st.lists(st.integers(0, 3), min_size=1, max_size=3),
)
def test_expand_grid_has_one_spec_per_distinct_config(lrs, wds, seeds):
    specs = expand_grid({"lr": lrs, "wd": wds, "seed": seeds})
    assert len({run_id(s) for s in specs}) == len(specs) == len(set(lrs)) * len(set(wds)) * len(set(seeds))


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"lr": [1.0], "wd": [0.01], "depth": 3}, "unknown field(s) depth"),
        ({"lr": [1.0]}, "no values for wd"),
        ({"lr": [], "wd": [0.01]}, "empty grid: no values for lr"),
        ({"lr": [1.0], "wd": ["0.01"]}, "wd: '0.01' is not a float"),
        ({"lr": [1.0], "wd": [0.01], "seed": 1.5}, "seed: 1.5 is not a int"),
    ],
)
def test_expand_grid_rejects_bad_grids(grid, message):
    with pytest.raises(GridError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand_grid(grid)


def test_grid_files_in_toml_and_yaml_give_the_same_grid(tmp_path):
    (tmp_path / "g.toml").write_text('lr = [0.5, 1]\nwd = 0.01\nseed = [0, 1]\ndata = "digits"\n', encoding="utf-8")
    (tmp_path / "g.yaml").write_text("lr: [0.5, 1]\nwd: 0.01\nseed: [0, 1]\ndata: digits\n", encoding="utf-8")
    toml, yaml = (expand_grid(load_grid_file(tmp_path / name)) for name in ("g.toml", "g.yaml"))
    assert [run_id(s) for s in toml] == [run_id(s) for s in yaml] and len(toml) == 4


def _bnwd(argv, capsys) -> tuple[int, str, str]:
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    ("grid_text", "extra", "message"),
    [
        ("lr = []\nwd = [0.01]\n", [], "empty grid: no values for lr"),
        ("lr = [1.0]\nwd = [0.01]\nlearning_rate = 2\n", [], "unknown key(s) learning_rate"),
        ("wd = [0.01]\n", ["--wd", "0.1"], "--wd given on the command line and in"),
        (None, ["--lr", "1", "--wd", "0.01", "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"], "connect"),
        (None, ["--lr", "1", "--wd", "0.01", "--scheduler", "tcp://127.0.0.1:9", "--workers", "2"], "--workers"),
    ],
    ids=["empty-grid", "unknown-key", "twice", "no-scheduler", "workers-and-scheduler"],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, grid_text, extra, message):
    argv = ["sweep", *TINY, "--out", str(tmp_path / "out"), *extra]
    if grid_text is not None:
        (tmp_path / "grid.toml").write_text(grid_text, encoding="utf-8")
        argv += ["--grid", str(tmp_path / "grid.toml")]
    status, _out, err = _bnwd(argv, capsys)
    assert status == cli.EXIT_USAGE
    assert err.count("\n") == 1 and err.startswith("bnwd: error:") and message in err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def client():
    """A client of the sweep's own local cluster: two single-thread worker processes, each under a nanny that
    restarts it when it is killed."""
    with open_client(workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        yield client


def _kill_a_worker_mid_run(client, out: Path, timeout: float = 120.0) -> tuple[str, int]:
    """SIGKILL the worker process of a run that has checkpointed but not finished; return (run id, its pid)."""
    deadline = time.monotonic() + timeout
    pids = client.run(os.getpid)
    while time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            for key in keys:
                folder = out / str(key).split("-")[2]  # bnwd-run-<run id>-<sweep folder>
                if (folder / "checkpoint.pt").exists() and not (folder / "summary.json").exists():
                    os.kill(pids[worker], signal.SIGKILL)
                    return folder.name, pids[worker]
        time.sleep(0.05)
    raise AssertionError(f"no run was caught between its first checkpoint and its end within {timeout} s")


@pytest.mark.slow
def test_sweep_survives_a_killed_worker_and_a_rerun_does_no_work(tmp_path, capsys, client):
    out = tmp_path / "sweep"
    argv = ["sweep", *TINY, *GRID, "--out", str(out), "--scheduler", client.scheduler.address]
    with ThreadPoolExecutor(1) as pool:
        sweep = pool.submit(cli.main, argv)
        victim, pid = _kill_a_worker_mid_run(client, out)
        assert sweep.result(timeout=300) == 0
    assert pid not in client.run(os.getpid).values()  # the worker really died (its nanny started a new one)
    first = capsys.readouterr().out
    assert "4 runs in the grid; 0 finished, 4 to run" in first

    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 4 and all((p / "summary.json").exists() for p in folders)
    # the killed run was finished by its retry: every step recorded once, none lost, none repeated
    records = [json.loads(line) for line in (out / victim / "series.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in records] == list(range(120))
    with open(out / "sweep.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["run_id"] for r in rows) == [p.name for p in folders]
    for row in rows:
        summary = json.loads((out / row["run_id"] / "summary.json").read_text(encoding="utf-8"))
        assert (row["regime"], int(row["n_destabilizations"])) == (summary["regime"], summary["n_destabilizations"])
    assert (out / "period_vs_etalambda.png").stat().st_size > 0

    written = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.parent != out}
    assert cli.main(argv) == 0
    assert "4 runs in the grid; 4 finished, 0 to run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.parent != out} == written


def test_a_run_that_raises_is_retried_then_reported_failed_without_a_summary(tmp_path, client):
    bad = RunSpec(lr=1.0, wd=0.01, steps=10, width=4, train_subset=32, batch_size=64, device="cpu")
    result = run_sweep([bad], tmp_path, client, retries=1, progress=False)
    assert result.trained == [] and list(result.failed) == [run_id(bad)]
    assert result.failed[run_id(bad)].startswith("ValueError: batch_size 64 is larger than the 32 training samples")
    assert pending([bad], tmp_path) == [bad]


def test_runs_without_decay_or_at_fixed_norm_keep_the_trainers_detection_and_predict_nothing(tmp_path, client):
    tiny = {"steps": 30, "batch_size": 64, "width": 4, "train_subset": 128, "eval_points": 2, "device": "cpu"}
    specs = [RunSpec(lr=1.0, wd=0.0, **tiny), RunSpec(lr=1.0, wd=0.03, fix_norm=0.0, **tiny)]
    # one task trains both together (one architecture and batch size)
    assert run_sweep(specs, tmp_path, client, together=2, progress=False).trained == [run_id(s) for s in specs]
    summaries = [json.loads((tmp_path / run_id(s) / "summary.json").read_text(encoding="utf-8")) for s in specs]
    rows = aggregate(specs, tmp_path)["rows"]
    for spec, summary, row in zip(specs, summaries, rows, strict=True):
        assert row["run_id"] == run_id(spec) and row["detected_on"] == summary["detected_on"]
        assert (row["regime"], row["n_destabilizations"]) == (summary["regime"], summary["n_destabilizations"])
        assert math.isnan(row["period_predicted"]) and math.isnan(row["period_predicted_measured_threshold"])
    assert [row["norm_control"] for row in rows] == ["free", "fixed_norm"]
    with open(tmp_path / "sweep.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [r["run_id"] for r in table] == [run_id(spec) for spec in specs]
    assert all(r["period_predicted"] == "" for r in table)  # NaN in memory, an empty cell in the file
