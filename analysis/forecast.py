"""Each period predicted before it ends, and the next destabilisation forecast online, from any run's series.

The period law compared with a period it was fed the end of is an identity (the exact ELR map between the two
measured η̃). Here a prediction of period k, from destabilisation ``e_k`` to ``e_{k+1}``, is made at its *horizon*
``c_k = e_k + ⌈q·T̄_k⌉``, ``T̄_k`` the mean of the periods before it and ``q`` (:data:`HORIZON`) a fraction, from
what is known by then:

* η̃ after the jump: its lowest value ``η̃_s`` on ``(e_k, c_k]``, at ``b_k``;
* a threshold η̃_c (:data:`THRESHOLDS`): the theory's ``θ(η, λ, β)/s̃`` (:func:`theory.stability_threshold`) with
  s̃ the median of those measured on ``(e_k, c_k]``, or the median η̃ at the destabilisations up to ``e_k``;
* ηλ, β, and optionally ``ln A`` for the escape delay (β = 0, :func:`theory.escape_delay`).

The prediction is the theory's complete period ``(b_k − e_k) + period_length(η̃_s, η̃_c) + K``
(:func:`predict_period_lengths`). Beside it (:func:`period_predictions`): the baselines *previous* (``T_{k−1}``) and
*mean of the others* (the run's other periods: it sees the future, so it is the harder baseline), and two controls
that must do worse if the period's own input (s̃, or η̃ after the jump) carries its information: that input
replaced by its mean over the periods, and shuffled between them.

The online forecast (:func:`forecast`) turns the same prediction into steps to the next destabilisation with an
interval: the ratios measured/predicted of the periods already over give its quantiles (split conformal), so it
needs no distributional assumption, only that the past periods are like the next. Its coverage (the fraction of
periods whose end fell inside the interval issued at their horizon) and interval score (Gneiting & Raftery 2007:
width plus 2/α times the miss) are scored against the same forecast built on the baselines.
"""

from __future__ import annotations

import math

import numpy as np

from bnwd import theory

HORIZON = 0.25
"""Fraction of the mean past period after a destabilisation at which its successor's length is predicted."""
LEVEL = 0.8
"""Nominal coverage of the forecast's interval."""
MIN_HISTORY = 3
"""Completed periods the forecast needs before it issues intervals (their ratios set the quantiles)."""


