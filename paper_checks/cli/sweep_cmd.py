"""``bnwd sweep``: a grid of training runs on Dask, resumable, summarised in ``sweep.csv`` and one figure."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from pathlib import Path

from bnwd.paper_checks.cli import options
from bnwd.paper_checks.cli.printing import band_text, fmt, slope_text

__all__ = ["DESCRIPTION", "HELP", "add_options", "run"]

_AXES = {"lr": "--lr", "wd": "--wd", "seed": "--seeds"}
"""The fields given as comma-separated lists on the command line, and their flags."""


HELP = "train a grid of (lr, wd, seed, ...) configs as Dask tasks; resumable"
DESCRIPTION = (
    "Run every config of the grid as a task on Dask (a local cluster, or --scheduler), each into "
    "OUT/<run-id>/; a second call skips finished runs and resumes unfinished ones from their checkpoints. "
    "Write OUT/sweep.csv (one row per run) and OUT/period_vs_etalambda.png."
)


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``bnwd sweep`` to ``parser``: an option per :class:`~empirical.config.RunSpec` field
    (``--lr``, ``--wd`` and ``--seeds`` lists), the grid file, Dask's."""
    options.add_spec_options(parser, many=_AXES)
    parser.add_argument(
        "--grid",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML or YAML file: RunSpec field -> value or list of values; overrides the options above",
    )
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS", help="a running Dask scheduler's address")
    parser.add_argument(
        "--workers",
        type=options.positive_int,
        default=None,
        help="local cluster: worker processes (default: CPU cores)",
    )
    options.add_together_option(parser, 1, "each group in one Dask task")
    parser.add_argument(
        "--connect-timeout",
        type=options.positive_number,
        default=None,
        help="seconds to wait for --scheduler (default: 30)",
    )


def _grid(args: argparse.Namespace) -> dict:
    """The grid of the command line and ``--grid``: RunSpec field -> value or list of values.

    The file's values replace the options' (defaults included), except that ``--lr``, ``--wd`` and ``--seeds`` may
    not be given twice.
    """
    from bnwd.empirical.sweep import load_grid_file

    grid = {name: value for name, value in options.spec_values(args).items() if not (name in _AXES and value is None)}
    if args.grid is not None:
        from_file = load_grid_file(args.grid)
        twice = [flag for name, flag in _AXES.items() if name in grid and name in from_file]
        if twice:
            raise options.UsageError(f"{', '.join(twice)} given on the command line and in {args.grid}: give them once")
        grid.update(from_file)
    grid.setdefault("seed", 0)
    return grid


def run(args: argparse.Namespace) -> int:
    from bnwd.empirical.runs import build_trainer, run_id
    from bnwd.empirical.sweep import CONNECT_TIMEOUT, GridError, aggregate, expand_grid, open_client, pending, run_sweep

    if args.scheduler is not None and args.workers is not None:
        raise options.UsageError("--workers sizes the local cluster; a cluster at --scheduler has its own workers")
    try:
        specs = expand_grid(_grid(args))
    except GridError as error:
        raise options.UsageError(str(error)) from None
    todo = pending(specs, args.out)
    print(f"{len(specs)} runs in the grid; {len(specs) - len(todo)} finished, {len(todo)} to run", flush=True)
    failed = {}
    if todo:
        timeout = CONNECT_TIMEOUT if args.connect_timeout is None else args.connect_timeout
        with contextlib.ExitStack() as stack:
            try:
                client = stack.enter_context(open_client(args.scheduler, args.workers, timeout=timeout))
            except (OSError, ValueError) as error:
                where = f"--scheduler {args.scheduler}" if args.scheduler else "local Dask cluster"
                raise options.UsageError(f"{where}: cannot connect ({error})") from None
            try:  # a spec that cannot run (data, model, device) fails here, not on every worker
                build_trainer(todo[0], args.out / run_id(todo[0]))
            except ValueError as error:  # DataError included
                raise options.UsageError(str(error)) from None
            options.prepare_out(args.out)
            failed = run_sweep(specs, args.out, client, together=args.together).failed
    table = aggregate(specs, args.out)
    print(
        f"{'run':<12} {'lr':>8} {'wd':>8} {'seed':>4} {'regime':>12} {'events':>6} {'period':>9} {'band':>15} "
        f"{'predicted':>9}"
    )
    for row in table["rows"]:
        predicted = row["period_predicted"]
        if math.isnan(predicted):  # no sharpness measured: η̃ at each event instead
            predicted = row["period_predicted_measured_threshold"]
        print(
            f"{row['run_id']:<12} {row['lr']:>8g} {row['wd']:>8g} {row['seed']:>4d} {row['regime']:>12} "
            f"{row['n_destabilizations']:>6d} {fmt(row['period_measured'])} {band_text(row):>15} {fmt(predicted)}"
        )
    print(slope_text(table["frequency_slope"], "runs"))
    for rid, error in failed.items():
        print(f"bnwd: run {rid} failed: {error}", file=sys.stderr)
    print(f"wrote {args.out / 'sweep.csv'} and {args.out / 'period_vs_etalambda.png'}")
    return options.EXIT_FAILED if failed else 0
