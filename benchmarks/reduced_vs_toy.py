"""The reduced model's predicted periods against the full Rayleigh toy's measured ones, on `bnwd simulate`'s grid.

For each noise level: the toy (64 directions, evenly spaced spectrum) integrated for 20 000 steps and analysed as
any run; :func:`simulate.reduced.predict_period` with the toy's s̃, noise and dimension (3 seeds). Prints regime,
period and the relative difference per (η, λ).

Run: ``.venv/bin/python benchmarks/reduced_vs_toy.py [--noise 0,1e-5] [--steps 20000]``.
"""

from __future__ import annotations

import argparse

import numpy as np

from simulate.destabilization import analyze
from simulate.integrate import integrate
from simulate.models import RayleighQuotient
from simulate.reduced import ReducedModel, predict_period


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", default="0,1e-5", help="comma-separated noise levels (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args()
    lrs, wds = np.meshgrid([0.5, 1.0, 2.0], [0.0025, 0.005, 0.01])
    lr, wd = lrs.ravel(), wds.ravel()
    for noise in (float(n) for n in args.noise.split(",")):
        toy = RayleighQuotient.evenly_spaced(64, noise=noise)
        series = integrate(toy, lr, wd, steps=args.steps, seed=0).series
        names = ("si_norm", "elr", "angular_update", "loss", "eff_grad_norm")
        measured = analyze({k: series[k] for k in names}, lr=lr, wd=wd)
        predicted = predict_period(ReducedModel(toy.eff_sharpness, noise, toy.dim), lr, wd, steps=args.steps)
        print(f"noise {noise:g}")
        for i in range(lr.size):
            toy_run, reduced = measured[i], predicted[i]
            print(
                f"  η={lr[i]:<4g} λ={wd[i]:<7g} ηλ={lr[i] * wd[i]:<8.4g} toy {toy_run.regime:11s} {toy_run.period:7.1f}"
                f"   reduced {reduced['regime']:11s} {reduced['period']:7.1f} ± {reduced['period_std']:5.1f}"
                f"   {reduced['period'] / toy_run.period - 1:+.0%}"
            )


if __name__ == "__main__":
    main()