def period_inputs(steps, elr, events, sharpness_steps, sharpness, *, horizon: float = HORIZON) -> dict:
    """What is known of each period at its horizon.

    Parameters
    ----------
    steps : array_like of int, shape (n_records,)
        Step of each record, every step (as :func:`analysis.summary.summarize_run` needs).
    elr : array_like, shape (n_records,)
        η̃ per step.
    events : array_like of int, shape (m,)
        Destabilisation steps, increasing.
    sharpness_steps, sharpness : array_like, shape (p,)
        Steps where s̃ was measured (increasing) and the values.
    horizon : float
        ``q`` in (0, 1].

    Returns
    -------
    dict of ndarray, shape (m − 2,) each, for the periods k = 1 … m − 2 (the first has no past)
        ``start`` e_k, ``end`` e_{k+1}, ``cutoff`` c_k, ``bottom`` b_k, ``elr_start`` η̃(b_k), ``sharpness``
        (median s̃ on (e_k, c_k], NaN where none was measured), ``past_threshold`` (the median η̃ at e_1 … e_k),
        ``measured`` e_{k+1} − e_k, ``previous`` e_k − e_{k−1},
        ``past_mean`` T̄_k and ``ended_early`` (the period was over by its horizon; its prediction is not made).
    """
    steps, elr = np.asarray(steps, dtype=np.int64), np.asarray(elr, dtype=np.float64)
    events = np.asarray(events, dtype=np.int64)
    sharpness_steps = np.asarray(sharpness_steps, dtype=np.int64)
    sharpness = np.asarray(sharpness, dtype=np.float64)
    if not 0 < horizon <= 1:
        raise ValueError(f"horizon must be in (0, 1]; got {horizon!r}")
    if np.any(np.diff(steps) != 1) or steps.shape != elr.shape:
        raise ValueError("steps must be every step, with one η̃ per step")
    if sharpness_steps.shape != sharpness.shape or np.any(np.diff(sharpness_steps) <= 0):
        raise ValueError("sharpness_steps must be increasing, with one value each")
    if np.any(np.diff(events) <= 0):
        raise ValueError("events must be strictly increasing")
    lengths = np.diff(events)
    names = (
        *("start", "end", "cutoff", "bottom", "elr_start", "sharpness", "past_threshold"),
        *("measured", "previous", "past_mean", "ended_early"),
    )
    rows = {k: [] for k in names}
    for k in range(1, lengths.size):
        start, end = int(events[k]), int(events[k + 1])
        past_mean = float(lengths[:k].mean())
        cutoff = start + math.ceil(horizon * past_mean)
        window = slice(start + 1 - steps[0], min(cutoff, int(steps[-1])) + 1 - steps[0])
        bottom = start + 1 + int(np.argmin(elr[window])) if elr[window].size else start
        measured = sharpness[(sharpness_steps > start) & (sharpness_steps <= cutoff)]
        rows["start"].append(start)
        rows["end"].append(end)
        rows["cutoff"].append(cutoff)
        rows["bottom"].append(bottom)
        rows["elr_start"].append(elr[bottom - steps[0]])
        rows["sharpness"].append(float(np.median(measured)) if measured.size else math.nan)
        rows["past_threshold"].append(float(np.median(elr[events[1 : k + 1] - steps[0]])))
        rows["measured"].append(end - start)
        rows["previous"].append(int(lengths[k - 1]))
        rows["past_mean"].append(past_mean)
        rows["ended_early"].append(end <= cutoff)
    floats = {"elr_start", "sharpness", "past_threshold", "past_mean"}
    return {
        k: np.asarray(v, dtype=bool if k == "ended_early" else float if k in floats else np.int64)
        for k, v in rows.items()
    }


def predict_period_lengths(
    start, bottom, elr_start, elr_critical, *, lr: float, wd: float, momentum: float = 0.0, log_amplification=None
) -> np.ndarray:
    """The theory's complete period from what its horizon knows: ``(b − e) + period_length(η̃_s, η̃_c) + K``.

    Parameters
    ----------
    start, bottom, elr_start : array_like, shape (n,)
        ``e_k``, ``b_k`` and η̃(b_k) (:func:`period_inputs`).
    elr_critical : array_like, shape (n,)
        The threshold each period is predicted to end at (:data:`THRESHOLDS`).
    lr, wd, momentum : float
        η, λ > 0, β in the monotone domain ηλ ≤ (1−√β)².
    log_amplification : float, optional
        ln A of the escape delay (:func:`theory.escape_delay`, β = 0 only); None: no delay.

    Returns
    -------
    ndarray, shape (n,)
        NaN where an input is missing; no decay where η̃_s is already past the threshold.
    """
    start, bottom = np.asarray(start, dtype=np.float64), np.asarray(bottom, dtype=np.float64)
    elr_start, critical = np.asarray(elr_start, dtype=np.float64), np.asarray(elr_critical, dtype=np.float64)
    if log_amplification is not None and momentum:
        raise ValueError("the escape delay is derived for β = 0 only; pass log_amplification=None with momentum")
    decay = np.full(start.shape, np.nan)
    known = np.isfinite(critical) & np.isfinite(elr_start)
    decay[known] = 0.0
    below = known & (elr_start < critical)
    if below.any():
        decay[below] = theory.period_length(elr_start[below], critical[below], lr, wd, momentum)
    if log_amplification is not None:
        decay = decay + float(theory.escape_delay(log_amplification, lr, wd))
    return (bottom - start) + decay


