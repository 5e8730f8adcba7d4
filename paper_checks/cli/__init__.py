"""The ``bnwd`` command line: one module per command (``<command>_cmd``), what they share in
:mod:`~paper_checks.cli.options` and :mod:`~paper_checks.cli.printing`.

Every error a user can cause (a bad argument, an unwritable output folder, a disk that fills) ends in one line on
stderr and exit status 2; a statement that fails to verify ends in exit status 1; an interrupt in exit status 130.
Building the parser imports no torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bnwd.paper_checks.cli import (
    analogue_cmd,
    check_cmd,
    demo_cmd,
    simulate_cmd,
    sweep_cmd,
    theory_cmd,
    train_cmd,
)
from bnwd.paper_checks.cli.options import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, Parser, UsageError, add_command

COMMANDS = (theory_cmd, simulate_cmd, train_cmd, check_cmd, demo_cmd, analogue_cmd, sweep_cmd)
"""The command modules, in the order ``bnwd --help`` lists them. Module ``<name>_cmd`` is ``bnwd <name>``: its
``HELP`` and ``DESCRIPTION``, ``add_options(parser)``, ``run(args)`` (the exit status), and ``PROGRESS = True`` if it
shows progress bars (then it has ``--quiet``)."""

__all__ = ["COMMANDS", "EXIT_FAILED", "EXIT_USAGE", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``bnwd`` argument parser with one sub-command per job."""
    parser = Parser(prog="bnwd", description="Periodic behaviour of training with BatchNorm and weight decay.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for command in COMMANDS:
        name = command.__name__.rsplit(".", 1)[1].removesuffix("_cmd")
        progress = getattr(command, "PROGRESS", False)
        parser_of = add_command(
            commands, name, command.run, help=command.HELP, description=command.DESCRIPTION, progress=progress
        )
        command.add_options(parser_of)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bnwd``; return the exit status (0 ok, 1 a check failed, 2 a usage error)."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # ✓/✗ on a terminal that cannot show them
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except UsageError as error:
        print(f"bnwd: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("bnwd: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:  # a disk that filled, a folder removed under a running command
        where = f"{error.filename}: " if error.filename else ""
        print(f"bnwd: error: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
