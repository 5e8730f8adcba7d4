"""C10: the toy simulator, matched to a real run's thresholds, reproduces the real run's periods.

What the simulator and the real net share is the law of a period: after a jump η̃ decays from its post-jump value
η̃_s towards a threshold η̃_c at which the minimum destabilises. The comparison feeds the simulator exactly those
measured quantities, period by period, and nothing else:

1. From one of C3's runs (same spec, so no extra training), for each counted period k: its start ``e_k``, the
   bottom ``b_k`` of η̃ after the jump, ``η̃_s = η̃(b_k)`` and the threshold the run met, ``η̃_c = η̃(e_{k+1})``.
2. The toy model is a noisy :class:`~simulate.models.RayleighQuotient` of effective sharpness 1, trained with the
   real run's η and λ. Only η̃·s̃ matters to its dynamics (scaling the spectrum by ``a`` is scaling η̃ by ``a``), so
   matching its sharpness to the run is choosing its starting η̃ in its own units. Started from a random direction
   it first re-converges (ρ grows, η̃ falls to a bottom ``m``), then decays until it destabilises at ``f``, a little
   above its critical ``2(1−ηλ)`` (the unstable direction must grow out of the noise, as in the real run). Its
   start is rescaled over a few calibration passes until ``η̃(m)/η̃(f)`` is the measured ``η̃_s/η̃_c``: the
   simulator starts at the measured post-jump η̃ with a sharpness that puts its threshold at the measured one.
3. The simulated period is ``(b_k − e_k) + (f − m)`` (the jump itself, ``e_k → b_k``, is the real run's); the
   verdict compares the mean simulated and measured periods.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from paper_checks import c3_frequency
from paper_checks.common import CheckContext, Verdict
from simulate.detection import detect_destabilizations
from simulate.integrate import integrate
from simulate.models import RayleighQuotient

CLAIM = "C10"
TITLE = "The simulator, fed the measured post-jump η̃ and threshold, gives the measured period at the same η, λ"
HEADLINE = ("relative_difference",)

_TOLERANCES = {
    "period_tolerance": 0.15,  # |mean simulated − mean measured| / mean measured
    "min_periods": 4,  # counted periods of the real run the comparison needs
}
# dim 8, noise 1e-3: the unstable direction is kept populated (as SGD noise does in the net) while the noise adds
# < 1% to the growth of ρ² per step against weight decay's 2ηλ at the ηλ here.
_SIMULATOR = {"dim": 8, "noise": 1e-3, "seed": 0, "calibration_passes": 2, "steps_per_period": 3, "trace_periods": 4}

SETTINGS = {
    scale: {
        "run": c3_frequency.SETTINGS[scale]["run"],
        "reference": c3_frequency.SETTINGS[scale]["grid"][index],
        **_SIMULATOR,
        **_TOLERANCES,
    }
    for scale, index in (("tiny", 0), ("small", 1), ("paper", 0))
}


def period_bounds(elr: np.ndarray, events: np.ndarray, n_periods: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start, η̃ bottom after the jump, and end of the last ``n_periods`` periods between ``events``.

    Returns
    -------
    starts, bottoms, ends : ndarray of int, shape (n_periods,)
        ``e_k``, ``b_k = argmin η̃ on (e_k, e_{k+1})`` and ``e_{k+1}``.
    """
    starts, ends = events[-n_periods - 1 : -1], events[-n_periods:]
    bottoms = np.array([s + 1 + np.argmin(elr[s + 1 : e]) for s, e in zip(starts, ends, strict=True)], dtype=int)
    return starts, bottoms, ends


def simulate_decay(ratio: np.ndarray, lr: float, wd: float, settings: dict) -> dict:
    """Run the simulator matched to each period's measured ``η̃_s/η̃_c`` (see the module).

    ``settings["calibration_passes"]`` passes rescale the start by ``ratio / (simulated η̃(m)/η̃(f))`` before the
    last, reported one.

    Parameters
    ----------
    ratio : ndarray, shape (n,)
        Measured ``η̃_s/η̃_c`` of each period (< 1).
    lr, wd : float
        The real run's η and λ.
    settings : dict
        ``dim``, ``noise``, ``seed`` of the model, ``steps`` to simulate.

    Returns
    -------
    dict
        Of the last pass, per period: ``decay`` (``f − m``, NaN where it did not destabilise), ``first`` (``f``,
        −1 for none), ``bottom`` (``m``), ``ratio`` (the simulated ``η̃(m)/η̃(f)``), ``threshold_over_critical``
        (``η̃(f)/(2(1−ηλ))``) and ``elr`` (η̃ per step in the model's units, shape (n, steps)).
    """
    model = RayleighQuotient.evenly_spaced(settings["dim"], top=0.5, noise=settings["noise"])  # s̃ = 1
    rows = np.arange(ratio.size)

    def bottom_and_destabilization(elr0):
        trajectory = integrate(
            model, lr, wd, steps=settings["steps"], si_norm0=np.sqrt(lr / elr0), seed=settings["seed"]
        )
        elr = trajectory.series["elr"]
        events = detect_destabilizations(trajectory.series["si_norm"], "si_norm")
        first = np.array([e[0] if e.size else -1 for e in events])
        bottom = np.array([np.argmin(row[: max(f, 1)]) for row, f in zip(elr, first, strict=True)])
        return bottom, first, elr

    critical = 2 * (1 - lr * wd)  # of the model, whose effective sharpness is 1
    elr0 = critical * ratio
    for _ in range(settings["calibration_passes"] + 1):
        bottom, first, elr = bottom_and_destabilization(elr0)
        found = first >= 0
        reached = np.where(found, elr[rows, bottom] / elr[rows, np.maximum(first, 0)], ratio)
        # The bottom sits below the start (re-convergence) and the threshold above the critical η̃ (the unstable
        # direction grows out of the noise first): rescale the start until bottom/threshold is the measured ratio.
        # Never past the critical η̃: a start above it destabilises at once, before there is a bottom to count from.
        elr0 = np.minimum(elr0 * ratio / reached, critical)
    return {
        "decay": np.where(found, first - bottom, np.nan).astype(float),
        "first": first,
        "bottom": bottom,
        "ratio": np.where(found, reached, np.nan),
        "threshold_over_critical": np.where(found, elr[rows, np.maximum(first, 0)] / critical, np.nan),
        "elr": elr,
    }


