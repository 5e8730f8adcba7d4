"""``bnwd demo``: the theory verified, a simulated sweep and a small real sweep, in one Markdown report.

Everything the report states is computed here from the runs it made; its figures sit beside it.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from bnwd import theory
from bnwd.analysis.early_warning import HORIZON_BAND, HORIZON_FRACTION, MIN_LEAD, TARGETS
from bnwd.analysis.periods import median_abs_relative_error
from bnwd.analysis.summary import a_priori_slope, frequency_slope_band
from bnwd.paper_checks.cli.printing import clock_versus_warning, horizons_text, targets_text, unscored_reason
from bnwd.paper_checks.common import CheckContext
from bnwd.paper_checks.figures import early_warning_panels, four_panels
from bnwd.simulate.catapult import calibrate_on_runs
from bnwd.simulate.models import DEFAULT_NOISE, RayleighQuotient
from bnwd.simulate.reduced import held_out_rows
from bnwd.simulate.sweep import simulate_grid
from bnwd.theory.report import write_report

__all__ = ["DemoPlan", "early_warning_table", "plot_periods", "run_demo"]


@dataclass(frozen=True)
class DemoPlan:
    """What the demo runs: the real grid (ConvNetSI on digits, η fixed, λ varied) and the simulated one (the
    Rayleigh-quotient toy with its default noise floor, :meth:`~simulate.models.RayleighQuotient.evenly_spaced`, a
    grid in η and λ)."""

    real_lr: float = 1.0
    real_wd: tuple[float, ...] = (0.0025, 0.005, 0.01, 0.02)
    real_steps: int = 2000
    width: int = 8
    sim_lr: tuple[float, ...] = (0.5, 1.0, 2.0)
    sim_wd: tuple[float, ...] = (0.0025, 0.005, 0.01, 0.02)
    sim_steps: int = 20000
    sim_dim: int = 64


def plot_periods(
    real: list[dict], simulated: list[dict], held_out: dict, path: Path, calibrated: list | None = None
) -> Path:
    """Period against ηλ, log-log: measured (ConvNetSI), simulated (toy), and each real run's period predicted with it
    held out (:func:`simulate.reduced.held_out_periods`: the reduced model calibrated at the other runs' ηλ, and the
    baseline T·ηλ = const fitted on them): predictions that never saw the period they are compared with. With
    ``calibrated`` (:class:`simulate.catapult.CalibratedPredictions` of ``real``'s runs), a line per calibration run:
    the catapult simulator's periods from that run's constants."""

    def lr_wd_and_period(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        x = np.array([r["lr_wd"] for r in rows], dtype=float)
        y = np.array([r["period_measured"] for r in rows], dtype=float)
        return x, y

    fig = Figure(figsize=(5.5, 4.2), dpi=120)
    ax = fig.subplots()
    x, _ = lr_wd_and_period(real)
    ax.plot(*lr_wd_and_period(real), "o", label="measured: ConvNetSI, digits")
    ax.plot(x, held_out["predicted"], "D", mfc="none", color="C3", label="reduced model, that run held out")
    ax.plot(x, held_out["baseline"], "x", color="0.4", label="T·ηλ = const, that run held out")
    ax.plot(*lr_wd_and_period(simulated), "s", mfc="none", color="C1", label="simulated: toy SI model")
    order = np.argsort(x)
    for k, c in enumerate(calibrated or []):
        label = "catapult simulator, one run's constants each" if k == 0 else None
        ax.plot(x[order], c.predicted[order], "-", color="C2", alpha=0.5, label=label)
    ax.set(xscale="log", yscale="log", xlabel=r"$\eta\lambda$", ylabel="period (steps)", title="Period against ηλ")
    ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap on < 2 decades
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    return path


def _held_out_error(found: dict, key: str) -> float:
    """Median |relative error| of ``found[key]`` (:func:`simulate.reduced.held_out_rows`) over the runs with both
    numbers."""
    both = np.isfinite(found[key]) & np.isfinite(found["measured"])
    return median_abs_relative_error(found[key][both], found["measured"][both])


def _fmt(value, spec: str) -> str:
    return "—" if value is None or not np.isfinite(value) else format(value, spec)


def _slope_text(fit: dict) -> str:
    low, high = fit["slope_ci"]
    return (
        f"{_fmt(fit['slope'], '.2f')} (95% CI {_fmt(low, '.2f')} … {_fmt(high, '.2f')}; "
        f"{_fmt(fit['slope_band_low'], '.2f')} … {_fmt(fit['slope_band_high'], '.2f')} over the detector's band; "
        f"{fit['n_points']} configs)"
    )


def _forecast_errors(row: dict) -> list[float]:
    """Median |relative error| of the per-period prediction to the past threshold and its two baselines."""
    if "period_forecast" not in row:  # fewer than 5 periods
        return [float("nan")] * 3
    errors = row["period_forecast"]["past_events"]["errors"]
    return [errors[k] for k in ("prediction", "previous_period", "mean_of_others")]


def early_warning_table(rows: list[dict]) -> list[str]:
    """The Markdown table of the early warning of each summary row (its ``early_warning``,
    :func:`analysis.early_warning.score_run`) at the default horizon: ηλ, the destabilisations scored and warned,
    the median lead, the precision, the false alarms per 1000 steps, the clock's F1 at matched precision against
    the warning's, and the verdict over the horizon band; a run without a score says why."""
    key = f"{HORIZON_FRACTION:g}"
    lines = [
        "| ηλ | destabilisations scored | warned | median lead (steps) | precision | false alarms per 1000 steps | "
        "F1: clock at matched precision vs warning | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        report = row["early_warning"]
        if report is None:
            lines.append(f"| {row['lr_wd']:g} | " + "— | " * 6 + f"not scored: {unscored_reason(row)} |")
            continue
        at = report["by_horizon"][key]
        warning = at["warning"]
        cells = (
            f"{row['lr_wd']:g}",
            str(warning["n_destabilizations"]),
            str(warning["n_warned"]),
            _fmt(warning["median_lead"], "g"),
            _fmt(warning["precision"], ".2f"),
            _fmt(warning["false_alarms_per_1000"], ".1f"),
            clock_versus_warning(at),
            report["verdict"],
        )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def run_demo(out: Path, plan: DemoPlan = DemoPlan(), *, device: str = "auto", progress: bool = True, say=print) -> Path:
    """Run the demo into ``out`` and return the path of ``out/report.md``.

    Steps: (1) every theory statement proved in sympy; (2) the simulated grid in one batch; (3) the real grid, one
    ConvNetSI run per λ (cached in ``out/runs/<run_id>/``: a second demo trains nothing); (4) the report.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    say("1/4 theory: proving every statement in sympy")
    statements = [statement() for statement in theory.STATEMENTS]
    write_report(statements, out / "theory")
    n_verified = sum(s.verified for s in statements)

    say("2/4 simulate: the toy grid in one batch")
    toy = RayleighQuotient.evenly_spaced(plan.sim_dim)
    simulated = simulate_grid(
        toy, plan.sim_lr, plan.sim_wd, steps=plan.sim_steps, out=out / "simulate", progress=progress
    )["rows"]

    say(f"3/4 train: ConvNetSI width {plan.width} on digits, {len(plan.real_wd)} runs of {plan.real_steps} steps")
    ctx = CheckContext(out=out, device=device, progress=progress)
    runs = [ctx.train(ctx.spec(lr=plan.real_lr, wd=wd, steps=plan.real_steps, width=plan.width)) for wd in plan.real_wd]
    real = [run.summary for run in runs]

    say("4/4 report")
    labels = [f"η={r.spec.lr:g}, λ={r.spec.wd:g}" for r in runs]
    four_panels(runs, out / "four_panels.png", labels=labels)
    predicted = held_out_rows(real, min_periods=4)
    calibrated = [
        c
        for c in calibrate_on_runs([(run.steps, run.series, run.summary) for run in runs], min_periods=4)
        if c.held_out.any()
    ]
    plot_periods(real, simulated, predicted, out / "period_vs_etalambda.png", calibrated)
    early_warning_panels(runs, out / "early_warning.png", labels=labels)
    report = out / "report.md"
    report.write_text(
        _markdown(
            plan,
            statements,
            n_verified,
            real,
            simulated,
            predicted,
            calibrated,
            runs,
            time.perf_counter() - start,
            ctx.device,
        ),
        encoding="utf-8",
    )
    return report


def _markdown(plan, statements, n_verified, real, simulated, predicted, calibrated, runs, seconds, device) -> str:
    device_name = torch.cuda.get_device_name() if device != "cpu" and torch.cuda.is_available() else "CPU"
    lines = [
        "# bnwd demo report",
        "",
        f"Made by `bnwd demo` in {seconds:.0f} s on {platform.machine()} ({device_name}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads). Every number below was computed by this run.",
        "",
        "## 1. Theory",
        "",
        f"{n_verified} of {len(statements)} statements verified symbolically; proofs in "
        "[theory/theory.md](theory/theory.md).",
        "",
        "| statement | verified | seconds |",
        "|---|---|---|",
        *(f"| {s.name} — {s.title} | {'✓' if s.verified else '✗'} | {s.seconds:.1f} |" for s in statements),
        "",
        "## 2. Real training: ConvNetSI on digits",
        "",
        f"ConvNetSI width {plan.width} (BatchNorm without affine parameters, head frozen), SGD batch 128, "
        f"η = {plan.real_lr:g}, {plan.real_steps} steps. Panels: train loss, test error, SI weight norm ρ "
        "(destabilisations marked), and the phase diagram of η̃ against ‖g̃‖ with the equilibrium line "
        "η̃‖g̃‖ = √(ηλ(2−ηλ)).",
        "",
        "![four panels](four_panels.png)",
        "",
        "| η | λ | ηλ | regime | destabilisations | period (steps) | over the detector's band | "
        "each period predicted at a quarter of it | previous period | mean of the others |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['lr']:g} | {r['wd']:g} | {r['lr_wd']:g} | {r['regime']} | {r['n_destabilizations']} | "
            f"{_fmt(r['period_measured'], '.1f')} | {_fmt(r['period_band_low'], '.1f')}–"
            f"{_fmt(r['period_band_high'], '.1f')} | " + " | ".join(_fmt(e, ".0%") for e in _forecast_errors(r)) + " |"
            for r in real
        ),
        "",
        "Each period is predicted when a quarter of the mean past period has gone by, from η̃ after the jump and "
        "pure weight decay up to the η̃ at which the run destabilised before (`analysis.periods`: nothing from the "
        "period's own end), and scored by the median |relative error| over the run's periods, beside two baselines; "
        "— where a run has too few periods.",
        "",
        "## 3. Period against ηλ",
        "",
        f"Slope of log frequency against log ηλ: measured {_slope_text(frequency_slope_band(real))} (the period law: "
        f"1); simulated {_slope_text(frequency_slope_band(simulated))}, where `theory.plane_period` predicts "
        f"{_fmt(a_priori_slope(simulated), '.2f')} from the configs' ηλ, s̃ and noise alone (one unstable direction, "
        "small jumps: the period is twice the escape delay, ∝ 1/√ηλ). The simulator runs the Rayleigh quotient "
        f"wᵀAw/wᵀw (dimension {plan.sim_dim}, spectrum evenly spaced in [0, 1], gradient noise {DEFAULT_NOISE:g}, "
        f"{plan.sim_steps} steps) over η ∈ "
        f"{{{', '.join(f'{v:g}' for v in plan.sim_lr)}}} × λ ∈ {{{', '.join(f'{v:g}' for v in plan.sim_wd)}}}: "
        "see [simulate/summary.json](simulate/summary.json).",
        "",
        "![period against ηλ](period_vs_etalambda.png)",
        "",
        "Each real run's mean period predicted with that run held out (nothing of it but η and λ enters): the "
        "reduced model (`simulate.reduced.held_out_periods`, its one parameter, the noise, calibrated at the other "
        f"runs' ηλ) misses by a median {_fmt(_held_out_error(predicted, 'predicted'), '.0%')}; the baseline "
        f"T·ηλ = const fitted on the other runs by {_fmt(_held_out_error(predicted, 'baseline'), '.0%')}.",
        "",
        "The catapult simulator (`simulate.catapult`: the exact ELR map driven by ‖g̃‖ in its three phases) fed the "
        "constants of one run (`analysis.catapult.catapult_constants`) predicts the mean period of every run at "
        "another ηλ; each row is one calibration run, each error the median |relative error| over the runs it "
        "predicts (— where a run has too few catapults or periods); the figure above draws each calibration's "
        "periods as a line:",
        "",
        "| calibrated on ηλ | catapult simulator | T·ηλ = const through that run | power law through the other runs "
        "| control: constants shuffled in from other runs |",
        "|---|---|---|---|---|",
        *(
            f"| {real[c.calibration]['lr_wd']:g} | "
            + " | ".join(
                _fmt(error, ".0%")
                for error in (
                    c.scores.errors["prediction"],
                    c.scores.errors["constant_period_times_lr_wd"],
                    c.power_law_error,
                    c.scores.errors.get("shuffled_constants", float("nan")),
                )
            )
            + " |"
            for c in calibrated
        ),
        "",
        "## 4. Early warning",
        "",
        "The early warning (`analysis.early_warning.EarlyWarning`) reads each step's record as the run makes it, "
        "and none after it, and switches on when it predicts a destabilisation within "
        f"{horizons_text([HORIZON_FRACTION])}, at least {MIN_LEAD} steps ahead. Per run: η̃ (log scale), the "
        "destabilisations (dashed) and the steps where the warning is on (shaded).",
        "",
        "![early warning](early_warning.png)",
        "",
        "Scored at that horizon from the second destabilisation on (the first ends the transient from the "
        "initialisation): a destabilisation is warned when the warning switched on between a horizon and "
        f"{MIN_LEAD} steps before it, its lead counted from that switch-on; the precision is the share of "
        "switch-ons a destabilisation follows in that window. The clock, told each destabilisation at its step, "
        "alarms once a fraction of the mean past period has gone by; its F1 is at the fraction whose precision is "
        "at least the warning's with the best F1 (where none is that precise, the most precise one's, marked). "
        f"Verdict against the targets ({targets_text(TARGETS)}) over horizons of "
        f"{horizons_text(HORIZON_BAND)}: meets or misses them at every one, or fragile.",
        "",
        *early_warning_table(real),
        "",
        "## Next",
        "",
        "`bnwd check --scale small --out runs/check` runs every claim of the paper as a check with its verdict, "
        "numbers, tolerance and figure; `--scale paper` runs them at the paper's scale on a GPU.",
        "",
        "Runs: " + ", ".join(f"[{r.id}](runs/{r.id}/summary.json)" for r in runs),
        "",
    ]
    return "\n".join(lines)
