"""A grid of training runs on Dask: expand it, run each config once, summarise them all in one table and figure.

Every run is a :mod:`dask.distributed` task that calls :func:`empirical.runs.train_run` into ``<out>/<run_id>/``
(with ``together`` K > 1, runs that can take their steps together form tasks of up to K runs trained as one
computation, :func:`empirical.runs.train_runs`). That folder is the run's only state, which makes the sweep safe to
interrupt and to repeat:

* a run is finished exactly when its ``summary.json`` exists (the trainer writes it last, atomically); a sweep
  started again submits only the unfinished runs, and ``train_run`` resumes those from ``checkpoint.pt``
  (``checkpoint_every > 0``) or starts them over, overwriting the partial records;
* the task key is the run id (the group's ids) with the sweep folder's, so the scheduler holds at most one task per
  run folder, even for two sweeps of one grid started at once into the same folder (two different grids grouped
  differently into one folder at once could train a run twice); a task whose worker dies is rescheduled by the
  scheduler (up to ``distributed.scheduler.allowed-failures`` deaths) and one that raises is retried ``retries``
  times, both into the same folder;
* the table has one row per run id, read from the folders, not from the task results.

The rows have the schema of the simulated sweep (:func:`analysis.summary.summarize_run`), so that
:func:`simulate.plots.plot_period_vs_lr_wd` draws both.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import socket
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from tqdm import tqdm

from bnwd.analysis.records import write_rows_csv
from bnwd.analysis.summary import frequency_slope_band
from bnwd.empirical.config import value_type
from bnwd.empirical.runs import RunSpec, is_finished, read_run, run_id, together_groups, train_runs
from bnwd.simulate.plots import plot_period_vs_lr_wd

__all__ = [
    "CONNECT_TIMEOUT",
    "RETRIES",
    "GridError",
    "SweepResult",
    "aggregate",
    "expand_grid",
    "load_grid_file",
    "open_client",
    "pending",
    "run_row",
    "run_sweep",
]

_HINTS = typing.get_type_hints(RunSpec)
_FIELD_TYPES = {
    f.name: {value_type(RunSpec, f.name).__name__}
    | ({"None"} if type(None) in typing.get_args(_HINTS[f.name]) else set())
    for f in fields(RunSpec)
}
RETRIES = 2
"""Re-runs of a task that raised (a worker's death is counted separately, by the scheduler)."""
CONNECT_TIMEOUT = 30.0
"""Seconds to wait for a scheduler given by address."""


class GridError(ValueError):
    """A grid that cannot be run: an unknown field, an empty axis, a value of the wrong type."""


def _coerce(name: str, value):
    """``value`` as the type of the RunSpec field ``name`` (an int where a float is due becomes a float, so that
    ``lr = 1`` and ``lr = 1.0`` are the same run id)."""
    kinds = _FIELD_TYPES[name]
    if value is None and "None" in kinds:
        return None
    if isinstance(value, os.PathLike) and "str" in kinds:
        return os.fspath(value)
    if isinstance(value, bool):
        if "bool" in kinds:
            return value
    elif isinstance(value, int) and "int" in kinds:
        return value
    elif isinstance(value, int | float) and "float" in kinds:
        return float(value)
    elif isinstance(value, str) and "str" in kinds:
        return value
    raise GridError(f"{name}: {value!r} is not a {' or '.join(sorted(kinds))}")


def expand_grid(grid: Mapping[str, object]) -> list[RunSpec]:
    """Every combination of the grid's values, as run specs, without repeats.

    Parameters
    ----------
    grid : mapping
        :class:`~empirical.runs.RunSpec` field name -> one value, or a list of values (an axis of the grid).
        ``lr`` and ``wd`` are required.

    Returns
    -------
    list of RunSpec
        The Cartesian product of the axes in the order of ``grid`` (the first key varies slowest); a spec that
        comes up twice (e.g. two lists holding the same value) is kept once.

    Raises
    ------
    GridError
        For an unknown field, a missing ``lr``/``wd``, an axis with no values, or a value of the wrong type.
    """
    unknown = [name for name in grid if name not in _FIELD_TYPES]
    if unknown:
        raise GridError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(_FIELD_TYPES)}")
    missing = [name for name in ("lr", "wd") if name not in grid]
    if missing:
        raise GridError(f"no values for {' and '.join(missing)}")
    axes = {name: list(value) if isinstance(value, list | tuple) else [value] for name, value in grid.items()}
    empty = [name for name, values in axes.items() if not values]
    if empty:
        raise GridError(f"empty grid: no values for {', '.join(empty)}")
    axes = {name: [_coerce(name, v) for v in values] for name, values in axes.items()}
    specs = (RunSpec(**dict(zip(axes, combo, strict=True))) for combo in itertools.product(*axes.values()))
    return list({run_id(spec): spec for spec in specs}.values())


