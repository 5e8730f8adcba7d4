"""``bnwd theory``: prove every statement of the theory in sympy; write theory.md and theory.json."""

from __future__ import annotations

import argparse
import time

from bnwd.paper_checks.cli import options

__all__ = ["DESCRIPTION", "HELP", "add_options", "run"]

HELP = "derive and verify every statement of the theory in sympy"
DESCRIPTION = "Prove every statement symbolically; print ✓/✗ for each; write theory.md and theory.json."


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``bnwd theory`` to ``parser``."""
    parser.add_argument("--only", metavar="NAMES", help="comma-separated statement names to prove (default: all)")


def run(args: argparse.Namespace) -> int:
    from bnwd import theory
    from bnwd.theory.report import write_report

    chosen = theory.STATEMENTS
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        known = {statement.__name__: statement for statement in theory.STATEMENTS}
        unknown = [name for name in wanted if name not in known]
        if unknown or not wanted:
            raise options.UsageError(
                f"--only: unknown statement(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}"
            )
        chosen = tuple(known[name] for name in wanted)
    options.prepare_out(args.out)

    start = time.perf_counter()
    records = []
    for statement in chosen:
        record = statement()
        records.append(record)
        print(f"{'✓' if record.verified else '✗'} {record.name:<36} {record.title}  ({record.seconds:.1f} s)")
    try:
        md, js = write_report(records, args.out)
    except OSError as error:
        raise options.UsageError(f"cannot write to {args.out}: {error.strerror or error}") from None
    n_ok = sum(r.verified for r in records)
    print(f"{n_ok}/{len(records)} statements verified in {time.perf_counter() - start:.1f} s; wrote {md} and {js}")
    return 0 if n_ok == len(records) else options.EXIT_FAILED
