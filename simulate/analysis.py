"""Measured against predicted periods, per configuration, and the frequency law across a grid.

The same functions serve simulated and measured runs: they take the ρ and η̃ series of a run (the schema of
:mod:`simulate.records`) and its hyper-parameters.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

import theory
from simulate.detection import analyze_periodicity


def predicted_periods(elr: np.ndarray, events: np.ndarray, lr: float, wd: float, momentum: float, elr_critical):
    """The period law applied to each measured period.

    For consecutive events ``e_k < e_{k+1}`` the effective learning rate bottoms out at
    ``t_k = argmin η̃ on (e_k, e_{k+1})``; from there pure decay takes ``period_length(η̃(t_k), η̃_c)`` steps, so
    the predicted period is ``(t_k − e_k) + period_length(η̃(t_k), η̃_c)``.

    Parameters
    ----------
    elr : ndarray, shape (n_steps,)
        η̃ per step.
    events : ndarray of int
        Destabilisation indices (start of each jump), increasing.
    lr, wd, momentum : float
        The run's η, λ, β.
    elr_critical : float or ndarray, shape (len(events) − 1,)
        η̃_c per period: :func:`theory.critical_elr` of the effective sharpness, or the η̃ measured at the next
        destabilisation.

    Returns
    -------
    ndarray, shape (len(events) − 1,)
        Predicted length of each period, in steps.
    """
    starts, ends = events[:-1], events[1:]
    pairs = zip(starts, ends, strict=True)
    bottoms = np.array([s + 1 + np.argmin(elr[s + 1 : e]) if e > s + 1 else s for s, e in pairs], dtype=int)
    elr_start = elr[bottoms]
    elr_critical = np.broadcast_to(np.asarray(elr_critical, dtype=np.float64), elr_start.shape)
    # A bottom already above the threshold leaves nothing to decay: the law predicts no wait after the reset.
    decay = np.zeros_like(elr_start)
    below = elr_start < elr_critical
    if below.any():
        decay[below] = theory.period_length(elr_start[below], elr_critical[below], lr, wd, momentum)
    return (bottoms - starts) + decay


def free_decay_rate(lr: float, wd: float, momentum: float = 0.0) -> float:
    """Per-step fall of log ρ under weight decay alone: ``−ln(1−ηλ)/(1−β)`` (exact for β = 0, leading order in ηλ
    with momentum). Detection compares a run's final trend of log ρ with it to tell convergence from equilibrium."""
    return float(-np.log1p(-lr * wd) / (1.0 - momentum))


def summarize(steps, si_norm, elr, *, lr, wd, momentum=0.0, eff_sharpness=None, loss=None, window=None) -> dict:
    """One row of a sweep's summary for a single run.

    Parameters
    ----------
    steps : ndarray of int, shape (n_records,)
        Step of each record; records must be every step (period lengths are in steps).
    si_norm, elr : ndarray, shape (n_records,)
        ρ and η̃ per step; NaN from a divergence on.
    lr, wd, momentum : float
        η, λ, β of the run.
    eff_sharpness : float or None
        Effective sharpness of the minima, for the threshold η̃_c = 2(1−ηλ)/s̃; without it only the
        measured-threshold prediction is made.
    loss : ndarray or None
        Loss per step, to tell convergence from equilibrium.
    window : int or None
        Samples a jump may take to rise (see :func:`simulate.detection.detect_destabilizations`).

    Returns
    -------
    dict
        ``regime``, ``n_destabilizations``, measured period (mean, std, frequency and its bootstrap interval),
        ``period_predicted`` and ``relative_error`` (sharpness threshold), the same with the measured threshold,
        ``elr_critical`` and ``elr_at_destabilization``.
    """
    if np.any(np.diff(steps) != 1):
        raise ValueError("summarize needs a record at every step")
    found = analyze_periodicity(si_norm, decay_rate=free_decay_rate(lr, wd, momentum), loss=loss, window=window)
    measured = found.to_json()
    row = {"lr": lr, "wd": wd, "momentum": momentum, "lr_wd": lr * wd, "period_measured": measured.pop("period")}
    row.update(measured)
    events = np.asarray(found.events, dtype=int)
    kept = slice(len(events) - 1 - len(found.periods), None)  # the transient interval, if dropped, comes first
    elr_critical = None if eff_sharpness is None else float(theory.critical_elr(eff_sharpness, lr, wd))
    row["elr_critical"] = elr_critical
    row["elr_at_destabilization"] = float(np.mean(elr[events])) if events.size else float("nan")
    for suffix, threshold in (("", elr_critical), ("_measured_threshold", elr[events[1:]] if events.size else None)):
        predicted = float("nan")
        if threshold is not None and len(found.periods):
            predicted = float(np.mean(predicted_periods(elr, events, lr, wd, momentum, threshold)[kept]))
        row[f"period_predicted{suffix}"] = predicted
        row[f"relative_error{suffix}"] = (predicted - found.period) / found.period
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
        (:func:`simulate.detection.detect_destabilizations`), so a measurement at the event's own step, taken
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