THRESHOLDS = {
    "sharpness": "η̃_c = θ(η, λ, β)/s̃ with s̃ measured by the horizon (the theory's threshold)",
    "past events": "η̃_c = the median η̃ at the destabilisations up to e_k (the threshold the run met before)",
}
"""Where a prediction puts the end of a period; neither looks at the period's own end."""
_PER_PERIOD_INPUT = {"sharpness": "sharpness", "past events": "elr_start"}  # what the controls replace


def median_abs_relative_error(predicted, measured) -> float:
    """``median |predicted/measured − 1|`` over the given entries (NaN when there are none)."""
    errors = np.abs(np.asarray(predicted, dtype=np.float64) / np.asarray(measured, dtype=np.float64) - 1)
    return float(np.median(errors)) if errors.size else math.nan


def score_predictions(predicted, baselines: dict, controls: dict, measured) -> dict:
    """The median absolute relative error of a prediction, its baselines and its controls on the same periods, and
    whether the prediction beats every baseline (``beats_baselines``) and every control does worse
    (``controls_fail``).

    Parameters
    ----------
    predicted, measured : array_like, shape (n,)
    baselines, controls : dict of name -> array_like, shape (n,)

    Returns
    -------
    dict
        ``errors`` (name -> error; the prediction's under ``"prediction"``), ``beats_baselines``, ``controls_fail``.
    """
    everything = {"prediction": predicted, **baselines, **controls}
    errors = {name: median_abs_relative_error(p, measured) for name, p in everything.items()}
    mine = errors["prediction"]
    return {
        "errors": errors,
        "beats_baselines": bool(all(mine < errors[name] for name in baselines)),
        "controls_fail": bool(all(errors[name] > mine for name in controls)),
    }


def _predict_from_inputs(
    inputs: dict, threshold: str, *, lr: float, wd: float, momentum: float, log_amplification=None
) -> np.ndarray:
    """:func:`predict_period_lengths` of :func:`period_inputs` rows, the threshold taken as ``threshold`` says
    (:data:`THRESHOLDS`)."""
    if threshold == "sharpness":
        critical = float(theory.stability_threshold(lr, wd, momentum)) / inputs["sharpness"]
    else:
        critical = inputs["past_threshold"]
    return predict_period_lengths(
        inputs["start"],
        inputs["bottom"],
        inputs["elr_start"],
        critical,
        lr=lr,
        wd=wd,
        momentum=momentum,
        log_amplification=log_amplification,
    )


