"""``bnwd check``: the paper's claims as checks, with verdicts, numbers, tolerances and figures."""

from __future__ import annotations

import argparse

from bnwd.empirical.catalog import DATASET_NAMES
from bnwd.paper_checks.cli import options

__all__ = ["DESCRIPTION", "HELP", "PROGRESS", "add_options", "run"]

HELP = "run the paper's claims as checks: verdicts, numbers, tolerances, figures"
DESCRIPTION = (
    "Run each claim of the paper (C1-C10) as a check; print a table; write verdicts.json and one "
    "figure per claim; exit 1 if any claim fails."
)
PROGRESS = True


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``bnwd check`` to ``parser``."""
    parser.add_argument("--claims", metavar="C1,C3,...", default=None, help="claims to check (default: all)")
    parser.add_argument(
        "--scale",
        choices=("tiny", "small", "paper"),
        default="small",
        help="small: digits on a CPU in minutes; paper: the paper's nets and CIFAR on a GPU; tiny: a seconds-long "
        "smoke run of the pipeline (default: %(default)s)",
    )
    options.add_spec_option(
        parser,
        "data",
        choices=tuple(name for name in DATASET_NAMES if name != "synthetic"),  # random labels: no claim holds on them
        default=None,
        help="data for every run (default: each check's own)",
    )
    options.add_spec_option(parser, "data_dir")
    options.add_spec_option(parser, "device")
    options.add_together_option(parser, 8, "C3's grid, C7's runs")
    parser.add_argument(
        "--plan",
        action="store_true",
        help="train nothing: list each claim's runs with their steps, ηλ and the periods expected, and the totals",
    )


def run(args: argparse.Namespace) -> int:
    from bnwd.paper_checks.checks import run_checks, select, table_row
    from bnwd.paper_checks.common import CheckContext

    try:
        checks = select(args.claims.split(",") if args.claims else None)
    except ValueError as error:
        raise options.UsageError(f"--claims: {error}") from None
    if args.plan:  # trains nothing, so it needs neither the GPU nor the data
        from bnwd.paper_checks.plan import format_plan, plan_checks

        ctx = CheckContext(out=args.out, scale=args.scale, device=args.device, data=args.data)
        print(format_plan(plan_checks(checks, ctx), args.scale))
        return 0
    device = options.resolve_device(args.device)
    if args.scale == "paper":
        options.require_gpu(device, args.device, "--scale paper trains the paper's nets for 1001 epochs")
        if args.data_dir is None:
            raise options.UsageError(
                "--scale paper reads CIFAR-10/100 from --data-dir (the standard python pickle folders)"
            )
    options.prepare_out(args.out)
    ctx = CheckContext(
        out=args.out,
        scale=args.scale,
        device=device,
        data=args.data,
        data_dir=args.data_dir,
        progress=not args.quiet,
        together=args.together,
    )
    print(f"running {len(checks)} check(s) at scale {args.scale} on {device}; results in {args.out}/")
    try:
        verdicts = run_checks(checks, ctx, on_verdict=lambda v: print(table_row(v), flush=True))
    except ValueError as error:  # DataError included: missing files, bad data for a check
        raise options.UsageError(str(error)) from None
    n_ok = sum(v.passed for v in verdicts)
    total = sum(v.seconds for v in verdicts)
    print(f"{n_ok}/{len(verdicts)} claims hold in {total:.0f} s; wrote {args.out / 'verdicts.json'} and the figures")
    return 0 if n_ok == len(verdicts) else options.EXIT_FAILED