def run(ctx: CheckContext, settings: dict) -> Verdict:
    """Compare the matched simulator's periods with one real run's (see the module)."""
    (reference,) = c3_frequency.measure_grid(ctx, {"run": settings["run"], "grid": [settings["reference"]]})
    spec, row = reference.spec, reference.summary
    elr = reference.series["elr"]
    n = len(row["periods"])
    events = np.asarray(row["events"], dtype=int)
    tolerance = {key: settings[key] for key in _TOLERANCES}
    if n < settings["min_periods"]:
        _plot_traces(reference.steps, elr, None, ctx.figure_path(CLAIM))
        return Verdict(
            claim=CLAIM,
            title=TITLE,
            passed=False,
            summary=f"the reference run has {n} counted periods (need ≥ {settings['min_periods']}): nothing to match",
            numbers={"lr": spec.lr, "wd": spec.wd, "n_periods": n, "regime": row["regime"]},
            tolerance=tolerance,
            figure=ctx.figure_path(CLAIM).name,
        )
    starts, bottoms, ends = period_bounds(elr, events, n)
    ratio = elr[bottoms] / elr[ends]
    steps = int(settings["steps_per_period"] * np.max(ends - starts))
    simulated = simulate_decay(ratio, spec.lr, spec.wd, {**settings, "steps": steps})
    period_measured = (ends - starts).astype(float)
    period_simulated = (bottoms - starts) + simulated["decay"]
    difference = float((np.mean(period_simulated) - np.mean(period_measured)) / np.mean(period_measured))
    per_period = (period_simulated - period_measured) / period_measured
    passed = bool(np.isfinite(difference) and abs(difference) <= settings["period_tolerance"])

    _plot_traces(
        reference.steps, elr, (starts, bottoms, ends, simulated, period_simulated), ctx.figure_path(CLAIM), settings
    )
    summary = (
        f"mean period simulated {np.mean(period_simulated):.1f} vs measured {np.mean(period_measured):.1f} steps "
        f"(difference {difference:+.1%}, need ≤ {settings['period_tolerance']:.0%}) over {n} periods at "
        f"η={spec.lr:g}, λ={spec.wd:.3g}; median per-period |difference| {np.nanmedian(np.abs(per_period)):.1%}"
    )
    numbers = {
        "lr": spec.lr,
        "wd": spec.wd,
        "lr_wd": spec.lr * spec.wd,
        "n_periods": n,
        "period_measured_mean": float(np.mean(period_measured)),
        "period_simulated_mean": float(np.mean(period_simulated)),
        "relative_difference": difference,
        "median_abs_relative_difference_per_period": float(np.nanmedian(np.abs(per_period))),
        "period_measured": period_measured.tolist(),
        "period_simulated": period_simulated.tolist(),
        "elr_after_jump": elr[bottoms].tolist(),
        "elr_threshold": elr[ends].tolist(),
        "elr_ratio_measured": ratio.tolist(),
        "elr_ratio_simulated": simulated["ratio"].tolist(),
        "simulator_threshold_over_critical": simulated["threshold_over_critical"].tolist(),
    }
    return Verdict(
        claim=CLAIM,
        title=TITLE,
        passed=passed,
        summary=summary,
        numbers=numbers,
        tolerance=tolerance,
        figure=ctx.figure_path(CLAIM).name,
    )


def _plot_traces(steps, elr, matched, path, settings=None) -> None:
    """Left: the measured η̃ over a few periods with each period's simulated η̃ (mapped to the run's units: divided by
    the matched sharpness) from the bottom after the jump; right: measured and simulated period per period."""
    fig = Figure(figsize=(10, 4), dpi=120)
    left, right = fig.subplots(1, 2)
    if matched is None:
        left.semilogy(steps, elr, color="C0", lw=1, label="measured")
        right.text(0.5, 0.5, "too few periods to compare", ha="center", va="center", transform=right.transAxes)
    else:
        starts, bottoms, ends, simulated, period_simulated = matched
        shown = min(settings["trace_periods"], starts.size)
        window = slice(starts[0], ends[shown - 1] + 1)
        left.semilogy(steps[window], elr[window], color="C0", lw=1, label="measured η̃")
        for k in range(shown):
            # Mapped onto the run: bottoms aligned in time, thresholds in value (the matched sharpness).
            first, bottom = simulated["first"][k], simulated["bottom"][k]
            if first < 0:
                continue
            trace = simulated["elr"][k, bottom : first + 3] * elr[ends[k]] / simulated["elr"][k, first]
            left.semilogy(steps[bottoms[k]] + np.arange(trace.size), trace, "--", color="C3", lw=1.2,
                          label="simulated η̃" if k == 0 else None)  # fmt: skip
        left.set(xlabel="step", ylabel=r"$\tilde\eta$", title="η̃ over a few periods")
        index = np.arange(starts.size)
        right.bar(index - 0.2, ends - starts, width=0.4, color="C0", label="measured")
        right.bar(index + 0.2, period_simulated, width=0.4, color="C3", label="simulated")
        right.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.set(xlabel="period", ylabel="length (steps)", title="Period length")
        right.legend(fontsize=8)
    left.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
