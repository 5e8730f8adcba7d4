"""``bnwd train``: one run with every per-step metric online; config.json, series.jsonl, eval.jsonl, summary.json."""

from __future__ import annotations

import argparse
import sys

from bnwd.paper_checks.cli import options
from bnwd.paper_checks.cli.printing import band_text, early_warning_lines, fmt

__all__ = ["DESCRIPTION", "HELP", "add_options", "run"]

HELP = "train a scale-invariant net with SGD + weight decay, metrics online"
DESCRIPTION = (
    "Train with every per-step metric computed online; write config.json, series.jsonl, "
    "eval.jsonl and summary.json (destabilisations, periods, regime)."
)


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``bnwd train`` to ``parser``: an option per :class:`~empirical.config.RunSpec` field, and
    ``--resume``."""
    options.add_spec_options(parser)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if present")


def run(args: argparse.Namespace) -> int:
    from bnwd.empirical.checkpoints import CURRENT, PREVIOUS
    from bnwd.empirical.runs import RunSpec, build_trainer

    try:
        trainer = build_trainer(RunSpec(**options.spec_values(args)), args.out)
    except ValueError as error:  # DataError included
        raise options.UsageError(str(error)) from None
    options.prepare_out(args.out)
    try:
        resumed = args.resume and trainer.resume()
    except ValueError as error:  # a checkpoint of another run, or every checkpoint damaged
        raise options.UsageError(str(error)) from None
    if resumed:
        changed = "".join(f"; {k} {then} → {now}" for k, (then, now) in trainer.resumes[-1]["changed"].items())
        print(f"resuming from step {trainer.step} ({trainer.resumed_from.name}{changed})")
    elif args.resume:
        print(f"no checkpoint in {args.out}: starting from step 0")
    elif any((args.out / name).exists() for name in (CURRENT, PREVIOUS)):
        print(f"{args.out} holds checkpoints of an earlier run: starting over (--resume continues from them)")
    try:
        summary = trainer.run(progress=True)
    except KeyboardInterrupt:
        print(f"bnwd: interrupted at step {trainer.step}; {_resume_hint(trainer)}", file=sys.stderr)
        return options.EXIT_INTERRUPTED
    except OSError as error:  # checked before the first step: a disk filled or a folder changed since
        where = error.filename or args.out
        raise options.UsageError(
            f"cannot write {where} ({error.strerror or error}) at step {trainer.step}; {_resume_hint(trainer)}"
        ) from None
    last = trainer.series[-1]
    print(
        f"{summary['steps_trained']} steps; final loss {last['loss']:.4g}, rho {last['si_norm']:.4g}, "
        f"elr {last['elr']:.4g}\nregime {summary['regime']}: {summary['regime_rule']}"
    )
    if summary["detection_band"]:  # an undetermined series has no detection to report
        print(
            f"{summary['n_destabilizations']} destabilisations on {summary['detected_on']} (rise time "
            f"{summary['detection_window']} steps), mean period {fmt(summary['period_measured'], 0)} steps "
            f"(over the detector's band {band_text(summary)})"
        )
    _print_crossings(summary)
    _print_forecast(summary)
    print("\n".join(early_warning_lines(summary)))
    print(f"wrote {args.out / 'config.json'}, series.jsonl, eval.jsonl and summary.json")
    return 0


def _resume_hint(trainer) -> str:
    """Where ``--resume`` would go on from, for a run stopped before its end."""
    if trainer.checkpointed_at is None:
        return "no checkpoint was written, so --resume starts over (--checkpoint-every K writes them)"
    return f"--resume continues from step {trainer.checkpointed_at}"


def _print_forecast(summary: dict) -> None:
    """Each period predicted from its first quarter against the baselines, and the next destabilisation."""
    from bnwd.analysis.periods import LABELS  # here, not at the top: `bnwd train --help` loads no numpy

    for threshold, found in summary.get("period_forecast", {}).items():
        errors = ", ".join(f"{LABELS.get(k, k)} {fmt(value, 0, '.0%')}" for k, value in found["errors"].items())
        print(
            f"periods predicted at a quarter of their length, to {LABELS.get(threshold, threshold)} ({found['fed']}):"
        )
        print(f"  median |error| over {found['n_scored']} periods: {errors}")
        coverage = ", ".join(f"{LABELS.get(k, k)} {fmt(value, 0, '.0%')}" for k, value in found["coverage"].items())
        print(f"  forecast intervals ({found['level']:.0%} nominal) covered: {coverage}")
        upcoming = found["next"]
        if upcoming is not None:
            late = " (overdue)" if upcoming["overdue"] else ""
            print(
                f"  next destabilisation in {upcoming['steps_to_next']:.0f} steps{late} "
                f"({upcoming['low']:.0f} … {upcoming['high']:.0f})"
            )


def _print_crossings(summary: dict) -> None:
    """The measured η̃·s̃ before each destabilisation: the last value below the threshold (2(1−ηλ), or heavy ball's
    with momentum), the crossing, the last one."""
    found = summary.get("elr_times_sharpness_before_destabilization")
    if not found:
        return

    def cell(step, value):
        return f"{'–':>6} {'–':>9}" if step is None else f"{step:>6} {value:>9.4g}"

    threshold = summary["elr_times_sharpness_threshold"]
    name = "2(1−ηλ)" if not summary.get("momentum") else "(1+z₊)(z₊+β)/z₊ − ηλ"
    print(f"η̃·s̃ before each destabilisation (threshold {name} = {threshold:.4g}):")
    print(f"{'':>6}  {'last below':>16}  {'crossing':>16}  {'last before it':>16}")
    print(f"{'event':>6}  " + "  ".join([f"{'step':>6} {'value':>9}"] * 3))
    for e in found:
        cells = [cell(e[f"{k}_at"], e[k]) for k in ("below", "crossing")]
        cells.append(cell(e["last_measured_at"], e["last"]))
        print(f"{e['event']:>6}  " + "  ".join(cells))
