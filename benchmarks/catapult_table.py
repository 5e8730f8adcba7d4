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


def row(folder: Path) -> dict:
    """The catapult summary of the finished run in ``folder``, with its ηλ, period·ηλ and events."""
    run = read_run(folder)
    lr, wd, momentum = run.config["lr_effective"], run.config["wd"], run.config["momentum"]
    events = np.searchsorted(run.steps, run.summary["events"])
    series = run.series
    found = catapults(series["elr"], series["eff_grad_norm"], series["loss"], events, lr=lr, wd=wd, momentum=momentum)
    summary = summarize_catapults(found)
    return {
        "lr": lr,
        "wd": wd,
        "lr_wd": lr * wd,
        "catapults": summary.n,
        "jump_median": summary.jump,
        "jump_q25": summary.jump_quartiles[0],
        "jump_q75": summary.jump_quartiles[1],
        "jump_sd_over_mean": summary.jump_spread,
        "spike_steps": summary.spike_steps,
        "slowdown": summary.slowdown,
        "period_times_lr_wd": run.summary["period_measured"] * lr * wd,
        "landing": summary.landing,
        "landing_sd_over_mean": summary.landing_spread,
        "peak_loss": summary.peak_loss,
        "peak_eff_grad_norm": summary.peak_eff_grad_norm,
        "jump_minus_elr_map": summary.map_residual,
        **{f"corr_jump_{name}": value for name, value in summary.correlations.items()},
    }


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
