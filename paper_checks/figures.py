"""Figures shared by the paper checks and ``bnwd demo``: the paper's four panels for a few runs, and the early
warning on each run's η̃.

The four panels of the paper's figures (Lobacheva et al., 2021): the train loss, the test error, the norm ρ of
the scale-invariant weights with the destabilisations marked, and the phase diagram of the effective learning
rate η̃ against the effective gradient norm ‖g̃‖ with the equilibrium line of each run.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bnwd import theory
from bnwd.analysis.early_warning import on_intervals, warnings_of
from bnwd.paper_checks.common import Run

__all__ = [
    "draw_phase",
    "draw_rho",
    "early_warning_panels",
    "equilibrium_line",
    "four_panels",
    "positive",
    "run_label",
    "run_warning",
    "save_figure",
]


def run_label(run: Run) -> str:
    """A short legend entry for ``run``: its η and λ, and its momentum or fixed norm when it has them."""
    spec = run.spec
    label = f"η={spec.lr:g}, λ={spec.wd:g}"
    if spec.momentum:
        label += f", β={spec.momentum:g}"
    if spec.fix_norm is not None:
        label += ", ρ fixed"
    return label


def positive(steps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The samples of ``values`` (and their ``steps``) that are finite and > 0: what a log axis can show."""
    keep = np.isfinite(values) & (values > 0)
    return steps[keep], values[keep]


def equilibrium_line(run: Run, eff_grad_norm: np.ndarray) -> np.ndarray | None:
    """η̃ on the equilibrium line ``η̃‖g̃‖ = √(ηλ(2−ηλ))`` of ``run`` at each ‖g̃‖ (:func:`theory.equilibrium_elr`).

    Parameters
    ----------
    run : Run
        Its spec gives η and λ.
    eff_grad_norm : ndarray, shape (n,)
        ‖g̃‖ > 0 at which to evaluate the line.

    Returns
    -------
    ndarray, shape (n,), or None
        None when the line does not apply: no weight decay (no equilibrium), momentum (the line is plain SGD's)
        or a fixed norm (η̃ is held, not balanced).
    """
    spec = run.spec
    if spec.wd <= 0 or spec.momentum or spec.fix_norm is not None or spec.fix_elr is not None:
        return None
    return theory.equilibrium_elr(eff_grad_norm, spec.lr, spec.wd)


def draw_rho(ax, runs: list[Run], labels: list[str], *, events: bool = True) -> None:
    """ρ per step on a log axis for each run, with its destabilisations (``summary["events"]``) marked."""
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        steps, rho = positive(run.steps, run.series["si_norm"])
        ax.plot(steps, rho, color=f"C{i}", lw=0.9, label=label)
        marked = [e for e in run.summary.get("events", []) if e < len(run.steps)] if events else []
        if marked:
            ax.plot(run.steps[marked], run.series["si_norm"][marked], "v", color=f"C{i}", ms=5, mfc="none")
    ax.set(yscale="log", xlabel="step", ylabel="SI weight norm ρ", title="ρ (▽: destabilisations)")


def draw_phase(ax, runs: list[Run], labels: list[str]) -> None:
    """η̃ (x) against ‖g̃‖ (y) per step on log-log axes, with each run's equilibrium line (dashed)."""
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        elr, grad = run.series["elr"], run.series["eff_grad_norm"]
        keep = np.isfinite(elr) & np.isfinite(grad) & (elr > 0) & (grad > 0)
        if not keep.any():
            continue
        ax.plot(elr[keep], grad[keep], ".", color=f"C{i}", ms=1.5, alpha=0.4, label=label)
        grid = np.geomspace(grad[keep].min(), grad[keep].max(), 50)
        line = equilibrium_line(run, grid)
        if line is not None:
            ax.plot(line, grid, "--", color=f"C{i}", lw=1.2)
    ax.set(xscale="log", yscale="log", xlabel=r"effective lr $\tilde\eta$", ylabel=r"$\|\tilde g\|$")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, markerscale=6)  # the per-step dots are tiny
    ax.set_title(
        r"phase diagram (dashed, SGD: $\tilde\eta\|\tilde g\| = \sqrt{\eta\lambda(2-\eta\lambda)}$)", fontsize=9
    )


