"""``bnwd sweep``: a grid of training runs on Dask, resumable, summarised in ``sweep.csv`` and one figure."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from dataclasses import fields
from pathlib import Path

from paper_checks import cli


def _nonnegative_list(text: str) -> list[float]:
    return cli._number_list(text, lambda v: v >= 0, "non-negative finite numbers")


def _seed_list(text: str) -> list[int]:
    """A comma-separated list of integer seeds."""
    try:
        seeds = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"needs one or more integer seeds: {text!r}")
    return seeds


def add_parser(commands) -> argparse.ArgumentParser:
    """Add the ``sweep`` sub-command to ``commands`` (the ``bnwd`` sub-parsers) and return its parser."""
    sweep = commands.add_parser(
        "sweep",
        help="train a grid of (lr, wd, seed, ...) configs as Dask tasks; resumable",
        description="Run every config of the grid as a task on Dask (a local cluster, or --scheduler), each into "
        "OUT/<run-id>/; a second call skips finished runs and resumes unfinished ones from their checkpoints. "
        "Write OUT/sweep.csv (one row per run) and OUT/period_vs_etalambda.png.",
    )
    cli.add_train_options(sweep)
    sweep.add_argument("--lr", type=cli._positive_list, default=None, help="learning rates, comma-separated")
    sweep.add_argument("--wd", type=_nonnegative_list, default=None, help="weight decays, comma-separated")
    sweep.add_argument(
        "--seeds", dest="seed", metavar="SEEDS", type=_seed_list, default=None, help="seeds, comma-separated (0)"
    )
    sweep.add_argument(
        "--grid",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML or YAML file: RunSpec field -> value or list of values; overrides the options above",
    )
    sweep.add_argument("--out", type=Path, default=Path("runs/sweep"), help="output folder (default: %(default)s)")
    sweep.add_argument("--scheduler", default=None, metavar="ADDRESS", help="a running Dask scheduler's address")
    sweep.add_argument(
        "--workers", type=cli._positive_int, default=None, help="local cluster: worker processes (default: CPU cores)"
    )
    cli.add_together_option(sweep, 1, "each group in one Dask task")
    sweep.add_argument(
        "--connect-timeout",
        type=cli._positive_number,
        default=None,
        help="seconds to wait for --scheduler (default: 30)",
    )
    sweep.set_defaults(run=_sweep)
    return sweep


def _grid(args: argparse.Namespace) -> dict:
    """The grid of the command line and ``--grid``: RunSpec field -> value or list of values.

    The file's values replace the options' (defaults included), except that ``--lr``, ``--wd`` and ``--seeds`` may
    not be given twice.
    """
    from empirical.runs import RunSpec
    from empirical.sweep import load_grid_file

    grid = {f.name: getattr(args, f.name) for f in fields(RunSpec) if hasattr(args, f.name)}
    axes = {"lr": "--lr", "wd": "--wd", "seed": "--seeds"}
    for name in axes:
        if grid[name] is None:
            del grid[name]
    if args.grid is not None:
        from_file = load_grid_file(args.grid)
        twice = [flag for name, flag in axes.items() if name in grid and name in from_file]
        if twice:
            raise cli.UsageError(f"{', '.join(twice)} given on the command line and in {args.grid}: give them once")
        grid.update(from_file)
    grid.setdefault("seed", 0)
    return grid


def _sweep(args: argparse.Namespace) -> int:
    from empirical.runs import build_trainer, run_id
    from empirical.sweep import CONNECT_TIMEOUT, GridError, aggregate, expand_grid, open_client, pending, run_sweep

    if args.scheduler is not None and args.workers is not None:
        raise cli.UsageError("--workers sizes the local cluster; a cluster at --scheduler has its own workers")
    try:
        specs = expand_grid(_grid(args))
    except GridError as error:
        raise cli.UsageError(str(error)) from None
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
                raise cli.UsageError(f"{where}: cannot connect ({error})") from None
            try:  # a spec that cannot run (data, model, device) fails here, not on every worker
                build_trainer(todo[0], args.out / run_id(todo[0]))
            except ValueError as error:  # DataError included
                raise cli.UsageError(str(error)) from None
            cli._prepare_out(args.out)
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
            f"{row['n_destabilizations']:>6d} {cli._fmt(row['period_measured'])} {cli.band_text(row):>15} "
            f"{cli._fmt(predicted)}"
        )
    print(cli.slope_text(table["frequency_slope"], "runs"))
    for rid, error in failed.items():
        print(f"bnwd: run {rid} failed: {error}", file=sys.stderr)
    print(f"wrote {args.out / 'sweep.csv'} and {args.out / 'period_vs_etalambda.png'}")
    return cli.EXIT_FAILED if failed else 0
