"""Config-steps per second of K runs trained together (:func:`empirical.batched.train_together`) against the same K
runs one after another and one run alone, each a whole ``bnwd`` run (trainer, monitor, records on disk); against the
device's FLOP floor (a large matmul in the same process); and the projected wall time of a 391 391-step run (the
paper's 1001 CIFAR epochs at batch 128).

    .venv/bin/python benchmarks/batched_training.py [--members 8] [--steps 48] [--nets c8 c32] [--device cpu]
        [--channels-last] [--allow-tf32] [--out FILE]

On a GPU, ``benchmarks/gpu_session.sh`` runs it with the shortened analogue, as one command.

Nets: ConvNetSI c=8 on digits (1×8×8) and c=32 on CIFAR-shaped synthetic data (3×32×32), batch 128, members with
their own η (log-spaced), λ = 1e-3 and seeds. Each mode runs once for warm-up and then ``--repeats`` times; the
medians are reported. Building the trainers (data, models, the SI search) is not timed.

Writes ``benchmarks/results/batched_training.json`` (``_results``): the matmul's GFLOP/s and the numerics
(``setup``), per net and mode the config-steps per second and their share of the floor (``config-steps per
second``), and per net the gain of training together and the projected hours (``together``); the last numbers are
on ``docs/results.md``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import add_out_option, write_results
from train_step import conv_flops, matmul_gflops

from bnwd.empirical.batched import train_together
from bnwd.empirical.runs import RunSpec, build_trainer, resolve_device
from bnwd.paper_checks.analogue import PAPER_STEPS

NETS = {"c8": ("digits", 8), "c32": ("synthetic", 32)}


def member_specs(net: str, members: int, steps: int, device: str, **numerics) -> list[RunSpec]:
    """``members`` runs of ``net`` differing in η and seed; ``numerics``: ``channels_last``, ``allow_tf32``."""
    data, width = NETS[net]
    base = RunSpec(
        lr=1.0, wd=1e-3, steps=steps, width=width, data=data, batch_size=128, eval_points=0, device=device, **numerics
    )  # fmt: skip
    return [base.replace(lr=float(lr), seed=i) for i, lr in enumerate(np.geomspace(0.1, 3.0, members))]


def run_time(specs: list[RunSpec], together: bool, folder: Path) -> float:
    """Seconds to train ``specs`` (together, or one after another), not counting building their trainers."""
    loaded: dict = {}
    trainers = [build_trainer(spec, folder / str(i), loaded=loaded) for i, spec in enumerate(specs)]
    sync = torch.cuda.synchronize if specs[0].device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    if together:
        train_together(trainers, progress=False)
    else:
        for trainer in trainers:
            trainer.run(progress=False)
    sync()
    return time.perf_counter() - start


def measure(net: str, members: int, steps: int, repeats: int, device: str, **numerics) -> dict:
    specs = member_specs(net, members, steps, device, **numerics)
    modes = {"one run": (specs[:1], False), "one after another": (specs, False), "together": (specs, True)}
    seconds = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, (chosen, together) in modes.items():
            times = [run_time(chosen, together, Path(scratch) / f"{name}-{r}") for r in range(repeats + 1)]
            seconds[name] = float(np.median(times[1:]))  # the first is the warm-up
    trainer = build_trainer(specs[0], Path(tempfile.mkdtemp()))
    x = trainer.data.train_x[:128]
    return {
        "flops": conv_flops(trainer.model, x),
        "shape": tuple(x.shape[1:]),
        "config_steps_per_s": {name: len(modes[name][0]) * steps / s for name, s in seconds.items()},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8, help="K: runs trained together")
    parser.add_argument("--steps", type=int, default=48, help="steps of each run per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per mode (after one warm-up)")
    parser.add_argument("--nets", nargs="+", choices=sorted(NETS), default=["c8", "c32"])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--channels-last", action="store_true", help="NHWC tensors (RunSpec.channels_last)")
    parser.add_argument("--allow-tf32", action="store_true", help="CUDA: TF32 (RunSpec.allow_tf32; default strict)")
    add_out_option(parser, "batched_training")
    args = parser.parse_args()
    device = resolve_device(args.device)
    gflops = matmul_gflops(device=device)
    print(
        f"{device}, {torch.get_num_threads()} threads; matmul {gflops:.0f} GFLOP/s (float32); "
        f"channels_last={args.channels_last}, allow_tf32={args.allow_tf32}"
    )
    numerics = {"channels_last": args.channels_last, "allow_tf32": args.allow_tf32}
    tables = {"setup": [{"matmul_gflops": gflops} | numerics], "config-steps per second": [], "together": []}
    for net in args.nets:
        found = measure(net, args.members, args.steps, args.repeats, device, **numerics)
        rates = found["config_steps_per_s"]
        floor = gflops * 1e9 / found["flops"]
        shape = "x".join(map(str, found["shape"]))
        gflop = found["flops"] / 1e9
        print(f"ConvNetSI {net} on {shape}, batch 128 ({gflop:.3f} GFLOP a step; floor {floor:.0f} steps/s):")
        for name, rate in rates.items():
            print(f"  {name:<18} {rate:8.1f} config-steps/s ({rate / floor:.1%} of the floor)")
        gain = {
            "net": net,
            "members": args.members,
            "together_over_one_after_another": rates["together"] / rates["one after another"],
            "paper_run_alone_h": PAPER_STEPS / rates["one run"] / 3600,
            "paper_runs_together_h": PAPER_STEPS * args.members / rates["together"] / 3600,
        }
        print(
            f"  together / one after another: {gain['together_over_one_after_another']:.2f}x "
            f"({args.members} members); a {PAPER_STEPS:,}-step run alone: {gain['paper_run_alone_h']:.1f} h, "
            f"{args.members} together: {gain['paper_runs_together_h']:.1f} h"
        )
        tables["config-steps per second"] += [
            {"net": net, "shape": shape, "gflop_per_step": gflop, "mode": name, "config_steps_per_s": rate}
            | {"share_of_floor": rate / floor}
            for name, rate in rates.items()
        ]
        tables["together"].append(gain)
    write_results(args.out, "batched_training", tables, device=device)


if __name__ == "__main__":
    main()
