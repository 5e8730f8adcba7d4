"""The next destabilisation forecast online, with an interval, from any run's series.

Each period is predicted at its horizon, a fraction :data:`analysis.periods.HORIZON` of the mean past period after
its destabilisation, from what is known by then (:func:`analysis.periods.horizon_predictions`). The forecast
(:func:`forecast`) turns that prediction into steps to the next destabilisation with an interval: the ratios
measured/predicted of the periods already over give its quantiles (split conformal), so it needs no distributional
assumption, only that the past periods are like the next. Its coverage (the fraction of periods whose end fell
inside the interval issued at their horizon) and interval score (Gneiting & Raftery 2007: width plus 2/α times the
miss) are scored against the same forecast built on the baselines. :func:`run_forecast` does all of it for one run,
as the ``period_forecast`` of its summary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bnwd.analysis.periods import THRESHOLDS, Threshold, horizon_inputs, horizon_predictions, periods_at_horizon

__all__ = [
    "LEVEL",
    "MIN_HISTORY",
    "Forecast",
    "Forecaster",
    "IntervalScore",
    "NextDestabilization",
    "PeriodForecast",
    "forecast",
    "run_forecast",
]

LEVEL = 0.8
"""Nominal coverage of the forecast's interval."""
MIN_HISTORY = 3
"""Completed periods the forecast needs before it issues intervals (their ratios set the quantiles)."""

Forecaster = Literal["prediction", "previous_period", "past_mean"]
_FORECASTERS: tuple[Forecaster, ...] = ("prediction", "previous_period", "past_mean")


@dataclass(frozen=True)
class IntervalScore:
    """One forecaster's intervals: ``coverage`` (the fraction of scored periods whose length fell inside, NaN with
    none), ``interval_score`` (their mean interval score) and ``n_scored`` (periods with an interval)."""

    coverage: float
    interval_score: float
    n_scored: int


@dataclass(frozen=True)
class Forecast:
    """Intervals for each period's length issued at its horizon (:func:`forecast`): the prediction's ``low`` and
    ``high`` (shape (n,), NaN where none was issued), ``n_scored`` of them, and per forecaster its
    :class:`IntervalScore`."""

    level: float
    low: np.ndarray
    high: np.ndarray
    n_scored: int
    scores: dict[Forecaster, IntervalScore]


@dataclass(frozen=True)
class NextDestabilization:
    """Steps from now to the next destabilisation: the prediction times the past periods' median ratio
    measured/predicted, and its interval, minus the steps since the last destabilisation, clipped at 0;
    ``overdue``: that end has passed."""

    steps_to_next: float
    low: float
    high: float
    overdue: bool


@dataclass(frozen=True)
class PeriodForecast:
    """One run's periods predicted at their horizon to one threshold, and the forecast (:func:`run_forecast`):
    what the threshold was ``fed``, the median absolute relative ``errors`` of the prediction, its baselines and
    controls (:class:`analysis.periods.PredictionScores`), the forecast's ``coverage`` and ``interval_score`` per
    forecaster at ``level``, and the ``next`` destabilisation (None before the running period's horizon)."""

    fed: str
    errors: dict[str, float]
    n_scored: int
    beats_baselines: bool
    controls_fail: bool
    level: float
    coverage: dict[Forecaster, float]
    interval_score: dict[Forecaster, float]
    next: NextDestabilization | None


def _interval_score(low, high, measured, alpha: float) -> np.ndarray:
    """Gneiting & Raftery's interval score: ``(u − l) + (2/α)(l − y)₊ + (2/α)(y − u)₊`` (lower is better)."""
    return (high - low) + (2 / alpha) * np.maximum(low - measured, 0) + (2 / alpha) * np.maximum(measured - high, 0)


def _conformal_bounds(ratios: np.ndarray, alpha: float) -> np.ndarray:
    """The split-conformal ``⌊(n+1)α/2⌋``-th and ``⌈(n+1)(1−α/2)⌉``-th smallest of n ratios, clipped to the sample
    (with few ratios the exact bound would be infinite; the clipped one covers a little less)."""
    ordered = np.sort(ratios)
    n = ordered.size
    low = max(math.floor((n + 1) * alpha / 2), 1) - 1
    high = min(math.ceil((n + 1) * (1 - alpha / 2)), n) - 1
    return ordered[[low, high]]


