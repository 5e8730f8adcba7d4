"""One-run calibration of the catapult simulator on any set of runs: each run's catapult constants predict the mean
period of every run at another (ηλ, β), beside T·ηλ/(1−β) = const through the same run, the power law through the
other runs and the shuffled-constants control (:func:`simulate.catapult.one_run_calibrations`).

    .venv/bin/bnwd demo --out runs/demo
    .venv/bin/python benchmarks/catapult_calibration.py runs/demo/runs/*          # run folders
    .venv/bin/bnwd simulate --model mlp ... --out runs/toy
    .venv/bin/python benchmarks/catapult_calibration.py runs/toy                  # a `bnwd simulate` folder

Writes ``benchmarks/results/catapult_calibration.json`` (``_results``; ``--out``): one row per calibration run, with
the medians over the held-out runs at its own β and at the other β (the momentum transfer), the periods' spread and
lag-1 correlation predicted and measured, and the share of runs whose regime within the budget (periodic,
equilibrium or convergent) it predicts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _results import add_out_option, write_results

from bnwd.analysis.catapult import correlation
from bnwd.analysis.periods import median_abs_relative_error
from bnwd.analysis.records import read_series_csv
from bnwd.empirical.runs import read_run
from bnwd.simulate.catapult import calibrate_on_runs, measured_periods, missed_as_infinite, simulated_periods

MIN_PERIODS = 4
"""Counted periods a run needs for its mean period to be scored (as C10)."""


def read_runs(paths: list[Path]) -> list[tuple[np.ndarray, dict, dict]]:
    """(steps, series, summary row) of each run: run folders, or the rows of `bnwd simulate` folders."""
    found = []
    for path in paths:
        if (path / "series").is_dir():
            for row in json.loads((path / "summary.json").read_text(encoding="utf-8"))["rows"]:
                found.append((*read_series_csv(path / "series" / f"{row['run_id']}.csv"), row))
        else:
            run = read_run(path)
            found.append((run.steps, run.series, run.summary))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="run folders or `bnwd simulate` output folders")
    parser.add_argument("--seeds", type=int, default=8, help="simulated seeds per configuration")
    add_out_option(parser, "catapult_calibration")
    args = parser.parse_args()
    runs = read_runs(args.paths)
    rows = [row for _, _, row in runs]
    lr, wd, momentum = (np.array([r[key] for r in rows], dtype=float) for key in ("lr_effective", "wd", "momentum"))
    measured = measured_periods(rows, MIN_PERIODS)
    budget = max(r["steps_trained"] for r in rows)
    calibrations = calibrate_on_runs(runs, min_periods=MIN_PERIODS, seeds=args.seeds)
    elr0 = np.array([series["elr"][0] for _, series, _ in runs])  # the start each configuration had: η/ρ₀²
    measured_std = np.array([r["period_std"] for r in rows])
    measured_serial = np.array([correlation(np.array(r["periods"][:-1]), np.array(r["periods"][1:])) for r in rows])
    table = []
    for c in calibrations:
        if not c.held_out.any():
            continue
        regimes = simulated_periods(c.constants, lr, wd, momentum, steps=budget, seeds=args.seeds, elr0=elr0)
        regimes_right = np.mean([p.regime == r["regime"] for p, r in zip(regimes, rows, strict=True)])
        same_beta = c.held_out & (momentum == momentum[c.calibration])
        other_beta = c.held_out & ~same_beta

        def error(predicted: np.ndarray, rows: np.ndarray) -> float:
            return median_abs_relative_error(missed_as_infinite(predicted)[rows], measured[rows])

        table.append(
            {
                "lr": lr[c.calibration],
                "wd": wd[c.calibration],
                "momentum": momentum[c.calibration],
                "held_out": int(c.held_out.sum()),
                **c.scores.errors,
                "power_law": c.power_law_error,
                "prediction_same_momentum": error(c.predicted, same_beta),
                "constant_product_same_momentum": error(c.constant_product, same_beta),
                "prediction_other_momentum": error(c.predicted, other_beta),
                "constant_product_other_momentum": error(c.constant_product, other_beta),
                "spread_ratio": float(np.nanmedian(c.predicted_std[c.held_out] / measured_std[c.held_out])),
                "serial_correlation_predicted": float(np.nanmedian(c.predicted_serial_correlation[c.held_out])),
                "serial_correlation_measured": float(np.nanmedian(measured_serial[c.held_out])),
                "regimes_right": float(regimes_right),
            }
        )
    keys = (
        "prediction",
        "constant_period_times_lr_wd",
        "prediction_same_momentum",
        "constant_product_same_momentum",
        "prediction_other_momentum",
        "constant_product_other_momentum",
        "power_law",
        "shuffled_constants",
        "spread_ratio",
        "serial_correlation_predicted",
        "serial_correlation_measured",
        "regimes_right",
    )
    medians = {key: float(np.nanmedian([t[key] for t in table])) if table else float("nan") for key in keys}
    for t in table:
        print(
            f"calibrated on η={t['lr']:g} λ={t['wd']:g} β={t['momentum']:g}: {t['held_out']} held out; simulator "
            f"{t['prediction']:.0%} (same β {t['prediction_same_momentum']:.0%} against T·ηλ/(1−β) = const's "
            f"{t['constant_product_same_momentum']:.0%}; other β {t['prediction_other_momentum']:.0%} against "
            f"{t['constant_product_other_momentum']:.0%}), T·ηλ/(1−β) = const {t['constant_period_times_lr_wd']:.0%}, "
            f"power law {t['power_law']:.0%}, shuffled control {t['shuffled_constants']:.0%}, "
            f"spread ratio {t['spread_ratio']:.2f}, serial correlation {t['serial_correlation_predicted']:.2f} "
            f"(measured {t['serial_correlation_measured']:.2f}), regimes within the budget "
            f"{t['regimes_right']:.0%} right"
        )
    print("medians over calibration runs: " + ", ".join(f"{k} {v:.3g}" for k, v in medians.items()))
    write_results(args.out, "catapult_calibration", {"calibrations": table, "medians": [medians]})


if __name__ == "__main__":
    main()
