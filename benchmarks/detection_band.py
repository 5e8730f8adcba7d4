"""Seconds to analyse a batch of runs with the joint detector and its sensitivity band (target: 64 × 20 000 < 2 s).

The batch is the noisy Rayleigh toy over a grid of (η, λ) (periodic, equilibrium and convergent rows alike),
simulated once; :func:`analysis.destabilization.analyze` is then timed on it with the declared band (six settings)
and without it, best of ``--repeat``.

    .venv/bin/python benchmarks/detection_band.py [--configs 64] [--steps 20000] [--repeat 3] [--out FILE]

Writes ``benchmarks/results/detection_band.json`` (``_results``): the regimes found and the seconds with and without
the band; the last numbers are on ``docs/results.md``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _results import add_out_option, write_results

from bnwd.analysis.destabilization import SENSITIVITY_BAND, analyze
from bnwd.simulate.integrate import integrate
from bnwd.simulate.models import RayleighQuotient


def best_of(repeat: int, call) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    add_out_option(parser, "detection_band")
    args = parser.parse_args()
    lr = np.repeat([0.5, 1.0, 2.0, 4.0], -(-args.configs // 4))[: args.configs]
    wd = np.resize(np.geomspace(0.0025, 0.02, 16), args.configs)
    series = integrate(RayleighQuotient.evenly_spaced(16, noise=1e-3), lr, wd, steps=args.steps).series
    results = analyze(series, lr=lr, wd=wd)
    regimes = {r: sum(x.regime == r for x in results) for r in sorted({x.regime for x in results})}
    with_band = best_of(args.repeat, lambda: analyze(series, lr=lr, wd=wd))
    without = best_of(args.repeat, lambda: analyze(series, lr=lr, wd=wd, band=()))
    print(f"{args.configs} runs × {args.steps} steps; regimes {regimes}")
    print(f"analyze with the band ({len(SENSITIVITY_BAND)} settings): {with_band:.2f} s; without: {without:.2f} s")
    timing = {"configs": args.configs, "steps": args.steps, "band_settings": len(SENSITIVITY_BAND)}
    tables = {
        "regimes": [{"regime": regime, "runs": count} for regime, count in regimes.items()],
        "timing": [timing | {"seconds_with_band": with_band, "seconds_without_band": without}],
    }
    write_results(args.out, "detection_band", tables)


if __name__ == "__main__":
    main()