def load_grid_file(path: Path) -> dict:
    """The grid of a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file: RunSpec field -> value or list of values.

    Raises :class:`GridError` for a file that cannot be read or parsed, one that is not a table of fields, or a
    field that :class:`~empirical.runs.RunSpec` does not have.
    """
    path = Path(path)
    if path.suffix not in (".toml", ".yaml", ".yml"):
        raise GridError(f"grid file {path}: expected a .toml, .yaml or .yml file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise GridError(f"grid file {path}: {error.strerror or error}") from None
    if path.suffix == ".toml":
        try:
            import tomllib  # Python >= 3.11
        except ModuleNotFoundError:
            raise GridError(f"grid file {path}: TOML needs Python 3.11 or later; use YAML") from None
        try:
            grid = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise GridError(f"grid file {path}: {error}") from None
    else:
        import yaml  # a dependency of dask.distributed

        try:
            grid = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise GridError(f"grid file {path}: {' '.join(str(error).split())}") from None
    if not isinstance(grid, dict):
        raise GridError(f"grid file {path}: expected a table of RunSpec fields")
    unknown = [str(name) for name in grid if name not in _FIELD_TYPES]
    if unknown:
        raise GridError(f"grid file {path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_FIELD_TYPES)}")
    return grid


@dataclass
class SweepResult:
    """What a sweep did: run ids trained now, found finished, and failed (id -> the error, one line)."""

    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def pending(specs: list[RunSpec], out: Path) -> list[RunSpec]:
    """The specs whose folder under ``out`` has no ``summary.json`` yet (not run, or stopped part-way)."""
    return [spec for spec in specs if not is_finished(Path(out) / run_id(spec))]


@contextlib.contextmanager
def open_client(scheduler: str | None = None, workers: int | None = None, timeout: float = CONNECT_TIMEOUT):
    """A Dask client: of the scheduler at ``scheduler``, else of a new :class:`~distributed.LocalCluster`.

    The local cluster has ``workers`` worker processes (default: one per CPU core) of one thread each (a
    training run is one task; torch's threads are capped at 1 per worker by Dask's ``OMP_NUM_THREADS``).
    Closes what it opened. Raises ``OSError`` when no scheduler answers at ``scheduler`` within ``timeout`` s, at
    once when its TCP port refuses the connection (:func:`_reach`).
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        _reach(scheduler, timeout)
        with Client(scheduler, timeout=timeout, set_as_default=False) as client:
            yield client
        return
    n_workers = workers or os.cpu_count() or 1
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,  # not the warnings of a normal shutdown (workers slow to exit)
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


def _reach(scheduler: str, timeout: float) -> None:
    """Open and close a TCP connection to the ``tcp://`` or ``tls://`` address ``scheduler`` (with a port): an
    ``OSError`` at once for a port that refuses it, where Dask's client would retry for all of ``timeout``. Other
    addresses are left to the client."""
    from distributed.comm.addressing import parse_address, parse_host_port

    scheme, location = parse_address(scheduler)
    if scheme not in ("tcp", "tls") or not location.rpartition(":")[2].isdigit():
        return
    with socket.create_connection(parse_host_port(location), timeout=timeout):
        pass


def run_sweep(
    specs: list[RunSpec], out: Path, client, *, together: int = 1, retries: int = RETRIES, progress: bool = True
) -> SweepResult:
    """Run every unfinished spec on ``client``'s cluster, each into ``out/<run_id>/``: one task a run, or with
    ``together`` K > 1 one task a group of up to K runs trained together (:func:`empirical.runs.together_groups`).

    Parameters
    ----------
    specs : list of RunSpec
        The grid (see :func:`expand_grid`); finished runs are not submitted.
    out : Path
        Sweep folder.
    client : distributed.Client
        Where the tasks run.
    together : int
        Most runs a task trains as one computation (1: each run its own task).
    retries : int
        Re-runs of a task that raised; a task whose worker died is rescheduled by the scheduler regardless.
    progress : bool
        A tqdm bar of runs done (finished ones counted from the start).

    Returns
    -------
    SweepResult
    """
    from distributed import as_completed

    out = Path(out)
    todo = pending(specs, out)
    todo_ids = {run_id(spec) for spec in todo}
    result = SweepResult(skipped=[run_id(spec) for spec in specs if run_id(spec) not in todo_ids])
    # One key per (run, sweep folder): the scheduler never holds two tasks for one run folder, and two sweeps
    # into different folders that share a config do not share a task (each writes its own folder).
    folder = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:8]
    futures = {}
    for group in together_groups(todo, together):
        ids = [run_id(todo[i]) for i in group]
        key = f"bnwd-run-{'-'.join(ids)}-{folder}"
        runs = [(todo[i], out / rid) for i, rid in zip(group, ids, strict=True)]
        futures[client.submit(train_runs, runs, together=together, key=key, retries=retries)] = ids
    with tqdm(total=len(specs), initial=len(result.skipped), disable=not progress, desc="runs", unit="run") as bar:
        for future in as_completed(futures, loop=client.loop):
            ids = futures[future]
            if future.status == "finished":
                result.trained.extend(ids)
            elif future.status == "error":  # raised more than `retries` times, or its worker died too often
                error = future.exception()
                result.failed |= dict.fromkeys(ids, f"{type(error).__name__}: {' '.join(str(error).split())}")
            else:  # cancelled: the scheduler went away
                result.failed |= dict.fromkeys(ids, f"task {future.status}")
            future.release()
            bar.update(len(ids))
    return result


def run_row(spec: RunSpec, summary: dict) -> dict:
    """The table row of a finished run: ``run_id``, the spec's fields, then the scalars of its ``summary``
    (:func:`empirical.runs.read_run`: :func:`analysis.summary.summarize_run` of its records, the row a simulated
    run has too); the per-run lists and tables (``events``, ``periods``, ``detection_band``, …) stay in the run's
    ``summary.json``."""
    scalars = {k: v for k, v in summary.items() if not isinstance(v, list | dict)}
    return {"run_id": run_id(spec), **asdict(spec), **scalars}


def aggregate(specs: list[RunSpec], out: Path) -> dict:
    """Write ``out/sweep.csv`` (one row per finished run of ``specs``, :func:`run_row`) and
    ``out/period_vs_etalambda.png`` (:func:`simulate.plots.plot_period_vs_lr_wd`).

    Returns
    -------
    dict
        ``rows`` and the ``frequency_slope`` of log frequency against log ηλ over the periodic runs, with its range
        over the detector's band (:func:`analysis.summary.frequency_slope_band`; the theory's slope is 1).
    """
    out = Path(out)
    finished = [spec for spec in specs if is_finished(out / run_id(spec))]
    summaries = [read_run(out / run_id(spec)).summary for spec in finished]
    rows = [run_row(spec, summary) for spec, summary in zip(finished, summaries, strict=True)]
    write_rows_csv(out / "sweep.csv", rows)
    plot_period_vs_lr_wd(rows, out / "period_vs_etalambda.png")
    return {"rows": rows, "frequency_slope": frequency_slope_band(summaries)}
