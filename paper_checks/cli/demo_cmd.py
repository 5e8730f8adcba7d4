"""``bnwd demo``: the theory, a simulated sweep and a small real sweep on digits, in one report."""

from __future__ import annotations

import argparse
import time

from bnwd.paper_checks.cli import options

__all__ = ["DESCRIPTION", "HELP", "PROGRESS", "add_options", "run"]

HELP = "theory, a simulated sweep and a small real sweep on digits, in one report (minutes on a CPU)"
DESCRIPTION = "Verify the theory, simulate a grid, train a small grid on digits; write report.md with figures."
PROGRESS = True


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``bnwd demo`` to ``parser``."""
    options.add_spec_option(parser, "device")


def run(args: argparse.Namespace) -> int:
    from bnwd.paper_checks.demo import run_demo

    device = options.resolve_device(args.device)
    options.prepare_out(args.out)
    start = time.perf_counter()
    report = run_demo(args.out, device=device, progress=not args.quiet)
    print(f"demo done in {time.perf_counter() - start:.0f} s; open {report}")
    return 0
