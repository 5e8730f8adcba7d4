"""Step time of ConvNetSI (c=32, CIFAR-shaped synthetic data, batch 128) with and without the online metrics,
against the FLOP floor (the step's FLOPs over the GFLOP/s of a large matmul measured in the same run).

    .venv/bin/python benchmarks/train_step.py [--steps 5] [--width 32] [--channels-last]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import torch
import torch.nn.functional as F

from empirical.data import load_dataset
from empirical.nets import build_model
from empirical.trainer import TrainConfig, Trainer


def conv_flops(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Forward multiply-adds ×2 of every conv and linear layer for input ``x``, times 3 for forward + backward."""
    total = 0.0

    def hook(module, _inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += 2.0 * module.in_channels * k * output.numel()
        elif isinstance(module, torch.nn.Linear):
            total += 2.0 * module.in_features * output.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return 3.0 * total


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2.0 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def time_steps(step, steps: int) -> float:
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    data = load_dataset("synthetic", synthetic_size=(1024, 128))
    torch.manual_seed(0)
    model = build_model("convnet_si", width=args.width, in_channels=3, n_classes=10)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        data = dataclasses.replace(data, train_x=data.train_x.contiguous(memory_format=torch.channels_last))
    trainer = Trainer(model, data, TrainConfig(lr=0.1, wd=1e-3, steps=10**9), tempfile.mkdtemp())
    batch = torch.arange(128)
    x, y = data.train_x[batch], data.train_y[batch]

    def plain():
        trainer.optimizer.zero_grad(set_to_none=False)
        F.cross_entropy(model(x), y).backward()
        trainer.optimizer.step()

    with_metrics = time_steps(lambda: trainer._train_step(batch), args.steps)
    without = time_steps(plain, args.steps)
    floor = conv_flops(model, x) / (matmul_gflops() * 1e9)
    print(
        f"ConvNetSI c={args.width}, batch 128, 3x32x32, channels_last={args.channels_last}, "
        f"{torch.get_num_threads()} threads; step FLOPs {conv_flops(model, x) / 1e9:.1f} G"
    )
    print(
        f"step with online metrics {with_metrics:.3f} s, without {without:.3f} s "
        f"(overhead {100 * (with_metrics / without - 1):+.1f} %); FLOP floor {floor:.3f} s "
        f"({with_metrics / floor:.2f}x the floor)"
    )


if __name__ == "__main__":
    main()
