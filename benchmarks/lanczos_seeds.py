"""Does Lanczos return the top eigenvalue from every start? Start seeds 0–99 at the tracking's tolerance, with the
certificate of λ_max and with the residual rule alone (the rule before issue 28), against a tight reference.

The state (issue 28's recipe): ConvNetSI c=8 (bias-free convs, BatchNorm without affine, the head frozen) after 50
SGD steps (η 0.5, λ 0.01, batch 128, the order a ``torch.randperm`` per epoch, ``torch.manual_seed(0)``) on the first
1000 of sklearn's digits standardised by their global mean and deviation; the train-mode Hessian of the SI weights
(n = 24 264) on the 1000 samples as one batch ("full") and on the first 128 ("minibatch"). The reference is Lanczos at
tol 1e-10, certified, beside 300 steps of power iteration.

Writes ``benchmarks/results/lanczos_seeds.json`` (``_results``) with three tables: ``reference`` (per case: n, the
reference and power iteration), ``summary`` (per case and rule: the worst error, how many seeds are more than 1 % and
0.1 % off, how many of those said converged, the HVPs and seconds a seed; also printed) and ``seeds`` (one row per
case, rule and seed: the eigenvalue, its error relative to the reference, the HVPs, what it said of itself,
``converged``, and its upper bound). The last numbers are on ``docs/results.md``.

    .venv/bin/python benchmarks/lanczos_seeds.py [--seeds 100] [--out FILE]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from _results import add_out_option, write_results
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
    add_out_option(parser, "lanczos_seeds")
    args = parser.parse_args()
    model, x, y, params = issue_state()
    rows, references, summaries = [], [], []
    for case, batches in (("full", [(x, y)]), ("minibatch", [(x[:128], y[:128])])):
        op = HessianOperator(model, batches, params)
        found = top_eigenvalues(op, 1, tol=1e-10, max_hvp=1000)
        reference = float(found.eigenvalues[0])
        power = top_eigenvalues(op, 1, method="power", tol=1e-300, max_hvp=300).eigenvalues
        print(
            f"\n== {case}: n = {op.size}; reference λ_max {reference:.6f} (Lanczos tol 1e-10, {found.n_hvp} HVPs, "
            f"converged {found.converged}); power iteration, 300 steps: {power[0]:.6f}"
        )
        references.append(
            {"case": case, "n": op.size, "reference": reference, "reference_n_hvp": found.n_hvp}
            | {"reference_converged": found.converged, "power_300_steps": power[0]}
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
            summary = {
                "case": case,
                "rule": rule,
                "tol": SHARPNESS_TOL,
                "worst_error": np.nanmax(errors),
                "over_1pct": int((errors > 0.01).sum()),
                "over_0.1pct": int((errors > 1e-3).sum()),
                "over_1pct_said_converged": sum(r["converged"] and r["rel_error"] > 0.01 for r in mine),
                "not_converged": sum(not r["converged"] for r in mine),
                "hvp_median": np.median(hvps),
                "hvp_min": hvps.min(),
                "hvp_max": hvps.max(),
                "seconds_a_seed": seconds,
            }
            summaries.append(summary)
            print(
                f"   {rule:14s} tol {SHARPNESS_TOL:g}: worst error {summary['worst_error']:.2e}, > 1 %: "
                f"{summary['over_1pct']}, > 0.1 %: {summary['over_0.1pct']}, > 1 % and said converged: "
                f"{summary['over_1pct_said_converged']}, not converged: {summary['not_converged']}; HVPs median "
                f"{summary['hvp_median']:g} [{summary['hvp_min']}–{summary['hvp_max']}], {seconds:.2f} s a seed"
            )
    write_results(args.out, "lanczos_seeds", {"reference": references, "summary": summaries, "seeds": rows})


if __name__ == "__main__":
    main()
