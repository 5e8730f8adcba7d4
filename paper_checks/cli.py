"""The ``bnwd`` command line.

Every error a user can cause (a bad argument, an unwritable output folder) ends in one line on stderr and
exit status 2; a statement that fails to verify ends in exit status 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

EXIT_FAILED, EXIT_USAGE = 1, 2


class UsageError(Exception):
    """A problem with what the user asked for; reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's default prints the whole usage block first
        raise UsageError(message)


def _prepare_out(out: Path) -> None:
    """Create the output folder first: fail before the work, not after it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {out}: cannot create that folder ({error.strerror or error})") from None


def _theory(args: argparse.Namespace) -> int:
    import theory
    from theory.report import write_report

    chosen = theory.STATEMENTS
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        known = {statement.__name__: statement for statement in theory.STATEMENTS}
        unknown = [name for name in wanted if name not in known]
        if unknown or not wanted:
            raise UsageError(
                f"--only: unknown statement(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}"
            )
        chosen = tuple(known[name] for name in wanted)
    _prepare_out(args.out)

    start = time.perf_counter()
    records = []
    for statement in chosen:
        record = statement()
        records.append(record)
        print(f"{'✓' if record.verified else '✗'} {record.name:<36} {record.title}  ({record.seconds:.1f} s)")
    try:
        md, js = write_report(records, args.out)
    except OSError as error:
        raise UsageError(f"cannot write to {args.out}: {error.strerror or error}") from None
    n_ok = sum(r.verified for r in records)
    print(f"{n_ok}/{len(records)} statements verified in {time.perf_counter() - start:.1f} s; wrote {md} and {js}")
    return 0 if n_ok == len(records) else EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    """The ``bnwd`` argument parser with one sub-command per job."""
    parser = _Parser(prog="bnwd", description="Periodic behaviour of training with BatchNorm and weight decay.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    theory = commands.add_parser(
        "theory",
        help="derive and verify every statement of the theory in sympy",
        description="Prove every statement symbolically; print ✓/✗ for each; write theory.md and theory.json.",
    )
    theory.add_argument("--out", type=Path, default=Path("runs/theory"), help="output folder (default: %(default)s)")
    theory.add_argument("--only", metavar="NAMES", help="comma-separated statement names to prove (default: all)")
    theory.set_defaults(run=_theory)

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
        return 130


if __name__ == "__main__":
    sys.exit(main())