def period_predictions(
    inputs: dict,
    *,
    lr: float,
    wd: float,
    momentum: float = 0.0,
    threshold: str = "sharpness",
    log_amplification=None,
    seed: int = 0,
) -> dict:
    """The prediction of every period, its baselines and its controls, and their median absolute relative errors.

    Parameters
    ----------
    inputs : dict
        :func:`period_inputs`; the periods over by their horizon are left out of every score (they are counted).
    lr, wd, momentum, log_amplification : float
        As :func:`predict_period_lengths`.
    threshold : str
        A key of :data:`THRESHOLDS`. The controls replace the period's own input to the prediction (s̃ for
        ``"sharpness"``, η̃ after the jump for ``"past events"``) by its mean over the periods, and shuffle it
        between them.
    seed : int
        Seeds the shuffle.

    Returns
    -------
    dict
        ``threshold``, ``scored`` (the periods scored), ``measured`` and ``predicted`` (shape (n,)), ``baselines`` and
        ``controls`` (name -> shape (n,)),
        ``errors`` (name -> median |predicted − measured|/measured over the scored periods, for the prediction and
        every baseline and control), ``n_scored``, ``n_ended_early``, ``n_missing_sharpness``, ``sharpness_spread``
        (std/mean of s̃ over the periods), ``beats_baselines`` and ``controls_fail`` (each control's error above the
        prediction's).
    """
    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {list(THRESHOLDS)}; got {threshold!r}")
    needed = np.isfinite(inputs["sharpness"]) if threshold == "sharpness" else np.ones(inputs["start"].size, bool)
    scored = ~inputs["ended_early"] & needed
    measured = inputs["measured"].astype(np.float64)
    own = _PER_PERIOD_INPUT[threshold]

    def predict(values):
        given = {**inputs, own: values}
        return _predict_from_inputs(
            given, threshold, lr=lr, wd=wd, momentum=momentum, log_amplification=log_amplification
        )

    known = inputs[own][scored]
    averaged = np.where(scored, known.mean() if known.size else math.nan, math.nan)
    shuffled = inputs[own].astype(np.float64)
    shuffled[scored] = np.random.default_rng(seed).permutation(known)
    others = (measured[scored].sum() - measured) / max(int(scored.sum()) - 1, 1)
    label = "s̃" if threshold == "sharpness" else "η̃ after the jump"
    predicted = predict(inputs[own])
    baselines = {"previous period": inputs["previous"].astype(np.float64), "mean of the other periods": others}
    controls = {f"control: mean {label}": predict(averaged), f"control: shuffled {label}": predict(shuffled)}
    scores = score_predictions(
        predicted[scored],
        {name: p[scored] for name, p in baselines.items()},
        {name: p[scored] for name, p in controls.items()},
        measured[scored],
    )
    sharpness = inputs["sharpness"][np.isfinite(inputs["sharpness"])]
    return scores | {
        "threshold": threshold,
        "scored": scored,
        "measured": measured,
        "predicted": predicted,
        "baselines": baselines,
        "controls": controls,
        "n_scored": int(scored.sum()),
        "n_ended_early": int(inputs["ended_early"].sum()),
        "n_missing_sharpness": int((~inputs["ended_early"] & ~np.isfinite(inputs["sharpness"])).sum()),
        "sharpness_spread": float(sharpness.std() / sharpness.mean()) if sharpness.size > 1 else math.nan,
    }


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


