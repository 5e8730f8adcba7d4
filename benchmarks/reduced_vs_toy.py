"""Predicted against measured periods of the noisy Rayleigh toy, on `bnwd simulate`'s grid.

For each noise level: the toy (64 directions, evenly spaced spectrum) integrated for 20 000 steps once per seed and
summarised as any run (:func:`analysis.summary.summarize_run`); per (η, λ) the mean over the seeds of the measured
period and of each prediction:

* ``law``: the period law from the η̃ measured after each jump to the threshold η̃_c = 2(1−ηλ)/s̃, no delay;
* ``+delay``: the same plus the escape delay (still fed the measured reset);
* ``a priori``: :func:`theory.plane_period` from ηλ, s̃ and σ alone (fed nothing measured);
* ``reduced``: :func:`simulate.reduced.predict_period` with the toy's s̃, σ and dimension (3 seeds of its own).

Then the median relative error of each, and the largest relative difference between two configs with the same ηλ.

Run: ``.venv/bin/python benchmarks/reduced_vs_toy.py [--noise 1e-5] [--steps 20000] [--seeds 4] [--out FILE]``.

Writes ``benchmarks/results/reduced_vs_toy.json`` (``_results``): per noise level and config the measured period and
each prediction with its relative error (``periods``), and per noise level the medians and the equal-ηλ differences
(``summary``); the last numbers are on ``docs/results.md``.
"""

from __future__ import annotations

import argparse

import numpy as np
from _results import add_out_option, write_results

from bnwd.analysis.summary import summarize_run
from bnwd.simulate.integrate import integrate
from bnwd.simulate.models import DEFAULT_NOISE, RayleighQuotient
from bnwd.simulate.reduced import ReducedModel, predict_period

PREDICTIONS = {
    "law": "period_predicted",
    "+delay": "period_predicted_with_delay",
    "a priori": "period_predicted_a_priori",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--noise", default=str(DEFAULT_NOISE), help="comma-separated noise levels (default: %(default)s)"
    )
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--seeds", type=int, default=4, help="toy runs per config (default: %(default)s)")
    add_out_option(parser, "reduced_vs_toy")
    args = parser.parse_args()
    tables = {"periods": [], "summary": []}
    lrs, wds = np.meshgrid([0.5, 1.0, 2.0], [0.0025, 0.005, 0.01], indexing="ij")
    lr, wd = lrs.ravel(), wds.ravel()
    for noise in (float(n) for n in args.noise.split(",")):
        toy = RayleighQuotient.evenly_spaced(64, noise=noise)
        rows = []
        for seed in range(args.seeds):
            run = integrate(toy, lr, wd, steps=args.steps, seed=seed)
            rows.append(
                [
                    summarize_run(
                        run.steps,
                        {k: v[i] for k, v in run.series.items()},
                        lr=lr[i],
                        wd=wd[i],
                        eff_sharpness=toy.eff_sharpness,
                        gradient_noise=noise,
                    )
                    for i in range(lr.size)
                ]
            )
        measured = np.array([[r["period_measured"] for r in per_seed] for per_seed in rows])
        predicted = {
            label: np.array([[r[field] for r in per_seed] for per_seed in rows]).mean(axis=0)
            for label, field in PREDICTIONS.items()
        }
        reduced = predict_period(ReducedModel(toy.eff_sharpness, noise, toy.dim), lr, wd, steps=args.steps)
        predicted["reduced"] = np.array([r["period"] for r in reduced])
        mean = measured.mean(axis=0)
        print(f"noise {noise:g}, {args.seeds} seeds; periods in steps, relative error of each prediction")
        print(f"  {'η':>4} {'λ':>7} {'ηλ':>8} {'measured':>14}" + "".join(f"{label:>17}" for label in predicted))
        for i in range(lr.size):
            cells = "".join(f"{p[i]:>8.1f} {p[i] / mean[i] - 1:>+7.1%} " for p in predicted.values())
            spread = f"{mean[i]:>7.1f} ± {measured[:, i].std():>4.1f}"
            print(f"  {lr[i]:>4g} {wd[i]:>7g} {lr[i] * wd[i]:>8g} {spread:>14} {cells}")
            tables["periods"].append(
                {"noise": noise, "lr": lr[i], "wd": wd[i], "measured": mean[i], "measured_std": measured[:, i].std()}
                | {f"{label} rel. error": p[i] / mean[i] - 1 for label, p in predicted.items()}
            )
        medians = ", ".join(f"{label} {np.median(p / mean - 1):+.1%}" for label, p in predicted.items())
        print(f"  median relative error: {medians}")
        groups = {}
        for i, product in enumerate(np.round(lr * wd, 12)):
            groups.setdefault(product, []).append(i)
        equal = [g for g in groups.values() if len(g) > 1]
        worst = max(mean[g].max() / mean[g].min() - 1 for g in equal)
        single = max((measured[:, g].max(axis=1) / measured[:, g].min(axis=1) - 1).max() for g in equal)
        print(f"  equal ηλ: largest difference {worst:.1%} between seed means ({single:.1%} within one seed)")
        tables["summary"].append(
            {"noise": noise, "seeds": args.seeds}
            | {f"{label} median rel. error": np.median(p / mean - 1) for label, p in predicted.items()}
            | {"equal ηλ largest difference": worst, "within one seed": single}
        )
    write_results(args.out, "reduced_vs_toy", tables)


if __name__ == "__main__":
    main()
