"""Step time of a plain SGD loop without :class:`empirical.monitor.Monitor`, with it (``early_warning=False``, its
default sync) and with its early warning brought to the host at every step (``sync_every=1``), in one run, for
ConvNetSI c=32 on CIFAR-shaped synthetic data (3×32×32) and c=8 on digits (1×8×8), batch 128; the monitor's overhead,
the warning's over the monitor alone, and the step against its FLOP floor (the step's FLOPs over the GFLOP/s of a large
matmul measured in the same run).

    .venv/bin/python benchmarks/train_step.py [--steps 10] [--repeats 15] [--nets c8 c32] [--channels-last] [--out FILE]

The three loops run in alternating blocks of ``--steps`` steps (after a warm-up block each), so that drifts of the
machine hit both; the step time is the median over the ``--repeats`` blocks, each overhead the median of the ratios
of adjacent blocks, with their interquartile range.

Writes ``benchmarks/results/train_step.json`` (``_results``): the matmul's GFLOP/s (``setup``) and per net the step
times, the overhead with its interquartile range and the FLOP floor (``step time``); the last numbers are on
``docs/results.md``.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from _results import add_out_option, write_results

from bnwd.empirical.data import load_dataset
from bnwd.empirical.monitor import Monitor
from bnwd.empirical.nets import build_model

NETS = {"c32": ("synthetic", 32), "c8": ("digits", 8)}


def conv_flops(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Forward multiply-adds ×2 of every conv and linear layer for input ``x``, times 3 for forward + backward."""
    total = 0.0

    def hook(module, _inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += 2.0 * module.in_channels * k * output.numel() / module.groups
        elif isinstance(module, torch.nn.Linear):
            total += 2.0 * module.in_features * output.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return 3.0 * total


def matmul_gflops(n: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """GFLOP/s of a float32 ``n``×``n`` matmul on ``device`` (TF32 as the process has set it)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    a @ b
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2.0 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def loop(model, optimizer, x, y, monitor=None):
    """One step of the user's loop, logging the loss to ``monitor`` when there is one."""

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if monitor is not None:
            monitor.log(loss=loss.detach())

    return step


def block_time(step, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def measure(net: str, steps: int, repeats: int, channels_last: bool) -> dict:
    data_name, width = NETS[net]
    data = load_dataset(data_name, synthetic_size=(1024, 128))
    torch.manual_seed(0)
    base = build_model("convnet_si", width=width, in_channels=data.in_channels, n_classes=data.n_classes)
    x, y = data.train_x[:128], data.train_y[:128]
    if channels_last:
        base, x = base.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    steps_of = {}
    monitors = {
        "without": None,
        "with": {"early_warning": False},  # the monitor alone, at its default sync
        "with_warning": {"early_warning": True, "sync_every": 1},  # the warning on the host at every step
    }
    for name, options in monitors.items():
        model = copy.deepcopy(base)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-3)
        monitor = None if options is None else Monitor(model, optimizer, probe=(x, y), **options)
        steps_of[name] = loop(model, optimizer, x, y, monitor)
    times = {name: [] for name in steps_of}
    for step in steps_of.values():
        block_time(step, 2)  # warm-up
    for _ in range(repeats):
        for name, step in steps_of.items():
            times[name].append(block_time(step, steps))
    median = {name: float(np.median(t)) for name, t in times.items()}

    def overhead(name: str, base: str) -> np.ndarray:
        return np.percentile(100 * (np.array(times[name]) / np.array(times[base]) - 1), [50, 25, 75])

    return {
        "net": net,
        "shape": tuple(x.shape[1:]),
        "flops": conv_flops(base, x),
        "overhead": overhead("with", "without"),
        "warning_overhead": overhead("with_warning", "with"),
        **median,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=15, help="timed blocks per loop")
    parser.add_argument("--nets", nargs="+", choices=sorted(NETS), default=["c8", "c32"])
    parser.add_argument("--channels-last", action="store_true")
    add_out_option(parser, "train_step")
    args = parser.parse_args()
    gflops = matmul_gflops()
    print(f"{torch.get_num_threads()} threads; matmul {gflops:.0f} GFLOP/s; channels_last={args.channels_last}")
    tables = {"setup": [{"matmul_gflops": gflops, "channels_last": args.channels_last}], "step time": []}
    for net in args.nets:
        found = measure(net, args.steps, args.repeats, args.channels_last)
        floor = found["flops"] / (gflops * 1e9)
        median, low, high = found["overhead"]
        warning, warning_low, warning_high = found["warning_overhead"]
        row = {
            "net": net,
            "shape": "x".join(map(str, found["shape"])),
            "gflop": found["flops"] / 1e9,
            "with_monitor_ms": 1e3 * found["with"],
            "without_ms": 1e3 * found["without"],
            "overhead_pct": median,
            "overhead_iqr_low_pct": low,
            "overhead_iqr_high_pct": high,
            "with_warning_ms": 1e3 * found["with_warning"],
            "warning_overhead_pct": warning,
            "warning_overhead_iqr_low_pct": warning_low,
            "warning_overhead_iqr_high_pct": warning_high,
            "floor_ms": 1e3 * floor,
            "times_floor": found["without"] / floor,
        }
        print(
            f"ConvNetSI {net} on {row['shape']}, batch 128 ({row['gflop']:.2f} GFLOP): "
            f"step with the monitor {row['with_monitor_ms']:.2f} ms, without {row['without_ms']:.2f} ms "
            f"(overhead {median:+.1f} %, IQR {low:+.1f} … {high:+.1f} %); with the early warning at every step "
            f"{row['with_warning_ms']:.2f} ms ({warning:+.1f} % over the monitor alone, IQR {warning_low:+.1f} … "
            f"{warning_high:+.1f} %); "
            f"FLOP floor {row['floor_ms']:.2f} ms ({row['times_floor']:.2f}x the floor)"
        )
        tables["step time"].append(row)
    write_results(args.out, "train_step", tables)


if __name__ == "__main__":
    main()
