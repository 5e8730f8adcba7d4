"""``bnwd analogue``: the paper's Fig. 2 as an analogue on Fashion-MNIST (four learning rates, on a GPU)."""

from __future__ import annotations

import argparse

from bnwd.paper_checks.cli import options
from bnwd.paper_checks.cli.printing import fmt

__all__ = ["DESCRIPTION", "HELP", "PROGRESS", "add_options", "run"]

HELP = "the paper's Fig. 2 as an analogue on Fashion-MNIST (four learning rates, 391 391 steps, a GPU)"
DESCRIPTION = (
    "Train ConvNetSI c=32 at batch 128, λ=1e-3 and η in {1, 0.03, 0.01, 0.001} for as many steps as "
    "1001 CIFAR-10 epochs, on Fashion-MNIST, the four runs together; draw the paper's four panels. An analogue "
    "of the paper's experiment, not a reproduction."
)
PROGRESS = True


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``bnwd analogue`` to ``parser``."""
    options.add_spec_option(parser, "data_dir", help="folder of the four Fashion-MNIST IDX files (default: installed)")
    options.add_spec_option(parser, "device")
    # paper_checks.analogue's PAPER_STEPS and width, written here: importing that module loads torch, --help must not
    options.add_spec_option(parser, "steps", default=391_391, help="steps per run (default: %(default)s)")
    options.add_spec_option(parser, "width", default=32, help="ConvNetSI width c (default: %(default)s)")
    options.add_together_option(parser, 4, "the four learning rates")
    options.add_spec_option(parser, "allow_tf32")


def run(args: argparse.Namespace) -> int:
    from bnwd.paper_checks.analogue import NOTICE, run_analogue

    device = options.resolve_device(args.device)
    what = f"analogue trains four ConvNetSI c={args.width} runs of {args.steps} steps"
    options.require_gpu(device, args.device, what)
    options.prepare_out(args.out)
    print(f"{NOTICE}; on {device}; results in {args.out}/", flush=True)
    try:
        figure, runs = run_analogue(
            args.out,
            data_dir=args.data_dir,
            device=device,
            steps=args.steps,
            width=args.width,
            together=args.together,
            allow_tf32=args.allow_tf32,
            progress=not args.quiet,
        )
    except ValueError as error:  # DataError included: a folder without the four files
        raise options.UsageError(str(error)) from None
    print(f"{'lr':>6} {'regime':>12} {'events':>6} {'period':>9}  run")
    for measured in runs:
        summary = measured.summary
        print(
            f"{measured.spec.lr:>6g} {summary['regime']:>12} {summary['n_destabilizations']:>6d} "
            f"{fmt(summary['period_measured'])}  {measured.id}"
        )
    print(f"wrote {figure}")
    return 0
