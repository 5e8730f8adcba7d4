"""The ``bnwd`` command line.

Every error a user can cause (a bad argument, an unwritable output folder) ends in one line on stderr and
exit status 2; a statement that fails to verify ends in exit status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from paper_checks import sweep_cmd

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


def _number_list(text: str, ok, domain: str) -> list[float]:
    """A comma-separated list of finite numbers, each in ``domain`` (the grid values of one hyper-parameter)."""
    try:
        values = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or not all(math.isfinite(v) and ok(v) for v in values):
        raise argparse.ArgumentTypeError(f"needs one or more {domain}: {text!r}")
    return values


def _positive_list(text: str) -> list[float]:
    return _number_list(text, lambda v: v > 0, "positive finite numbers")


def _momentum_list(text: str) -> list[float]:
    return _number_list(text, lambda v: 0 <= v < 1, "momentum values in [0, 1)")


def _one_number(ok, domain: str):
    """An argparse type for a single finite number in ``domain``."""

    def parse(text: str) -> float:
        values = _number_list(text, ok, domain)
        if len(values) != 1:
            raise argparse.ArgumentTypeError(f"needs {domain}: {text!r}")
        return values[0]

    return parse


_positive_number = _one_number(lambda v: v > 0, "one positive finite number")
_nonnegative_number = _one_number(lambda v: v >= 0, "one non-negative number")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return value


def _simulate(args: argparse.Namespace) -> int:
    from simulate.destabilization import DetectorSettings
    from simulate.models import DEFAULT_NOISE, RayleighQuotient, SoftmaxRegression
    from simulate.sweep import simulate_grid

    worst = max(args.lr) * max(args.wd)
    if worst >= 1:
        raise UsageError(f"lr * wd must be < 1 for every config; the grid reaches {worst:g}")
    if args.model == "rayleigh":
        if args.dim < 2:
            raise UsageError("--dim must be >= 2 for the Rayleigh quotient")
        noise = DEFAULT_NOISE if args.noise is None else args.noise
        model = RayleighQuotient.evenly_spaced(args.dim, noise=noise)
    else:
        model = SoftmaxRegression.digits(logit_scale=args.logit_scale, batch_size=args.batch_size)
    _prepare_out(args.out)
    summary = simulate_grid(
        model,
        args.lr,
        args.wd,
        args.momentum,
        steps=args.steps,
        out=args.out,
        seed=args.seed,
        si_norm0=args.si_norm0,
        mode=args.mode,
        settings=DetectorSettings(window=args.window),
    )
    print(
        f"{'lr':>8} {'wd':>8} {'mom':>5} {'regime':>12} {'events':>6} {'period':>9} {'band':>15} {'predicted':>9} "
        f"{'rel.err':>8} {'+delay':>9} {'rel.err':>8} {'a priori':>9} {'rel.err':>8}"
    )
    for row in summary["rows"]:
        print(
            f"{row['lr']:>8g} {row['wd']:>8g} {row['momentum']:>5g} {row['regime']:>12} "
            f"{row['n_destabilizations']:>6d} {_fmt(row['period_measured'])} {band_text(row):>15} "
            f"{_fmt(row['period_predicted'])} {_fmt(row['relative_error'], 8, '+.1%')} "
            f"{_fmt(row['period_predicted_with_delay'])} {_fmt(row['relative_error_with_delay'], 8, '+.1%')} "
            f"{_fmt(row['period_predicted_a_priori'])} {_fmt(row['relative_error_a_priori'], 8, '+.1%')}"
        )
    print(slope_text(summary["frequency_slope"], "configs", summary["frequency_slope_a_priori"]))
    print(f"wrote {args.out / 'summary.json'}, {args.out / 'period_vs_etalambda.png'} and {args.out / 'series'}/")
    return 0


def _train_spec(args: argparse.Namespace):
    """The :class:`~empirical.runs.RunSpec` of the ``bnwd train`` options in ``args``."""
    from empirical.runs import RunSpec

    names = {f.name for f in dataclasses.fields(RunSpec)}
    values = {name: getattr(args, name) for name in names if hasattr(args, name)}
    if values.get("data_dir") is not None:
        values["data_dir"] = str(values["data_dir"])
    return RunSpec(**values)


def _train(args: argparse.Namespace) -> int:
    from empirical.runs import build_trainer

    try:
        trainer = build_trainer(_train_spec(args), args.out)
    except ValueError as error:  # DataError included
        raise UsageError(str(error)) from None
    _prepare_out(args.out)
    try:
        resumed = args.resume and trainer.resume()
    except ValueError as error:  # every checkpoint damaged
        raise UsageError(str(error)) from None
    if resumed:
        print(f"resuming from step {trainer.step} ({trainer.resumed_from.name})")
    summary = trainer.run(progress=True)
    last = trainer.series[-1]
    print(
        f"{summary['steps_trained']} steps; final loss {last['loss']:.4g}, rho {last['si_norm']:.4g}, "
        f"elr {last['elr']:.4g}\nregime {summary['regime']}: {summary['regime_rule']}"
    )
    if summary["detection_band"]:  # an undetermined series has no detection to report
        print(
            f"{summary['n_destabilizations']} destabilisations on {summary['detected_on']} (rise time "
            f"{summary['detection_window']} steps), mean period {_fmt(summary['period_measured'], 0)} steps "
            f"(over the detector's band {band_text(summary)})"
        )
    _print_crossings(summary)
    _print_forecast(summary)
    print(f"wrote {args.out / 'config.json'}, series.jsonl, eval.jsonl and summary.json")
    return 0


def _print_forecast(summary: dict) -> None:
    """Each period predicted from its first quarter against the baselines, and the next destabilisation."""
    for threshold, found in summary.get("period_forecast", {}).items():
        errors = ", ".join(f"{name} {_fmt(value, 0, '.0%')}" for name, value in found["errors"].items())
        print(f"periods predicted at a quarter of their length, to {threshold} ({found['fed']}):")
        print(f"  median |error| over {found['n_scored']} periods: {errors}")
        coverage = ", ".join(f"{name} {_fmt(value, 0, '.0%')}" for name, value in found["coverage"].items())
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


def _resolve_device(device: str) -> str:
    from empirical.runs import resolve_device

    try:
        return resolve_device(device)
    except ValueError as error:  # "device cuda: …" names the option without its dashes
        raise UsageError(f"--{error}") from None


def _require_gpu(device: str, asked: str, what: str) -> None:
    """A usage error for work meant for a GPU that ``device`` (resolved from ``asked``) is not, unless the user
    asked for the CPU by name."""
    if device != "cuda" and asked != "cpu":
        raise UsageError(f"{what} and needs a CUDA GPU (pass --device cpu to run it on the CPU regardless)")


def _check(args: argparse.Namespace) -> int:
    from paper_checks.checks import run_checks, select, table_row
    from paper_checks.common import CheckContext

    try:
        checks = select(args.claims.split(",") if args.claims else None)
    except ValueError as error:
        raise UsageError(f"--claims: {error}") from None
    if args.plan:  # trains nothing, so it needs neither the GPU nor the data
        from paper_checks.plan import format_plan, plan_checks

        ctx = CheckContext(out=args.out, scale=args.scale, device=args.device, data=args.data)
        print(format_plan(plan_checks(checks, ctx), args.scale))
        return 0
    device = _resolve_device(args.device)
    if args.scale == "paper":
        _require_gpu(device, args.device, "--scale paper trains the paper's nets for 1001 epochs")
        if args.data_dir is None:
            raise UsageError("--scale paper reads CIFAR-10/100 from --data-dir (the standard python pickle folders)")
    _prepare_out(args.out)
    ctx = CheckContext(
        out=args.out,
        scale=args.scale,
        device=device,
        data=args.data,
        data_dir=None if args.data_dir is None else str(args.data_dir),
        progress=not args.quiet,
        together=args.together,
    )
    print(f"running {len(checks)} check(s) at scale {args.scale} on {device}; results in {args.out}/")
    try:
        verdicts = run_checks(checks, ctx, on_verdict=lambda v: print(table_row(v), flush=True))
    except ValueError as error:  # DataError included: missing files, bad data for a check
        raise UsageError(str(error)) from None
    n_ok = sum(v.passed for v in verdicts)
    total = sum(v.seconds for v in verdicts)
    print(f"{n_ok}/{len(verdicts)} claims hold in {total:.0f} s; wrote {args.out / 'verdicts.json'} and the figures")
    return 0 if n_ok == len(verdicts) else EXIT_FAILED


def _analogue(args: argparse.Namespace) -> int:
    from paper_checks.analogue import NOTICE, run_analogue

    device = _resolve_device(args.device)
    _require_gpu(device, args.device, "analogue trains four ConvNetSI c=32 runs of 391 391 steps")
    _prepare_out(args.out)
    print(f"{NOTICE}; on {device}; results in {args.out}/", flush=True)
    try:
        figure, runs = run_analogue(
            args.out,
            data_dir=None if args.data_dir is None else str(args.data_dir),
            device=device,
            steps=args.steps,
            width=args.width,
            together=args.together,
            allow_tf32=args.allow_tf32,
            progress=not args.quiet,
        )
    except ValueError as error:  # DataError included: a folder without the four files
        raise UsageError(str(error)) from None
    print(f"{'lr':>6} {'regime':>12} {'events':>6} {'period':>9}  run")
    for run in runs:
        summary = run.summary
        print(
            f"{run.spec.lr:>6g} {summary['regime']:>12} {summary['n_destabilizations']:>6d} "
            f"{_fmt(summary['period_measured'])}  {run.id}"
        )
    print(f"wrote {figure}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from paper_checks.demo import run_demo

    device = _resolve_device(args.device)
    _prepare_out(args.out)
    start = time.perf_counter()
    report = run_demo(args.out, device=device, progress=not args.quiet)
    print(f"demo done in {time.perf_counter() - start:.0f} s; open {report}")
    return 0


def _fmt(value, width: int = 9, spec: str = ".1f") -> str:
    text = "—" if value is None or not math.isfinite(value) else format(value, spec)
    return f"{text:>{width}}"


def band_text(row: dict) -> str:
    """The mean period's min–max over the detector's sensitivity band, e.g. ``98.2–143.1``."""
    return f"{_fmt(row['period_band_low'], 0)}–{_fmt(row['period_band_high'], 0)}"


def slope_text(fit: dict, what: str, a_priori: float | None = None) -> str:
    """One line: the slope of log frequency against log ηλ, its interval, its range over the detector's band, and
    what theory expects: 1 by the period law, and ``a_priori`` (:func:`simulate.analysis.a_priori_slope`) if given."""
    low, high = fit["slope_ci"]
    expected = "the period law: 1" + ("" if a_priori is None else f"; a priori: {_fmt(a_priori, 0, '.3f')}")
    return (
        f"slope of log frequency vs log ηλ: {_fmt(fit['slope'], 0, '.3f')} (95% CI {_fmt(low, 0, '.3f')} … "
        f"{_fmt(high, 0, '.3f')}; {_fmt(fit['slope_band_low'], 0, '.3f')} … {_fmt(fit['slope_band_high'], 0, '.3f')} "
        f"over the detector's band; {fit['n_points']} periodic {what}; {expected})"
    )


def add_together_option(parser: argparse.ArgumentParser, default: int, which: str) -> None:
    """``--together K``: how many runs of one architecture and batch size are trained as one computation
    (:func:`empirical.runs.train_runs`); ``which`` names the runs it applies to."""
    parser.add_argument(
        "--together",
        type=_positive_int,
        default=default,
        metavar="K",
        help=f"train up to K runs of one architecture as one computation ({which}; 1: one at a time; "
        "default: %(default)s)",
    )


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """Add every ``bnwd train`` option except ``--lr``, ``--wd``, ``--seed``, ``--out`` and ``--resume`` (shared with
    ``bnwd sweep``, where those become grids or are implied); their ``dest`` names are the
    :class:`~empirical.runs.RunSpec` fields."""
    parser.add_argument(
        "--model",
        choices=("convnet_si", "convnet_si_affine", "resnet18_si", "resnet18_si_affine"),
        default="convnet_si",
    )
    parser.add_argument("--width", type=_positive_int, default=8, help="channels of the first block (default: 8)")
    parser.add_argument(
        "--data", choices=("digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "synthetic"), default="digits"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="folder of the data files (CIFAR: required)")
    parser.add_argument(
        "--train-subset", type=_positive_int, default=None, help="train on the first N samples of the split only"
    )
    parser.add_argument("--momentum", type=_one_number(lambda v: 0 <= v < 1, "one number in [0, 1)"), default=0.0)
    parser.add_argument("--batch-size", type=_positive_int, default=128)
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=_positive_int, default=4000, help="optimiser steps (default: %(default)s)")
    length.add_argument("--epochs", type=_positive_int, default=None, help="passes over the data instead of --steps")
    parser.add_argument("--noninv-lr", type=_nonnegative_number, default=None, help="lr of the other parameters")
    parser.add_argument(
        "--fix-norm",
        type=_nonnegative_number,
        nargs="?",
        const=0.0,
        default=None,
        help="project the SI weights to this norm after each step (no value: their initial norm)",
    )
    parser.add_argument("--fix-elr", type=_positive_number, default=None, help="fixed effective learning rate")
    parser.add_argument("--full-batch", action="store_true", help="deterministic full-batch GD (ghost batches)")
    parser.add_argument(
        "--augment", action="store_true", help="random crop and flip, as suits the data (empirical.data.AUGMENTATION)"
    )
    parser.add_argument("--init-scale", type=_positive_number, default=10.0, help="Frobenius norm of the head")
    parser.add_argument("--eval-points", type=int, default=20, help="log-spaced evaluations (default: 20)")
    parser.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints (0: none)")
    parser.add_argument(
        "--sharpness-every",
        type=int,
        default=0,
        help="measure the effective sharpness at least every K steps and locate each crossing of 2(1−ηλ) (0: never)",
    )
    parser.add_argument(
        "--batch-sharpness-every", type=int, default=0, help="measure the batch sharpness every K steps (0: never)"
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory format (faster on CPUs)")
    parser.add_argument(
        "--allow-tf32", action="store_true", help="CUDA: TF32 matmuls and convolutions (faster; default strict float32)"
    )


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

    sim = commands.add_parser(
        "simulate",
        help="simulate a grid of (lr, wd, momentum) on a toy scale-invariant model in one batch",
        description="Run the whole grid as one numpy batch; detect destabilisations and periods; compare them with "
        "the period law; write summary.json, period_vs_etalambda.png and one series CSV per config.",
    )
    sim.add_argument(
        "--model", choices=("rayleigh", "softmax"), default="rayleigh", help="toy model (default: %(default)s)"
    )
    sim.add_argument("--lr", type=_positive_list, default=[0.5, 1.0, 2.0], help="learning rates, comma-separated")
    sim.add_argument("--wd", type=_positive_list, default=[0.0025, 0.005, 0.01], help="weight decays, comma-separated")
    sim.add_argument("--momentum", type=_momentum_list, default=[0.0], help="momenta in [0, 1) (default: 0)")
    sim.add_argument("--steps", type=_positive_int, default=20000, help="optimiser steps (default: %(default)s)")
    sim.add_argument("--mode", choices=("free", "fixed_norm"), default="free", help="fixed_norm projects to ρ₀")
    sim.add_argument("--si-norm0", type=_positive_number, default=1.0, help="initial norm ρ₀")
    sim.add_argument("--dim", type=_positive_int, default=64, help="rayleigh: dimension (default: %(default)s)")
    sim.add_argument(
        "--noise",
        type=_nonnegative_number,
        default=None,
        help="rayleigh: gradient noise σ, 0 for the deterministic toy (default: simulate.models.DEFAULT_NOISE)",
    )
    sim.add_argument("--batch-size", type=_positive_int, default=None, help="softmax: minibatch size (default: full)")
    sim.add_argument("--logit-scale", type=_positive_number, default=10.0, help="softmax: logit norm s")
    sim.add_argument(
        "--window", type=_positive_int, default=None, help="steps a jump may take to rise (default: measured per run)"
    )
    sim.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    sim.add_argument("--out", type=Path, default=Path("runs/simulate"), help="output folder (default: %(default)s)")
    sim.set_defaults(run=_simulate)

    train = commands.add_parser(
        "train",
        help="train a scale-invariant net with SGD + weight decay, metrics online",
        description="Train with every per-step metric computed online; write config.json, series.jsonl, "
        "eval.jsonl and summary.json (destabilisations, periods, regime).",
    )
    add_train_options(train)
    train.add_argument("--lr", type=_positive_number, required=True, help="learning rate of the SI weights")
    train.add_argument("--wd", type=_nonnegative_number, required=True, help="weight decay")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if present")
    train.add_argument("--out", type=Path, default=Path("runs/train"), help="output folder (default: %(default)s)")
    train.set_defaults(run=_train)

    check = commands.add_parser(
        "check",
        help="run the paper's claims as checks: verdicts, numbers, tolerances, figures",
        description="Run each claim of the paper (C1-C10) as a check; print a table; write verdicts.json and one "
        "figure per claim; exit 1 if any claim fails.",
    )
    check.add_argument("--claims", metavar="C1,C3,...", default=None, help="claims to check (default: all)")
    check.add_argument(
        "--scale",
        choices=("tiny", "small", "paper"),
        default="small",
        help="small: digits on a CPU in minutes; paper: the paper's nets and CIFAR on a GPU; tiny: a seconds-long "
        "smoke run of the pipeline (default: %(default)s)",
    )
    check.add_argument(
        "--data",
        choices=("digits", "mnist", "fashion-mnist", "cifar10", "cifar100"),
        default=None,
        help="data for every run (default: each check's own)",
    )
    check.add_argument("--data-dir", type=Path, default=None, help="folder of the data files (CIFAR: required)")
    check.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    check.add_argument("--quiet", action="store_true", help="no progress bars")
    add_together_option(check, 8, "C3's grid, C7's runs")
    check.add_argument(
        "--plan",
        action="store_true",
        help="train nothing: list each claim's runs with their steps, ηλ and the periods expected, and the totals",
    )
    check.add_argument("--out", type=Path, default=Path("runs/check"), help="output folder (default: %(default)s)")
    check.set_defaults(run=_check)

    demo = commands.add_parser(
        "demo",
        help="theory, a simulated sweep and a small real sweep on digits, in one report (minutes on a CPU)",
        description="Verify the theory, simulate a grid, train a small grid on digits; write report.md with figures.",
    )
    demo.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default: %(default)s)")
    demo.set_defaults(run=_demo)

    analogue = commands.add_parser(
        "analogue",
        help="the paper's Fig. 2 as an analogue on Fashion-MNIST (four learning rates, 391 391 steps, a GPU)",
        description="Train ConvNetSI c=32 at batch 128, λ=1e-3 and η in {1, 0.03, 0.01, 0.001} for as many steps as "
        "1001 CIFAR-10 epochs, on Fashion-MNIST, the four runs together; draw the paper's four panels. An analogue "
        "of the paper's experiment, not a reproduction.",
    )
    analogue.add_argument(
        "--data-dir", type=Path, default=None, help="folder of the four Fashion-MNIST IDX files (default: installed)"
    )
    analogue.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    analogue.add_argument("--steps", type=_positive_int, default=391_391, help="steps per run (default: %(default)s)")
    analogue.add_argument("--width", type=_positive_int, default=32, help="ConvNetSI width c (default: 32)")
    add_together_option(analogue, 4, "the four learning rates")
    analogue.add_argument("--allow-tf32", action="store_true", help="TF32 on CUDA: faster, ~1e-3 relative (recorded)")
    analogue.add_argument("--quiet", action="store_true", help="no progress bars")
    analogue.add_argument(
        "--out", type=Path, default=Path("runs/analogue"), help="output folder (default: %(default)s)"
    )
    analogue.set_defaults(run=_analogue)

    sweep_cmd.add_parser(commands)
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
