"""Figures shared by simulated and measured runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_period_vs_lr_wd"]


def plot_period_vs_lr_wd(rows: list[dict], path: Path) -> Path:
    """Period against ηλ on log-log axes: measured (mean ± std, and its range over the detector's band), predicted,
    and the law period ∝ 1/(ηλ).

    Two predictions per point: with the threshold from the sharpness, and with the η̃ measured at each
    destabilisation (which tests the decay law alone).

    The line is the leading-order period law ``T = ln(η̃_c/η̃_s)/(2ηλ)`` with the log-ratio that makes it pass
    through the geometric mean of the predicted periods: its slope, −1, is the theory's claim.
    """

    def column(key):
        return np.array([r[key] for r in rows], dtype=float)

    lr_wd, measured, spread = column("lr_wd"), column("period_measured"), column("period_std")
    predicted = column("period_predicted")
    at_measured = column("period_predicted_measured_threshold")
    if not np.isfinite(predicted).any():
        predicted = at_measured
    fig = Figure(figsize=(5.5, 4.2), dpi=120)
    ax = fig.subplots()
    ax.vlines(
        lr_wd,
        column("period_band_low"),
        column("period_band_high"),
        color="C0",
        lw=6,
        alpha=0.25,
        label="measured, over the detector's band",
    )
    ax.errorbar(lr_wd, measured, yerr=spread, fmt="o", color="C0", capsize=3, label="measured (± std)")
    ax.plot(
        lr_wd, predicted, "x", color="C3", markersize=8, label=r"period law, $\tilde\eta_c = 2(1-\eta\lambda)/\tilde s$"
    )
    ax.plot(lr_wd, at_measured, "+", color="C2", markersize=9, label=r"period law, $\tilde\eta_c$ measured")
    ok = np.isfinite(predicted) & (predicted > 0)
    if ok.any():
        log_ratio = 2 * np.exp(np.mean(np.log(predicted[ok] * lr_wd[ok])))
        x = np.geomspace(lr_wd[ok].min() / 1.5, lr_wd[ok].max() * 1.5, 50)
        ax.plot(
            x, log_ratio / (2 * x), "-", color="0.4", lw=1, label=r"$\ln(\tilde\eta_c/\tilde\eta_s)/(2\eta\lambda)$"
        )
    ax.set(xlabel=r"$\eta\lambda$", ylabel="period (steps)", title="Period against ηλ")
    if (np.isfinite(measured) & (measured > 0)).any() or ok.any():
        ax.set(xscale="log", yscale="log")
    else:
        ax.text(0.5, 0.5, "no period measured", ha="center", va="center", transform=ax.transAxes)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