def forecast(inputs: dict, predicted, *, level: float = LEVEL, min_history: int = MIN_HISTORY) -> dict:
    """Intervals for each period's length issued at its horizon, and their coverage and score against baselines.

    The interval of period k is ``[r_lo·T̂_k, r_hi·T̂_k]``, ``r_lo``/``r_hi`` the split-conformal (1−level)/2 and
    (1+level)/2 order statistics of the ratios measured/predicted of the periods that ended before ``c_k``
    (:func:`_conformal_bounds`); from then on the steps to the next destabilisation are that interval minus the steps
    since ``e_k``. The baselines are forecast the same way from their own past ratios: *previous* (T̂ = T_{k−1}) and
    *past mean* (T̂ = T̄_k); neither sees the future.

    Parameters
    ----------
    inputs : dict
        :func:`period_inputs`.
    predicted : array_like, shape (n,)
        The prediction of each period (:func:`predict_period_lengths`).
    level : float
        Nominal coverage in (0, 1).
    min_history : int
        Past ratios needed before an interval is issued.

    Returns
    -------
    dict
        ``level``, ``n_scored`` (periods with an interval), ``low``/``high`` (the prediction's intervals, shape (n,),
        NaN where none), and per forecaster (``prediction``, ``previous period``, ``past mean``): ``coverage`` (the
        fraction of scored periods whose length fell inside) and ``interval_score`` (mean over them).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}")
    measured = inputs["measured"].astype(np.float64)
    issued = ~inputs["ended_early"]
    forecasters = {
        "prediction": np.asarray(predicted, dtype=np.float64),
        "previous period": inputs["previous"].astype(np.float64),
        "past mean": inputs["past_mean"].astype(np.float64),
    }
    alpha = 1 - level
    result = {"level": level}
    for name, point in forecasters.items():
        ratio = measured / point
        low, high = np.full(measured.shape, np.nan), np.full(measured.shape, np.nan)
        for k in range(measured.size):
            past = ratio[:k][(inputs["end"][:k] <= inputs["cutoff"][k]) & issued[:k] & np.isfinite(ratio[:k])]
            if issued[k] and np.isfinite(point[k]) and past.size >= min_history:
                low[k], high[k] = point[k] * _conformal_bounds(past, alpha)
        scored = np.isfinite(low)
        y = measured[scored]
        result[name] = {
            "coverage": float(np.mean((low[scored] <= y) & (y <= high[scored]))) if scored.any() else math.nan,
            "interval_score": float(np.mean(_interval_score(low[scored], high[scored], y, alpha)))
            if scored.any()
            else math.nan,
            "n_scored": int(scored.sum()),
        }
        if name == "prediction":
            result |= {"low": low, "high": high, "n_scored": int(scored.sum())}
    return result


def run_forecast(
    steps, elr, events, sharpness_steps, sharpness, *, lr: float, wd: float, momentum: float = 0.0, level=LEVEL
) -> dict:
    """Everything above for one run, as JSON-ready numbers: per threshold (:data:`THRESHOLDS`; ``"sharpness"`` only
    where s̃ was measured) the per-period errors of the prediction, its baselines and controls, the forecast's
    coverage and interval scores, and the forecast of the next destabilisation after the last step.

    Parameters
    ----------
    steps, elr, events, sharpness_steps, sharpness
        As :func:`period_inputs`; the last step is "now".
    lr, wd, momentum : float
        η applied to the SI weights, λ > 0, β.
    level : float
        The forecast's nominal coverage.

    Returns
    -------
    dict
        threshold name -> ``{"fed": …, "errors": …, "n_scored", "beats_baselines", "controls_fail", "coverage",
        "interval_score", "next"}``, where ``coverage`` and ``interval_score`` map each forecaster to its number and
        ``next`` is ``{"steps_to_next", "low", "high", "overdue"}`` (the prediction times the past periods' median
        ratio measured/predicted, and the interval, minus the steps since the last destabilisation, clipped at 0;
        ``overdue``: that end has passed), or None before the horizon of the running period.
    """
    steps, events = np.asarray(steps, dtype=np.int64), np.asarray(events, dtype=np.int64)
    now = int(steps[-1])
    # the running period, its end not yet known: a placeholder after the last step, never scored
    inputs = period_inputs(steps, elr, np.r_[events, now + 1], sharpness_steps, sharpness)
    running = inputs["cutoff"][-1] <= now if inputs["start"].size else False
    closed = {k: v[:-1] for k, v in inputs.items()}
    result = {}
    for threshold in THRESHOLDS if np.size(sharpness) else ("past events",):
        found = period_predictions(closed, lr=lr, wd=wd, momentum=momentum, threshold=threshold)
        scores = forecast(closed, found["predicted"], level=level)
        entry = {
            "fed": THRESHOLDS[threshold],
            "errors": found["errors"],
            "n_scored": found["n_scored"],
            "beats_baselines": found["beats_baselines"],
            "controls_fail": found["controls_fail"],
            "level": level,
            "coverage": {name: scores[name]["coverage"] for name in ("prediction", "previous period", "past mean")},
            "interval_score": {
                name: scores[name]["interval_score"] for name in ("prediction", "previous period", "past mean")
            },
            "next": None,
        }
        if running:
            running_row = {k: v[-1:] for k, v in inputs.items()}
            (point,) = _predict_from_inputs(running_row, threshold, lr=lr, wd=wd, momentum=momentum)
            ratios = closed["measured"] / found["predicted"]
            ratios = ratios[np.isfinite(ratios) & ~closed["ended_early"]]
            if np.isfinite(point) and ratios.size >= MIN_HISTORY:
                elapsed = now - int(inputs["start"][-1])
                calibrated = point * np.median(ratios)  # the prediction as the past periods corrected it
                low, high = np.maximum(point * _conformal_bounds(ratios, 1 - level) - elapsed, 0.0)
                entry["next"] = {
                    "steps_to_next": float(max(calibrated - elapsed, 0.0)),
                    "low": float(low),
                    "high": float(high),
                    "overdue": bool(calibrated < elapsed),
                }
        result[threshold] = entry
    return result
