"""Config-steps per second of the batched simulator against a per-config loop and against torch autograd.

Torch autograd is timed twice: on the same batch of configurations as one tensor (the strongest baseline: both
are then bound by memory traffic) and one configuration at a time (as a training loop per config would run).

All run the same model, the Rayleigh quotient of dimension 64 with torch's SGD + weight decay, and record
the same per-step quantities (loss, ρ, ‖∇L‖, angle). Ratios are measured in the same run, on the same machine.

    .venv/bin/python benchmarks/simulate_throughput.py [--configs 1024] [--dim 64] [--steps 200] [--out FILE]

Writes ``benchmarks/results/simulate_throughput.json`` (``_results``): config-steps per second of each method and how
many times faster bnwd is; the last numbers are on ``docs/results.md``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _results import add_out_option, write_results

from bnwd.simulate.integrate import integrate
from bnwd.simulate.models import RayleighQuotient


def batched(model, lr, wd, steps):
    integrate(model, lr, wd, steps=steps)


def per_config_loop(model, lr, wd, steps):
    for eta, lam in zip(lr, wd, strict=True):
        integrate(model, eta, lam, steps=steps)


def torch_autograd(model, lr, wd, steps):
    """The same batched update, with the gradient from torch autograd instead of the closed form."""
    spectrum = torch.as_tensor(model.spectrum)
    lr_t, wd_t = torch.as_tensor(lr)[:, None], torch.as_tensor(wd)[:, None]
    w = torch.as_tensor(np.random.default_rng(0).standard_normal((lr.size, model.dim)))
    w = (w / w.norm(dim=1, keepdim=True)).requires_grad_(True)
    records = []
    for _ in range(steps):
        loss = (spectrum * w**2).sum(1) / (w**2).sum(1)
        (grad,) = torch.autograd.grad(loss.sum(), w)
        with torch.no_grad():
            w_next = w - lr_t * (grad + wd_t * w)
            cos = (w * w_next).sum(1) / (w.norm(dim=1) * w_next.norm(dim=1))
            records.append(torch.stack([loss.detach(), w.norm(dim=1), grad.norm(dim=1), cos]))
        w = w_next.requires_grad_(True)
    return torch.stack(records)


def torch_autograd_per_config(model, lr, wd, steps):
    for eta, lam in zip(lr, wd, strict=True):
        torch_autograd(model, np.array([eta]), np.array([lam]), steps)


def rate(fn, model, lr, wd, steps, repeats=3) -> float:
    """Best of ``repeats`` runs, in config-steps per second."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(model, lr, wd, steps)
        best = min(best, time.perf_counter() - start)
    return lr.size * steps / best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--loop-configs", type=int, default=32, help="configs timed in the per-config loop")
    add_out_option(parser, "simulate_throughput")
    args = parser.parse_args()
    model = RayleighQuotient.evenly_spaced(args.dim)
    rng = np.random.default_rng(0)
    lr, wd = rng.uniform(0.1, 2.0, args.configs), rng.uniform(1e-3, 1e-2, args.configs)
    rates = {
        "batched numpy (bnwd)": rate(batched, model, lr, wd, args.steps),
        "per-config python loop": rate(
            per_config_loop, model, lr[: args.loop_configs], wd[: args.loop_configs], args.steps, repeats=1
        ),
        "torch autograd (batched)": rate(torch_autograd, model, lr, wd, args.steps),
        "torch autograd per config": rate(
            torch_autograd_per_config, model, lr[: args.loop_configs], wd[: args.loop_configs], args.steps, repeats=1
        ),
    }
    ours = rates["batched numpy (bnwd)"]
    print(
        f"Rayleigh quotient, dim {args.dim}, {args.configs} configs, {args.steps} steps, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads"
    )
    for name, value in rates.items():
        print(f"{name:<26} {value:>14,.0f} config-steps/s   bnwd is {ours / value:6.1f}x")
    rows = [
        {"method": name, "config_steps_per_s": value, "bnwd_is_x_faster": ours / value} for name, value in rates.items()
    ]
    write_results(args.out, "simulate_throughput", {"throughput": rows})


if __name__ == "__main__":
    main()
