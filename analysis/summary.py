"""The summary row of a run, simulated or measured, and the frequency law across a grid of them.

:func:`summarize_run` (and :func:`summarize_records` for a measured run's records) gathers into one row of
:data:`analysis.schema.SUMMARY_FIELDS` what the other modules find: the destabilisations and regime
(:mod:`analysis.destabilization`), the periods predicted in hindsight (:mod:`analysis.periods`), where η̃·s̃ stood
before each destabilisation (:func:`threshold_crossings`) and the forecast (:mod:`analysis.forecast`). Across a grid,
:func:`frequency_slope` fits log frequency against log ηλ.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
from scipy import stats

from bnwd import theory
from bnwd.analysis.destabilization import DEFAULT_SETTINGS, analyze
from bnwd.analysis.early_warning import band_warnings, score_run
from bnwd.analysis.forecast import MIN_HISTORY, run_forecast
from bnwd.analysis.periods import ROUNDING_FLOOR, escape_floor, period_a_priori, periods_in_hindsight
from bnwd.analysis.records import series_arrays
from bnwd.analysis.schema import NORM_CONTROLS, NormControl

__all__ = [
    "a_priori_slope",
    "frequency_slope",
    "frequency_slope_band",
    "summarize_records",
    "summarize_run",
    "threshold_crossings",
]


def summarize_run(
    steps,
    series,
    *,
    lr,
    wd,
    momentum=0.0,
    lr_effective=None,
    norm_control: NormControl = "free",
    eff_sharpness=None,
    settings=DEFAULT_SETTINGS,
    error_floor=ROUNDING_FLOOR,
    gradient_noise=0.0,
) -> dict:
    """The summary row of one run, simulated or measured: its destabilisations, periods and regime, their range over
    the detector's sensitivity band, and the period law's predictions.

    The destabilisations and the regime are those of :func:`analysis.destabilization.analyze` (ρ's jumps confirmed
    by the loss's spikes; at a fixed norm or a fixed η̃, where ρ cannot jump, the loss's spikes). The period law
    (:func:`analysis.periods.periods_in_hindsight`) needs a free norm that weight decay shrinks: for fixed-norm,
    fixed-ELR and λ = 0 runs its predictions are NaN.

    Parameters
    ----------
    steps : ndarray of int, shape (n_records,)
        Step of each record; records must be every step (period lengths are in steps).
    series : dict of ndarray, shape (n_records,) each
        The :data:`analysis.schema.SERIES` of the run; NaN from a divergence on.
    lr, wd, momentum : float
        η as configured, λ, β.
    lr_effective : float, optional
        The learning rate applied to the scale-invariant weights, when it is not ``lr`` (a fixed-ELR run).
    norm_control : {"free", "fixed_norm", "fixed_elr"}
        How ρ evolved (:data:`analysis.schema.NORM_CONTROLS`).
    eff_sharpness : float, optional
        Effective sharpness s̃ of the minima, for the threshold η̃_c = 2(1−ηλ)/s̃; without it only the
        measured-threshold prediction is made.
    settings : DetectorSettings
        The detector's settings (:mod:`analysis.destabilization`); the band is the declared one,
        :data:`~analysis.destabilization.SENSITIVITY_BAND`.
    error_floor, gradient_noise : float
        For the predictions with the escape delay: ln of the smallest angular error the weights keep (their
        rounding: :data:`analysis.periods.ROUNDING_FLOOR` in float64, ``ln ε₃₂`` in float32), and the gradient noise
        σ per direction at unit norm, whose kicks around the crossing floor the error too (:func:`theory.noise_floor`).

    Returns
    -------
    dict
        The :data:`analysis.schema.SUMMARY_FIELDS` of a run but ``run_id`` and the sharpness crossings; floats that
        are undefined (a period of a run without periods) are NaN.
    """
    steps = np.asarray(steps)
    if np.any(np.diff(steps) != 1):
        raise ValueError("summarize_run needs a record at every step")
    if norm_control not in NORM_CONTROLS:
        raise ValueError(f"norm_control must be one of {NORM_CONTROLS}; got {norm_control!r}")
    lr_effective = lr if lr_effective is None else lr_effective
    found = analyze(series, lr=lr_effective, wd=wd, momentum=momentum, norm_control=norm_control, settings=settings)
    elr = np.asarray(series["elr"], dtype=np.float64)
    events = np.asarray(found.events, dtype=int)
    diverged_at = found.evidence.get("diverged_at")
    n_band, period_band = found.band_range("n_destabilizations"), found.band_range("period")
    row = {
        "lr": lr,
        "lr_effective": lr_effective,
        "wd": wd,
        "momentum": momentum,
        "lr_wd": lr_effective * wd,
        "norm_control": norm_control,
        "steps_trained": int(steps.size),
        "diverged_at": None if diverged_at is None else int(steps[diverged_at]),
        "detected_on": "+".join(found.detection.signals),
        "detection_window": found.detection.window,
        "regime": found.regime,
        "regime_rule": found.evidence["rule"],
        "regime_evidence": {k: v for k, v in found.evidence.items() if k != "rule"},
        "n_destabilizations": int(events.size),
        "events": steps[events].tolist(),
        "periods": found.periods.tolist(),
        "period_measured": found.period,
        "period_std": found.period_std,
        "frequency": found.frequency,
        "frequency_ci_low": found.frequency_ci[0],
        "frequency_ci_high": found.frequency_ci[1],
        "detection_band": {label: {"n_destabilizations": n, "period": p} for label, (n, p) in found.band.items()},
        "n_destabilizations_band_low": int(n_band[0]) if math.isfinite(n_band[0]) else 0,
        "n_destabilizations_band_high": int(n_band[1]) if math.isfinite(n_band[1]) else 0,
        "period_band_low": period_band[0],
        "period_band_high": period_band[1],
        "eff_sharpness": math.nan if eff_sharpness is None else float(eff_sharpness),
    }
    predictable = norm_control == "free" and wd > 0
    sharpness_known = predictable and math.isfinite(row["eff_sharpness"])
    elr_critical = float(theory.critical_elr(row["eff_sharpness"], lr_effective, wd)) if sharpness_known else math.nan
    row["elr_critical"] = elr_critical
    row["elr_at_destabilization"] = float(np.mean(elr[events])) if events.size else math.nan
    kept = slice(len(events) - 1 - len(found.periods), None)  # the transient interval, if dropped, comes first
    variants = (("", elr_critical, None), ("_measured_threshold", elr[events[1:]], None))
    floor = math.nan
    if predictable:
        floor = escape_floor(
            error_floor, lr_effective, wd, eff_sharpness=row["eff_sharpness"], gradient_noise=gradient_noise
        )
    variants += (("_with_delay", elr_critical, floor),)  # derived for β = 0 only
    for suffix, threshold, delay_floor in variants:
        predicted = math.nan
        derived = delay_floor is None or not momentum
        if predictable and derived and len(found.periods) and np.all(np.isfinite(threshold)):
            periods = periods_in_hindsight(elr, events, lr_effective, wd, momentum, threshold, delay_floor)
            predicted = float(np.mean(periods[kept]))
        row[f"period_predicted{suffix}"] = predicted
        row[f"relative_error{suffix}"] = (predicted - found.period) / found.period
    a_priori = period_a_priori(floor, lr_effective, wd) if predictable and not momentum else math.nan
    row["period_predicted_a_priori"] = a_priori
    row["relative_error_a_priori"] = (a_priori - found.period) / found.period
    report = None
    if predictable and theory.monotone_decay(lr_effective, wd, momentum):
        n = elr.size if diverged_at is None else diverged_at
        loss = None if series.get("loss") is None else np.asarray(series["loss"], dtype=float)[:n]
        warned = band_warnings(steps[:n], elr[:n], lr_effective, wd, momentum)
        report = score_run(warned, events, n, loss=loss, rise_time=found.detection.window)
    row["early_warning"] = None if report is None else report.as_dict()
    return row


def threshold_crossings(steps, values, events, threshold) -> list[dict]:
    """Where a sparsely measured quantity (η̃·s̃) stood before each destabilisation, and when it crossed a threshold.

    The linear theory predicts the *upward crossing* of ``threshold`` (2(1−ηλ) for η̃·s̃) a few steps before a
    destabilisation; the last measurement before it is usually already inside the blow-up, where the unstable mode
    has carried the weights off the valley floor. Both are reported.

    Parameters
    ----------
    steps : array_like of int, shape (n,)
        Steps of the measurements, increasing.
    values : array_like, shape (n,)
        The measured quantity at those steps.
    events : array_like of int, shape (m,)
        Destabilisation steps, increasing: each the last step before the rise
        (:func:`analysis.detection.find_jumps`), so a measurement at the event's own step, taken
        before that step's update, precedes it.
    threshold : float
        The level whose upward crossing should precede each event.

    Returns
    -------
    list of dict, one per event
        ``event``; ``last_measured_at`` and ``last`` (the last measurement up to the event); ``below_at`` and
        ``below`` (the last measurement below ``threshold`` after the previous event), ``crossing_at`` and
        ``crossing`` (the measurement after it, if up to the event), ``steps_crossing_to_event``. Missing ones are
        None: no measurement below the threshold since the previous event means no crossing.
    """
    steps, values = np.asarray(steps, dtype=np.int64), np.asarray(values, dtype=np.float64)
    events = np.asarray(events, dtype=np.int64)
    if steps.shape != values.shape or steps.ndim != 1:
        raise ValueError(f"steps and values must be 1-d of one length, got shapes {steps.shape} and {values.shape}")
    if np.any(np.diff(steps) <= 0) or np.any(np.diff(events) <= 0):
        raise ValueError("steps and events must be strictly increasing")
    ends = np.searchsorted(steps, events, side="right")
    starts = np.searchsorted(steps, np.concatenate([[-1], events])[: events.size], side="right")
    found = []
    for event, start, end in zip(events.tolist(), starts.tolist(), ends.tolist(), strict=True):
        below = start + np.flatnonzero(values[start:end] < threshold)
        entry = {"event": event, "last_measured_at": None, "last": None, "below_at": None, "below": None}
        entry |= {"crossing_at": None, "crossing": None, "steps_crossing_to_event": None}
        if end > 0:
            entry |= {"last_measured_at": int(steps[end - 1]), "last": float(values[end - 1])}
        if below.size:
            entry |= {"below_at": int(steps[below[-1]]), "below": float(values[below[-1]])}
            if below[-1] + 1 < end:
                crossing = below[-1] + 1
                entry |= {"crossing_at": int(steps[crossing]), "crossing": float(values[crossing])}
                entry["steps_crossing_to_event"] = event - int(steps[crossing])
        found.append(entry)
    return found


def frequency_slope_band(rows: list[dict], *, min_periods: int = 1) -> dict:
    """:func:`frequency_slope` over the periodic rows, and its min–max over the detector's sensitivity band.

    Parameters
    ----------
    rows : list of dict
        Summary rows (:func:`summarize_run`): ``regime``, ``lr_wd``, ``periods``, ``frequency``, ``detection_band``.
    min_periods : int
        Periods a row needs (after the transient) for its frequency to count.

    Returns
    -------
    dict
        :func:`frequency_slope`'s fields at the chosen settings, ``slope_band`` (label -> slope at that setting,
        with the rows periodic there: the same rows, the band's period) and ``slope_band_low``/``_high``.
    """
    counted = [r for r in rows if r["regime"] == "periodic" and len(r["periods"]) >= min_periods]
    fit = frequency_slope([r["lr_wd"] for r in counted], [r["frequency"] for r in counted])
    labels = dict.fromkeys(label for r in rows for label in r["detection_band"])
    band = {
        label: frequency_slope(
            [r["lr_wd"] for r in counted], [1 / r["detection_band"][label]["period"] for r in counted]
        )["slope"]
        for label in labels
    }
    values = np.array(list(band.values()), dtype=float)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (math.nan, math.nan)
    return fit | {"slope_band": band, "slope_band_low": low, "slope_band_high": high}


def a_priori_slope(rows: list[dict]) -> float:
    """The slope of log frequency against log ηλ that the a priori periods (``period_predicted_a_priori``,
    :func:`theory.plane_period`) of the periodic rows give: the toy's predicted exponent, fed nothing measured.

    Parameters
    ----------
    rows : list of dict
        Summary rows (:func:`summarize_run`).

    Returns
    -------
    float
        NaN with fewer than two periodic rows with a finite prediction.
    """
    periodic = [r for r in rows if r["regime"] == "periodic"]
    frequency = [1 / r["period_predicted_a_priori"] for r in periodic]
    return frequency_slope([r["lr_wd"] for r in periodic], frequency)["slope"]


def frequency_slope(lr_wd, frequency, confidence: float = 0.95) -> dict:
    """Least-squares slope of log frequency against log ηλ, with its t-interval.

    Parameters
    ----------
    lr_wd, frequency : array_like, shape (n,)
        ηλ and the measured frequency of each periodic configuration; non-finite entries are skipped.
    confidence : float
        Level of the interval.

    Returns
    -------
    dict
        ``slope``, ``slope_ci`` (low, high), ``intercept``, ``n_points``; NaN where fewer than 3 points (2 for the
        slope alone) make it undefined.
    """
    x, y = np.log(np.asarray(lr_wd, dtype=float)), np.log(np.asarray(frequency, dtype=float))
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    nan = float("nan")
    if x.size < 2 or np.ptp(x) == 0:
        return {"slope": nan, "slope_ci": (nan, nan), "intercept": nan, "n_points": int(x.size)}
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.5 + confidence / 2, x.size - 2) * fit.stderr if x.size > 2 else nan
    return {
        "slope": float(fit.slope),
        "slope_ci": (float(fit.slope - half), float(fit.slope + half)),
        "intercept": float(fit.intercept),
        "n_points": int(x.size),
    }


def summarize_records(config: dict, records: list[dict], settings=DEFAULT_SETTINGS) -> dict:
    """The summary of a measured run: :func:`analysis.summary.summarize_run` of its records, with what the monitor
    knows besides.

    The norm control comes from ``fix_elr`` / ``fix_norm``, the learning rate from ``lr_effective``; the effective
    sharpness of the minima is the median of those measured. Where η̃·s̃ was measured, the summary adds
    ``elr_times_sharpness_threshold`` (:func:`theory.stability_threshold`: 2(1−ηλ), or heavy ball's threshold
    with momentum) and, per destabilisation, where η̃·s̃ stood before it (:func:`analysis.summary.threshold_crossings`);
    with momentum and ηλ > (1−√β)², where the theory derives no threshold, neither. With a free norm, λ > 0, a
    threshold and at least 5 periods it adds ``period_forecast`` (:func:`analysis.forecast.run_forecast`): each
    period predicted from its first quarter, and the next one.

    Parameters
    ----------
    config : dict
        The run's ``config.json`` (``lr``, ``wd``, ``momentum``, ``lr_effective``, ``fix_norm``, ``fix_elr``).
    records : list of dict
        Its per-step records in memory form (:func:`analysis.records.read_jsonl` of ``series.jsonl``).
    settings : DetectorSettings
        The detector's settings (:mod:`analysis.destabilization`).

    Returns
    -------
    dict
        The :data:`analysis.schema.SUMMARY_FIELDS` of the run but ``run_id``.
    """
    steps, series = series_arrays(records)
    if config.get("fix_elr") is not None:
        norm_control = "fixed_elr"
    elif config.get("fix_norm") is not None:
        norm_control = "fixed_norm"
    else:
        norm_control = "free"
    measured = [r for r in records if "eff_sharpness" in r]
    lr, wd, momentum = config["lr_effective"], config["wd"], config["momentum"]
    summary = summarize_run(
        steps,
        series,
        lr=config["lr"],
        wd=wd,
        momentum=momentum,
        lr_effective=lr,
        norm_control=norm_control,
        eff_sharpness=float(np.median([r["eff_sharpness"] for r in measured])) if measured else None,
        settings=settings,
        error_floor=math.log(np.finfo(config.get("weights_dtype", "float32")).eps),
    )
    threshold = float(theory.stability_threshold(lr, wd, momentum)) if theory.monotone_decay(lr, wd, momentum) else None
    if measured and threshold is not None:
        summary["elr_times_sharpness_threshold"] = threshold
        summary["elr_times_sharpness_before_destabilization"] = threshold_crossings(
            [r["step"] for r in measured], [r["elr_times_sharpness"] for r in measured], summary["events"], threshold
        )
    if norm_control == "free" and wd > 0 and threshold is not None and len(summary["events"]) >= MIN_HISTORY + 3:
        forecasts = run_forecast(
            steps,
            series["elr"],
            summary["events"],
            [r["step"] for r in measured],
            [r["eff_sharpness"] for r in measured],
            lr=lr,
            wd=wd,
            momentum=momentum,
        )
        summary["period_forecast"] = {threshold: asdict(found) for threshold, found in forecasts.items()}
    return summary