def four_panels(runs: list[Run], path: Path, labels: list[str] | None = None, title: str | None = None) -> Path:
    """Draw the paper's four panels for ``runs`` on one 2×2 figure and save it as a PNG.

    Panels: train loss per step (log y); test error ``1 − test_acc`` at the evaluated steps (``run.evals``); the
    SI weight norm ρ per step (log y) with the destabilisations of ``run.summary["events"]`` marked; the phase
    diagram η̃ against ‖g̃‖ (log-log) with each run's equilibrium line ``η̃ = √(ηλ(2−ηλ))/‖g̃‖``
    (:func:`theory.equilibrium_elr`; drawn for plain SGD with a free norm only). One colour per run throughout.

    Parameters
    ----------
    runs : list of Run
        The runs to draw (a few: one colour each).
    path : Path
        Where to write the PNG; its folder is created.
    labels : list of str, optional
        One legend entry per run; default :func:`run_label`.
    title : str, optional
        Over the four panels (wrapped).

    Returns
    -------
    Path
        ``path``.
    """
    labels = _labels(runs, labels)
    fig = Figure(figsize=(11, 8), dpi=110)
    axes = fig.subplots(2, 2)
    loss_ax, error_ax, rho_ax, phase_ax = axes.flat
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        loss_ax.plot(*positive(run.steps, run.series["loss"]), color=f"C{i}", lw=0.7, label=label)
        evaluated = [(e["step"], 1 - e["test_acc"]) for e in run.evals if "test_acc" in e]
        if evaluated:
            error_ax.plot(*np.array(evaluated).T, "o-", color=f"C{i}", ms=3, lw=1, label=label)
    loss_ax.set(yscale="log", xlabel="step", ylabel="train loss (minibatch)", title="train loss")
    error_ax.set(xlabel="step", ylabel="test error", title="test error")
    draw_rho(rho_ax, runs, labels)
    draw_phase(phase_ax, runs, labels)
    if title:
        fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=9)
    return save_figure(fig, path)


def _labels(runs: list[Run], labels: list[str] | None) -> list[str]:
    """One label per run: ``labels``, or :func:`run_label` of each; ``ValueError`` for a count that does not fit."""
    labels = [run_label(run) for run in runs] if labels is None else list(labels)
    if len(labels) != len(runs):
        raise ValueError(f"labels needs one entry per run ({len(runs)}); got {len(labels)}")
    return labels


def run_warning(run: Run) -> np.ndarray:
    """The early warning at each step of ``run``, 0 or 1, shape (n,): the ``warning`` of its records (computed
    online as it trained) or, in a run recorded before the warning was, :func:`analysis.early_warning.warnings_of`
    over its η̃ with its summary's η, λ and β (what :func:`analysis.summary.summarize_run` scores)."""
    if run.records and "warning" in run.records[0]:
        return np.array([record["warning"] for record in run.records], dtype=np.int64)
    summary = run.summary
    return warnings_of(run.steps, run.series["elr"], summary["lr_effective"], summary["wd"], summary["momentum"])[
        "warning"
    ]


def early_warning_panels(runs: list[Run], path: Path, labels: list[str] | None = None) -> Path:
    """η̃ per step (log y) of each run on a panel of its own, its destabilisations (``summary["events"]``) as
    dashed vertical lines and the stretches where its early warning is on (:func:`run_warning`) shaded, and save
    it as a PNG: the warning is right where a line falls in a shaded stretch, at least
    :data:`analysis.early_warning.MIN_LEAD` steps after the stretch began.

    Parameters
    ----------
    runs : list of Run
        The runs to draw, one panel each, titled with its label and ηλ.
    path : Path
        Where to write the PNG; its folder is created.
    labels : list of str, optional
        One title per run; default :func:`run_label`.

    Returns
    -------
    Path
        ``path``.
    """
    labels = _labels(runs, labels)
    fig = Figure(figsize=(10, 0.6 + 2.2 * len(runs)), dpi=110)
    axes = fig.subplots(len(runs), 1, squeeze=False)[:, 0]
    shade, line = {"color": "gold", "alpha": 0.35, "lw": 0}, {"color": "0.25", "ls": "--", "lw": 0.7}
    for i, (ax, run, label) in enumerate(zip(axes, runs, labels, strict=True)):
        ax.plot(*positive(run.steps, run.series["elr"]), color=f"C{i}", lw=0.8)
        for start, end in on_intervals(run_warning(run)):
            ax.axvspan(run.steps[start], run.steps[end - 1] + 1, **shade)
        for event in run.summary.get("events", []):
            ax.axvline(event, **line)
        ax.set(yscale="log", ylabel=r"$\tilde\eta$", title=f"{label} (ηλ = {run.summary['lr_wd']:g})")
    axes[-1].set_xlabel("step")
    # one legend for every panel, on the top one: a panel may have no warning or no destabilisation to label
    legend = [
        Line2D([], [], color="C0", lw=0.8, label=r"$\tilde\eta$ (a colour per run)"),
        Patch(**shade, label="warning on"),
        Line2D([], [], **line, label="destabilisation"),
    ]
    axes[0].legend(handles=legend, fontsize=7, loc="upper left")
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """Give every panel of ``fig`` a grid (and a legend where it has labels and none yet), save it to ``path``,
    close it."""
    for ax in fig.axes:
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend() is None and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
