"""The catapult of each destabilisation, per run: the jump J, the spike, the landing angle, the quiet decay's slowdown
and the jump's correlations (:mod:`analysis.catapult`), for the run folders given (``bnwd train`` or the demo's).

    .venv/bin/bnwd demo --out runs/demo        # four ConvNetSI runs on digits, η = 1, λ = 0.0025 … 0.02
    .venv/bin/python benchmarks/catapult_table.py runs/demo/runs/* [--out FILE]

Writes ``benchmarks/results/catapult_table.json`` (``_results``): one row per run, ordered by ηλ; the last numbers are
on ``docs/results.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _results import add_out_option, write_results

from bnwd.analysis.catapult import catapults, summarize_catapults
from bnwd.empirical.runs import read_run


def catapult_row(steps, series: dict, summary: dict) -> dict:
    """The catapult summary of one run's ``series`` (schema names) and summary row (``events``, ``period_measured``,
    ``lr_effective``, ``wd``, ``momentum``), with its ηλ, period·ηλ and events; a trained run's or a simulated
    config's alike."""
    lr, wd, momentum = summary["lr_effective"], summary["wd"], summary["momentum"]
    events = np.searchsorted(steps, summary["events"])
    found = catapults(series["elr"], series["eff_grad_norm"], series["loss"], events, lr=lr, wd=wd, momentum=momentum)
    caught = summarize_catapults(found)
    return {
        "lr": lr,
        "wd": wd,
        "lr_wd": lr * wd,
        "catapults": caught.n,
        "jump_median": caught.jump,
        "jump_q25": caught.jump_quartiles[0],
        "jump_q75": caught.jump_quartiles[1],
        "jump_sd_over_mean": caught.jump_spread,
        "spike_steps": caught.spike_steps,
        "slowdown": caught.slowdown,
        "period_times_lr_wd": summary["period_measured"] * lr * wd,
        "landing": caught.landing,
        "landing_sd_over_mean": caught.landing_spread,
        "peak_loss": caught.peak_loss,
        "peak_eff_grad_norm": caught.peak_eff_grad_norm,
        "jump_minus_elr_map": caught.map_residual,
        **{f"corr_jump_{name}": value for name, value in caught.correlations.items()},
    }


def row(folder: Path) -> dict:
    """The catapult summary of the finished run in ``folder`` (:func:`catapult_row`)."""
    run = read_run(folder)
    return catapult_row(run.steps, run.series, run.summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    add_out_option(parser, "catapult_table")
    args = parser.parse_args()
    rows = sorted((row(folder) for folder in args.runs), key=lambda r: r["lr_wd"])
    for r in rows:
        print(
            f"ηλ {r['lr_wd']:g}: {r['catapults']} catapults, J {r['jump_median']:.2f} [{r['jump_q25']:.2f}–"
            f"{r['jump_q75']:.2f}], sd/mean {r['jump_sd_over_mean']:.2f}, spike {r['spike_steps']:g} steps, slowdown "
            f"{r['slowdown']:.2f}, T·ηλ {r['period_times_lr_wd']:.2f}, landing {r['landing']:.2f} "
            f"(sd/mean {r['landing_sd_over_mean']:.2f}), |J − ELR map| {r['jump_minus_elr_map']:.1e}"
        )
    write_results(args.out, "catapult_table", {"runs": rows})


if __name__ == "__main__":
    main()
