"""The BatchNorm MLP toy against the nets: its periods, frequency slope and catapults beside ConvNetSI's on digits.

The toy (:class:`simulate.models.BatchNormMLP`, default width 32 × depth 3, batch 512, frozen head of norm 10) runs
issue 30's grid η ∈ {0.5, 1, 2} × λ ∈ {0.0025, 0.005, 0.01, 0.02} as one batch through
:func:`simulate.sweep.simulate_grid` (the schema, detector and summary of every run), timed. Per config: regime,
events, period, period·ηλ and the catapult numbers of :mod:`analysis.catapult` (``catapult_table.catapult_row``);
then the fitted frequency slope, the relative differences of the configs with equal ηλ, and the same numbers for the
ConvNetSI run folders given (their slope fitted the same way, :func:`analysis.summary.frequency_slope_band` on their
summary rows). The done-when checks of issue 30, item 2: slope within ±0.15 of the nets', median period·ηλ and
median J (each the median over configs) within 25 % of the nets', grid wall time ≤ 60 s.

    .venv/bin/bnwd demo --out runs/demo        # four ConvNetSI runs on digits, η = 1, λ = 0.0025 … 0.02
    .venv/bin/python benchmarks/toy_vs_nets.py runs/demo/runs/* [--steps 5000] [--width 32] [--depth 3]
        [--batch-size 512] [--seed 0] [--out FILE]

The default steps give the smallest ηλ (0.00125: periods near 0.75/ηλ ≈ 600 steps) several periods after the
transient. Writes ``benchmarks/results/toy_vs_nets.json`` (``_results``); the last numbers are on
``docs/results.md``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import add_out_option, write_results
from catapult_table import catapult_row

from bnwd.analysis.records import read_series_csv
from bnwd.analysis.summary import frequency_slope_band
from bnwd.empirical.runs import read_run
from bnwd.paper_checks.c3_frequency import equal_product_groups
from bnwd.simulate.models import MLP_DTYPES, BatchNormMLP
from bnwd.simulate.sweep import simulate_grid

LRS = (0.5, 1.0, 2.0)
WDS = (0.0025, 0.005, 0.01, 0.02)
COLUMNS = ("regime", "events", "period", "period_times_lr_wd", "catapults", "jump_median", "jump_sd_over_mean")
COLUMNS += ("spike_steps", "landing", "slowdown")
TOLERANCE = {"slope": 0.15, "period_times_lr_wd": 0.25, "jump_median": 0.25, "wall_s": 60.0}
"""The done-when targets: the slope's absolute difference, the two medians' relative differences, the seconds."""


def table_row(source: str, summary: dict, catapult: dict) -> dict:
    """One line of the toy-against-nets table: where it comes from, η, λ, ηλ and :data:`COLUMNS`."""
    values = catapult | {
        "regime": summary["regime"],
        "events": summary["n_destabilizations"],
        "period": summary["period_measured"],
    }
    return {"source": source, "lr": catapult["lr"], "wd": catapult["wd"], "lr_wd": catapult["lr_wd"]} | {
        name: values[name] for name in COLUMNS
    }


def run_toy(model: BatchNormMLP, steps: int, seed: int) -> tuple[list[dict], dict, dict]:
    """The grid on the toy: its table rows, its ``simulate_grid`` summary and the grid's wall and CPU seconds (the
    CPU time is the number to read on a shared machine, where others' jobs stretch the wall time)."""
    with tempfile.TemporaryDirectory() as folder:
        start, cpu_start = time.perf_counter(), time.process_time()
        summary = simulate_grid(model, LRS, WDS, steps=steps, out=Path(folder), seed=seed, progress=False)
        seconds = {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu_start}
        rows = []
        for config in summary["rows"]:
            series_steps, series = read_series_csv(Path(folder) / "series" / f"{config['run_id']}.csv")
            catapult = catapult_row(series_steps, series, config)
            rows.append(table_row("toy", config, catapult))
    return rows, summary, seconds


def equal_lr_wd_pairs(rows: list[dict]) -> list[dict]:
    """Every two configs with the same ηλ (:func:`paper_checks.c3_frequency.equal_product_groups`), in the rows'
    order: their periods and relative difference |T₁ − T₂| / mean."""
    groups = equal_product_groups(np.array([r["lr_wd"] for r in rows]))
    pairs = []
    for i, j in sorted(pair for group in groups for pair in itertools.combinations(group.tolist(), 2)):
        first, second = rows[i], rows[j]
        t1, t2 = first["period"], second["period"]
        pairs.append(
            {
                "lr_wd": first["lr_wd"],
                "configs": f"η {first['lr']:g}, λ {first['wd']:g} / η {second['lr']:g}, λ {second['wd']:g}",
                "period_1": t1,
                "period_2": t2,
                "relative_difference": abs(t1 - t2) / ((t1 + t2) / 2),
            }
        )
    return pairs


