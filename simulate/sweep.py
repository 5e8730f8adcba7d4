"""A grid of (η, λ, β) run as one batch, summarised and written to plain files."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from bnwd.analysis.destabilization import DEFAULT_SETTINGS
from bnwd.analysis.records import write_json, write_series_csv
from bnwd.analysis.summary import a_priori_slope, frequency_slope_band, summarize_run
from bnwd.simulate.integrate import integrate
from bnwd.simulate.plots import plot_period_vs_lr_wd

__all__ = ["config_label", "grid", "simulate_grid"]


def grid(lr, wd, momentum=(0.0,)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cartesian product of the three value lists, as three flat float64 arrays (lr varies slowest)."""
    rows = np.array(list(itertools.product(lr, wd, momentum)), dtype=np.float64).reshape(-1, 3)
    return rows[:, 0], rows[:, 1], rows[:, 2]


def config_label(index: int, lr: float, wd: float, momentum: float) -> str:
    """File-name-safe name of one configuration of a grid: its row's ``run_id`` and its series file's stem."""
    return f"{index:03d}_lr{lr:g}_wd{wd:g}_m{momentum:g}"


def simulate_grid(
    model,
    lr,
    wd,
    momentum=(0.0,),
    *,
    steps: int,
    out: Path,
    seed: int = 0,
    si_norm0: float = 1.0,
    mode: str = "free",
    settings=DEFAULT_SETTINGS,
    progress: bool = True,
) -> dict:
    """Simulate every (η, λ, β) of the grid in one batch; write ``summary.json``, series and the period plot.

    Returns
    -------
    dict
        The summary: ``model``, ``mode``, ``steps``, ``seed``, ``si_norm0``, ``rows`` (one per configuration:
        ``run_id`` and :func:`analysis.summary.summarize_run`) and the fitted ``frequency_slope`` over the periodic
        rows with its range over the detector's band (:func:`analysis.summary.frequency_slope_band`).
    """
    lrs, wds, moms = grid(lr, wd, momentum)
    trajectory = integrate(
        model, lrs, wds, momentum=moms, steps=steps, mode=mode, si_norm0=si_norm0, seed=seed, progress=progress
    )
    sharpness = getattr(model, "eff_sharpness", None)
    rows = []
    for i, (eta, lam, beta) in enumerate(zip(lrs, wds, moms, strict=True)):
        series = {name: values[i] for name, values in trajectory.series.items()}
        name = config_label(i, eta, lam, beta)
        write_series_csv(out / "series" / f"{name}.csv", trajectory.steps, series)
        row = summarize_run(
            trajectory.steps,
            series,
            lr=float(eta),
            wd=float(lam),
            momentum=float(beta),
            norm_control=mode,
            eff_sharpness=sharpness,
            settings=settings,
            gradient_noise=getattr(model, "noise", 0.0),
        )
        rows.append({"run_id": name, **row})
    summary = {
        "model": model.name,
        "mode": mode,
        "steps": steps,
        "seed": seed,
        "si_norm0": si_norm0,
        "rows": rows,
        "frequency_slope": frequency_slope_band(rows),
        "frequency_slope_a_priori": a_priori_slope(rows),
    }
    write_json(out / "summary.json", summary)
    plot_period_vs_lr_wd(rows, out / "period_vs_etalambda.png")
    return summary
