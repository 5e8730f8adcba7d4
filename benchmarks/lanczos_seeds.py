"""Does Lanczos return the top eigenvalue from every start? Start seeds 0–99 at the tracking's tolerance, with the
certificate of λ_max and with the residual rule alone (the rule before issue 28), against a tight reference.

The state (issue 28's recipe): ConvNetSI c=8 (bias-free convs, BatchNorm without affine, the head frozen) after 50
SGD steps (η 0.5, λ 0.01, batch 128, the order a ``torch.randperm`` per epoch, ``torch.manual_seed(0)``) on the first
1000 of sklearn's digits standardised by their global mean and deviation; the train-mode Hessian of the SI weights
(n = 24 264) on the 1000 samples as one batch ("full") and on the first 128 ("minibatch"). The reference is Lanczos at
tol 1e-10, certified, beside 300 steps of power iteration.

Each row of the CSV is one (case, rule, seed): the eigenvalue, its error relative to the reference, the HVPs, what it
said of itself (``converged``) and its upper bound. The summary printed per case and rule: the worst error, how many
seeds are more than 1 % and 0.1 % off, how many of those said converged, the HVPs and seconds.

    .venv/bin/python benchmarks/lanczos_seeds.py [--seeds 100] [--out runs/lanczos_seeds.csv]
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from bnwd.empirical.curvature import HessianOperator
from bnwd.empirical.eigensolvers import top_eigenvalues
from bnwd.empirical.monitor import SHARPNESS_TOL
from bnwd.empirical.nets import ConvNetSI

RULES = {"certified": {}, "residual only": {"miss_tol": math.inf}}


def issue_state() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, list[torch.nn.Parameter]]:
    """The model, the 1000 digits and their labels, and the SI weights, after the 50 steps of the recipe above."""
    digits = load_digits()
    images = digits.images[:1000].astype(np.float64)
    x = torch.tensor((images - images.mean()) / images.std(), dtype=torch.float32)[:, None]
    y = torch.tensor(digits.target[:1000])
    torch.manual_seed(0)
    model = ConvNetSI(width=8, in_channels=1, n_classes=10).train()
    params = [p for name, p in model.named_parameters() if name.startswith("conv_layers")]
    optimizer = torch.optim.SGD(params, lr=0.5, weight_decay=0.01)
    for step in range(50):
        if step % 8 == 0:
            order = torch.randperm(1000)
        batch = order[(step % 8) * 128 : (step % 8 + 1) * 128]
        optimizer.zero_grad()
        F.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return model, x, y, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("runs/lanczos_seeds.csv"))
    args = parser.parse_args()
    model, x, y, params = issue_state()
    rows = []
    for case, batches in (("full", [(x, y)]), ("minibatch", [(x[:128], y[:128])])):
        op = HessianOperator(model, batches, params)
        found = top_eigenvalues(op, 1, tol=1e-10, max_hvp=1000)
        reference = float(found.eigenvalues[0])
        power = top_eigenvalues(op, 1, method="power", tol=1e-300, max_hvp=300).eigenvalues
        print(
            f"\n== {case}: n = {op.size}; reference λ_max {reference:.6f} (Lanczos tol 1e-10, {found.n_hvp} HVPs, "
            f"converged {found.converged}); power iteration, 300 steps: {power[0]:.6f}"
        )
        for rule, options in RULES.items():
            start = time.perf_counter()
            for seed in range(args.seeds):
                found = top_eigenvalues(op, 1, tol=SHARPNESS_TOL, seed=seed, **options)
                error = (reference - found.eigenvalues[0]) / reference
                rows.append(
                    {"case": case, "rule": rule, "seed": seed, "eigenvalue": found.eigenvalues[0]}
                    | {"reference": reference, "rel_error": error, "n_hvp": found.n_hvp, "converged": found.converged}
                    | {"upper_bound": found.upper_bound}
                )
            seconds = (time.perf_counter() - start) / args.seeds
            mine = [r for r in rows if r["case"] == case and r["rule"] == rule]
            errors, hvps = np.array([r["rel_error"] for r in mine]), np.array([r["n_hvp"] for r in mine])
            wrong = sum(r["converged"] and r["rel_error"] > 0.01 for r in mine)
            print(
                f"   {rule:14s} tol {SHARPNESS_TOL:g}: worst error {np.nanmax(errors):.2e}, > 1 %: "
                f"{int((errors > 0.01).sum())}, > 0.1 %: {int((errors > 1e-3).sum())}, > 1 % and said converged: "
                f"{wrong}, not converged: {sum(not r['converged'] for r in mine)}; HVPs median {np.median(hvps):g} "
                f"[{hvps.min()}–{hvps.max()}], {seconds:.2f} s a seed"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nrows written to {args.out}")


if __name__ == "__main__":
    main()