def median_of(rows: list[dict], name: str) -> float:
    """Median of ``name`` over the periodic rows where it is finite (NaN if none)."""
    values = np.array([r[name] for r in rows if r["regime"] == "periodic"], dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def slope_row(source: str, fit: dict) -> dict:
    low, high = fit["slope_ci"]
    return {"source": source, "slope": fit["slope"], "ci_low": low, "ci_high": high, "n_points": fit["n_points"]}


def checks(toy_rows, net_rows, toy_fit, net_fit, wall) -> list[dict]:
    """The done-when checks, each with the toy's number, the nets', the target and whether it passes."""
    found = [
        {
            "check": "slope within ±0.15 of the nets'",
            "toy": toy_fit["slope"],
            "nets": net_fit["slope"],
            "difference": toy_fit["slope"] - net_fit["slope"],
        }
    ]
    for name in ("period_times_lr_wd", "jump_median"):
        toy, nets = median_of(toy_rows, name), median_of(net_rows, name)
        found.append({"check": f"median {name} within 25 %", "toy": toy, "nets": nets, "difference": toy / nets - 1})
    found.append({"check": "grid wall time ≤ 60 s", "toy": wall, "nets": None, "difference": None})
    for check, limit in zip(found, TOLERANCE.values(), strict=True):
        value = check["toy"] if check["difference"] is None else abs(check["difference"])
        check["passed"] = bool(np.isfinite(value) and value <= limit)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="finished ConvNetSI run folders (the demo's)")
    parser.add_argument("--steps", type=int, default=5000, help="optimiser steps of the toy (default: %(default)s)")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--dtype", choices=MLP_DTYPES, default="float64", help="the toy's precision")
    parser.add_argument("--seed", type=int, default=0, help="initial weights, minibatches and head")
    add_out_option(parser, "toy_vs_nets")
    args = parser.parse_args()
    model = BatchNormMLP.digits(args.width, args.depth, args.batch_size, head_seed=args.seed, dtype=args.dtype)
    load_before = os.getloadavg()[0]
    toy_rows, toy_summary, seconds = run_toy(model, args.steps, args.seed)
    wall = seconds["wall_s"]
    nets = [read_run(folder) for folder in args.runs]
    net_summaries = [run.summary for run in nets]
    net_rows = sorted(
        (table_row("ConvNetSI", run.summary, catapult_row(run.steps, run.series, run.summary)) for run in nets),
        key=lambda r: r["lr_wd"],
    )
    toy_fit, net_fit = toy_summary["frequency_slope"], frequency_slope_band(net_summaries)
    configs = len(toy_rows)
    timing = {
        "steps": args.steps,
        "configs": configs,
        **seconds,
        "ms_per_step": 1e3 * wall / args.steps,
        "cpu_ms_per_step": 1e3 * seconds["cpu_s"] / args.steps,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
    }
    found = checks(toy_rows, net_rows, toy_fit, net_fit, wall)
    print(f"toy: BatchNormMLP width {model.width} × depth {model.depth}, batch {model.batch_size}, {args.steps} steps")
    print(f"{'source':>10} {'η':>4} {'λ':>7} {'ηλ':>8}" + "".join(f"{name[:12]:>13}" for name in COLUMNS))
    for r in [*toy_rows, *net_rows]:
        cells = "".join(f"{v:>13.3g}" if isinstance(v, float) else f"{v!s:>13}" for v in (r[c] for c in COLUMNS))
        print(f"{r['source']:>10} {r['lr']:>4g} {r['wd']:>7g} {r['lr_wd']:>8g}{cells}")
    slopes = [slope_row("toy", toy_fit), slope_row("ConvNetSI", net_fit)]
    for s in slopes:
        print(f"{s['source']}: slope {s['slope']:.2f} (95% CI {s['ci_low']:.2f} … {s['ci_high']:.2f}, {s['n_points']})")
    pairs = equal_lr_wd_pairs(toy_rows)
    for p in pairs:
        print(f"equal ηλ {p['lr_wd']:g} ({p['configs']}): periods differ by {p['relative_difference']:.1%}")
    print(
        f"grid: {wall:.1f} s wall ({seconds['cpu_s']:.1f} s CPU), {timing['ms_per_step']:.1f} ms per step of {configs}"
        f" configs; load average {load_before:.1f} before, {timing['load_average_after']:.1f} after"
    )
    for c in found:
        nets = "" if c["nets"] is None else f", nets {c['nets']:.3g}"
        print(f"{'PASS' if c['passed'] else 'MISS'} {c['check']}: toy {c['toy']:.3g}{nets}")
    tables = {"toy_against_nets": [*toy_rows, *net_rows], "slopes": slopes, "equal_lr_wd_pairs": pairs}
    write_results(args.out, "toy_vs_nets", tables | {"checks": found, "timing": [timing]})


if __name__ == "__main__":
    main()
