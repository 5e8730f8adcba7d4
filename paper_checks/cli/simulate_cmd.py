"""``bnwd simulate``: a grid of (lr, wd, momentum) on a toy scale-invariant model, in one numpy batch."""

from __future__ import annotations

import argparse

from bnwd.paper_checks.cli import options
from bnwd.paper_checks.cli.printing import band_text, fmt, slope_text

__all__ = ["DESCRIPTION", "HELP", "MLP_BATCH_SIZE", "add_options", "run"]

MLP_BATCH_SIZE = 512
"""``--model mlp``'s minibatch unless told otherwise: at 128 the MLP on digits is noise-dominated, at 512 it is
periodic like the nets (issue 30's measurements)."""

HELP = "simulate a grid of (lr, wd, momentum) on a toy scale-invariant model in one batch"
DESCRIPTION = (
    "Run the whole grid as one numpy batch; detect destabilisations and periods; compare them with "
    "the period law; write summary.json, period_vs_etalambda.png and one series CSV per config."
)


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``bnwd simulate`` to ``parser``."""
    parser.add_argument(
        "--model",
        choices=("rayleigh", "softmax", "mlp"),
        default="rayleigh",
        help="toy model: the Rayleigh quotient, softmax regression on digits, or a BatchNorm MLP with a frozen head "
        "on digits (default: %(default)s)",
    )
    positive_list = options.numbers(float, "> 0", many=True)
    parser.add_argument("--lr", type=positive_list, default=[0.5, 1.0, 2.0], help="learning rates, comma-separated")
    parser.add_argument(
        "--wd", type=positive_list, default=[0.0025, 0.005, 0.01], help="weight decays, comma-separated"
    )
    parser.add_argument(
        "--momentum",
        type=options.numbers(float, "in [0, 1)", many=True),
        default=[0.0],
        help="momenta in [0, 1) (default: 0)",
    )
    parser.add_argument(
        "--steps", type=options.positive_int, default=20000, help="optimiser steps (default: %(default)s)"
    )
    parser.add_argument("--mode", choices=("free", "fixed_norm"), default="free", help="fixed_norm projects to ρ₀")
    parser.add_argument("--si-norm0", type=options.positive_number, default=1.0, help="initial norm ρ₀")
    parser.add_argument(
        "--dim", type=options.positive_int, default=64, help="rayleigh: dimension (default: %(default)s)"
    )
    parser.add_argument(
        "--noise",
        type=options.numbers(float, ">= 0"),
        default=None,
        help="rayleigh: gradient noise σ, 0 for the deterministic toy (default: simulate.models.DEFAULT_NOISE)",
    )
    parser.add_argument(
        "--batch-size",
        type=options.positive_int,
        default=None,
        help=f"softmax, mlp: minibatch size (default: full batch for softmax, {MLP_BATCH_SIZE} for mlp)",
    )
    parser.add_argument("--logit-scale", type=options.positive_number, default=10.0, help="softmax: logit norm s")
    parser.add_argument(
        "--width", type=options.positive_int, default=32, help="mlp: units per hidden layer (default: %(default)s)"
    )
    parser.add_argument(
        "--depth", type=options.positive_int, default=3, help="mlp: hidden layers (default: %(default)s)"
    )
    parser.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="mlp: precision of its forward and backward passes; float32 takes about 0.6 × the time",
    )
    parser.add_argument(
        "--window",
        type=options.positive_int,
        default=None,
        help="steps a jump may take to rise (default: measured per run)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights and the minibatches, and the mlp's frozen head (default: %(default)s)",
    )


def _model(args: argparse.Namespace):
    """The toy model the options describe."""
    from bnwd.simulate.models import DEFAULT_NOISE, BatchNormMLP, RayleighQuotient, SoftmaxRegression

    if args.model == "rayleigh":
        if args.dim < 2:
            raise options.UsageError("--dim must be >= 2 for the Rayleigh quotient")
        return RayleighQuotient.evenly_spaced(args.dim, noise=DEFAULT_NOISE if args.noise is None else args.noise)
    if args.model == "softmax":
        return SoftmaxRegression.digits(logit_scale=args.logit_scale, batch_size=args.batch_size)
    batch_size = MLP_BATCH_SIZE if args.batch_size is None else args.batch_size
    return BatchNormMLP.digits(args.width, args.depth, batch_size, head_seed=args.seed, dtype=args.dtype)


def run(args: argparse.Namespace) -> int:
    from bnwd.analysis.destabilization import DetectorSettings
    from bnwd.simulate.sweep import simulate_grid

    worst = max(args.lr) * max(args.wd)
    if worst >= 1:
        raise options.UsageError(f"lr * wd must be < 1 for every config; the grid reaches {worst:g}")
    try:
        model = _model(args)
    except ValueError as error:  # sizes the model cannot take (e.g. a minibatch larger than the data set)
        raise options.UsageError(str(error)) from error
    options.prepare_out(args.out)
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
            f"{row['n_destabilizations']:>6d} {fmt(row['period_measured'])} {band_text(row):>15} "
            f"{fmt(row['period_predicted'])} {fmt(row['relative_error'], 8, '+.1%')} "
            f"{fmt(row['period_predicted_with_delay'])} {fmt(row['relative_error_with_delay'], 8, '+.1%')} "
            f"{fmt(row['period_predicted_a_priori'])} {fmt(row['relative_error_a_priori'], 8, '+.1%')}"
        )
    print(slope_text(summary["frequency_slope"], "configs", summary["frequency_slope_a_priori"]))
    print(f"wrote {args.out / 'summary.json'}, {args.out / 'period_vs_etalambda.png'} and {args.out / 'series'}/")
    return 0