def forecast(inputs: dict, predicted, *, level: float = LEVEL, min_history: int = MIN_HISTORY) -> Forecast:
    """Intervals for each period's length issued at its horizon, and their coverage and score against baselines.

    The interval of period k is ``[r_lo·T̂_k, r_hi·T̂_k]``, ``r_lo``/``r_hi`` the split-conformal (1−level)/2 and
    (1+level)/2 order statistics of the ratios measured/predicted of the periods that ended before ``c_k``
    (:func:`_conformal_bounds`); from then on the steps to the next destabilisation are that interval minus the steps
    since ``e_k``. The baselines are forecast the same way from their own past ratios: ``previous_period``
    (T̂ = T_{k−1}) and ``past_mean`` (T̂ = T̄_k); neither sees the future.

    Parameters
    ----------
    inputs : dict
        :func:`analysis.periods.horizon_inputs`.
    predicted : array_like, shape (n,)
        The prediction of each period (:func:`analysis.periods.periods_at_horizon`).
    level : float
        Nominal coverage in (0, 1).
    min_history : int
        Past ratios needed before an interval is issued.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    measured = inputs["measured"].astype(np.float64)
    issued = ~inputs["ended_early"]
    points = {
        "prediction": np.asarray(predicted, dtype=np.float64),
        "previous_period": inputs["previous"].astype(np.float64),
        "past_mean": inputs["past_mean"].astype(np.float64),
    }
    alpha = 1 - level
    scores, intervals = {}, {}
    for name, point in points.items():
        ratio = measured / point
        low, high = np.full(measured.shape, np.nan), np.full(measured.shape, np.nan)
        for k in range(measured.size):
            past = ratio[:k][(inputs["end"][:k] <= inputs["cutoff"][k]) & issued[:k] & np.isfinite(ratio[:k])]
            if issued[k] and np.isfinite(point[k]) and past.size >= min_history:
                low[k], high[k] = point[k] * _conformal_bounds(past, alpha)
        scored = np.isfinite(low)
        y = measured[scored]
        scores[name] = IntervalScore(
            coverage=float(np.mean((low[scored] <= y) & (y <= high[scored]))) if scored.any() else math.nan,
            interval_score=float(np.mean(_interval_score(low[scored], high[scored], y, alpha)))
            if scored.any()
            else math.nan,
            n_scored=int(scored.sum()),
        )
        intervals[name] = (low, high)
    low, high = intervals["prediction"]
    return Forecast(level, low, high, scores["prediction"].n_scored, scores)


def run_forecast(
    steps, elr, events, sharpness_steps, sharpness, *, lr: float, wd: float, momentum: float = 0.0, level=LEVEL
) -> dict[Threshold, PeriodForecast]:
    """Everything above for one run: per threshold (:data:`analysis.periods.THRESHOLDS`; ``"sharpness"`` only where
    s̃ was measured) the errors of the prediction at the horizon, its baselines and controls, the forecast's
    coverage and interval scores, and the forecast of the next destabilisation after the last step.

    Parameters
    ----------
    steps, elr, events, sharpness_steps, sharpness
        As :func:`analysis.periods.horizon_inputs`; the last step is "now".
    lr, wd, momentum : float
        η applied to the SI weights, λ > 0, β.
    level : float
        The forecast's nominal coverage.
    """
    steps, events = np.asarray(steps, dtype=np.int64), np.asarray(events, dtype=np.int64)
    now = int(steps[-1])
    # the running period, its end not yet known: a placeholder after the last step, never scored
    inputs = horizon_inputs(steps, elr, np.r_[events, now + 1], sharpness_steps, sharpness)
    running = inputs["cutoff"][-1] <= now if inputs["start"].size else False
    closed = {k: v[:-1] for k, v in inputs.items()}
    result = {}
    for threshold in THRESHOLDS if np.size(sharpness) else ("past_events",):
        found = horizon_predictions(closed, lr=lr, wd=wd, momentum=momentum, threshold=threshold)
        scores = forecast(closed, found.predicted, level=level)
        upcoming = None
        if running:
            running_row = {k: v[-1:] for k, v in inputs.items()}
            (point,) = periods_at_horizon(running_row, threshold, lr=lr, wd=wd, momentum=momentum)
            ratios = closed["measured"] / found.predicted
            ratios = ratios[np.isfinite(ratios) & ~closed["ended_early"]]
            if np.isfinite(point) and ratios.size >= MIN_HISTORY:
                elapsed = now - int(inputs["start"][-1])
                calibrated = point * np.median(ratios)  # the prediction as the past periods corrected it
                low, high = np.maximum(point * _conformal_bounds(ratios, 1 - level) - elapsed, 0.0)
                upcoming = NextDestabilization(
                    float(max(calibrated - elapsed, 0.0)), float(low), float(high), bool(calibrated < elapsed)
                )
        result[threshold] = PeriodForecast(
            fed=THRESHOLDS[threshold],
            errors=found.scores.errors,
            n_scored=found.n_scored,
            beats_baselines=found.scores.beats_baselines,
            controls_fail=found.scores.controls_fail,
            level=level,
            coverage={name: scores.scores[name].coverage for name in _FORECASTERS},
            interval_score={name: scores.scores[name].interval_score for name in _FORECASTERS},
            next=upcoming,
        )
    return result
