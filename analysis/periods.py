"""How a period is predicted: every prediction of a period's length, named by what it is fed.

The law is one: from the bottom ``b`` of η̃ after the jump at ``e``, pure weight decay takes
``period_length(η̃(b), η̃_c)`` steps to bring η̃ to the threshold η̃_c (:func:`theory.period_length`), and the escape
delay ``K`` (:func:`theory.escape_delay`) more for the unstable error to show: the period is
``(b − e) + period_length + K`` (:func:`period_from_bottom`). The predictions differ in what they are fed:

=====================================================================  ==============================================
fed                                                                    function
=====================================================================  ==============================================
ηλ and the smallest error the weights keep, nothing from the run       :func:`period_a_priori`
each whole period's η̃ (its bottom) and a threshold: s̃'s, or the η̃     :func:`periods_in_hindsight`
measured at the period's own end (then an identity of the ELR map)
what is known at a horizon a fraction into the period: η̃'s bottom so   :func:`horizon_inputs`,
far and s̃ measured by then, or the threshold the past events met       :func:`periods_at_horizon`,
                                                                       :func:`horizon_predictions` (with baselines
                                                                       and controls)
a reduced model of the run, simulated                                  :func:`simulate.reduced.predict_period`
=====================================================================  ==============================================

Beside a prediction at the horizon, :func:`horizon_predictions` scores the baselines *previous period* and *mean of
the other periods* (it sees the future: the harder baseline), and two controls that must do worse if the period's
own input carries its information: that input averaged over the periods, and shuffled between them. The online
forecast of the next destabilisation, with its interval, is :mod:`analysis.forecast`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bnwd import theory

__all__ = [
    "HORIZON",
    "LABELS",
    "ROUNDING_FLOOR",
    "THRESHOLDS",
    "HorizonPredictions",
    "PredictionScores",
    "Threshold",
    "convergence_depth",
    "elr_bottom",
    "escape_floor",
    "horizon_inputs",
    "horizon_predictions",
    "median_abs_relative_error",
    "period_a_priori",
    "period_from_bottom",
    "periods_at_horizon",
    "periods_in_hindsight",
    "score_predictions",
]

ROUNDING_FLOOR = math.log(np.finfo(np.float64).eps)
"""ln of the smallest angular error a deterministic run keeps: the float64 rounding of its weights."""
HORIZON = 0.25
"""Fraction of the mean past period after a destabilisation at which its successor's length is predicted."""

Threshold = Literal["sharpness", "past_events"]
THRESHOLDS: dict[Threshold, str] = {
    "sharpness": "η̃_c = θ(η, λ, β)/s̃ with s̃ measured by the horizon (the theory's threshold)",
    "past_events": "η̃_c = the median η̃ at the destabilisations up to e_k (the threshold the run met before)",
}
"""Where a prediction at the horizon puts the end of a period; neither looks at the period's own end."""
_PER_PERIOD_INPUT = {"sharpness": "sharpness", "past_events": "elr_start"}  # what the controls replace
LABELS = {
    "past_events": "past events",
    "previous_period": "previous period",
    "mean_of_others": "mean of the other periods",
    "past_mean": "past mean",
    "mean_input": "control: its input averaged",
    "shuffled_input": "control: its input shuffled",
}
"""Words for a reader, per identifier of a threshold, baseline, control or forecaster (the keys of files)."""


def period_from_bottom(
    start, bottom, elr_start, elr_critical, *, lr: float, wd: float, momentum: float = 0.0, log_amplification=None
) -> np.ndarray:
    """The period law: ``(b − e) + period_length(η̃_s, η̃_c) + K``.

    Parameters
    ----------
    start, bottom, elr_start : array_like, shape (n,)
        The destabilisation ``e``, the bottom ``b`` of η̃ after it and η̃_s = η̃(b).
    elr_critical : array_like, shape (n,)
        The threshold η̃_c each period ends at.
    lr, wd, momentum : float
        η, λ > 0, β in the monotone domain ηλ ≤ (1−√β)².
    log_amplification : float or array_like, shape (n,), optional
        ln A of the escape delay ``K`` (:func:`theory.escape_delay`, β = 0 only); None: no delay.

    Returns
    -------
    ndarray, shape (n,)
        NaN where η̃_s or η̃_c is missing; no decay where η̃_s is already past the threshold.

    Examples
    --------
    η̃ bottoms out 2 steps after the jump at 0.01 and grows by (1−ηλ)⁻² a step to 0.1:

    >>> period_from_bottom([0], [2], [0.01], [0.1], lr=1.0, wd=0.01).round(2)
    array([116.55])
    """
    start, bottom = np.asarray(start, dtype=np.float64), np.asarray(bottom, dtype=np.float64)
    elr_start = np.asarray(elr_start, dtype=np.float64)
    critical = np.broadcast_to(np.asarray(elr_critical, dtype=np.float64), elr_start.shape)
    if log_amplification is not None and momentum:
        raise ValueError("the escape delay is derived for β = 0 only; pass log_amplification=None with momentum")
    decay = np.full(start.shape, np.nan)
    known = np.isfinite(critical) & np.isfinite(elr_start)
    decay[known] = 0.0
    below = known & (elr_start < critical)
    if below.any():
        decay[below] = theory.period_length(elr_start[below], critical[below], lr, wd, momentum)
    if log_amplification is not None:
        decay = decay + theory.escape_delay(log_amplification, lr, wd)
    return (bottom - start) + decay


def elr_bottom(elr: np.ndarray, start: int, stop: int) -> int:
    """The index of η̃'s lowest value on ``(start, stop)``: the bottom after the jump at ``start`` (``start`` when
    that is empty)."""
    return start + 1 + int(np.argmin(elr[start + 1 : stop])) if stop > start + 1 else start


def convergence_depth(elr_start, elr_critical, lr: float, wd: float) -> np.ndarray:
    """ln of the factor by which the top direction's error shrinks while η̃ decays from η̃_s to the threshold η̃_c.

    Per step it is multiplied by ``|1 − η̃_t s̃/(1−ηλ)| = |1 − 2η̃_t/η̃_c|`` (:func:`theory.stability`), with
    ``η̃_t = η̃_s(1−ηλ)^{−2t}`` for ``t < T`` (``T`` = :func:`theory.period_length`, whole steps): the depth is
    ``Σ_t ln|1 − 2η̃_t/η̃_c|`` (≤ 0 when the run converges; the error must grow back by ``e^{−depth}``).

    Parameters
    ----------
    elr_start, elr_critical : array_like, shape (n,)
        η̃ after each jump (its bottom) and the threshold; where ``η̃_s ≥ η̃_c`` the depth is 0.
    lr, wd : float
        η and λ > 0 (β = 0).

    Returns
    -------
    ndarray, shape (n,)
    """
    elr_start, elr_critical = np.broadcast_arrays(np.asarray(elr_start, float), np.asarray(elr_critical, float))
    depth = np.zeros(elr_start.shape)
    for i, (start, critical) in enumerate(zip(elr_start.flat, elr_critical.flat, strict=True)):
        if start < critical:
            steps = np.arange(int(theory.period_length(start, critical, lr, wd)))
            elr = start * (1 - lr * wd) ** (-2.0 * steps)
            with np.errstate(divide="ignore"):
                depth.flat[i] = np.sum(np.log(np.abs(1 - 2 * elr / critical)))
    return depth


def escape_floor(error_floor: float, lr: float, wd: float, *, eff_sharpness=math.nan, gradient_noise=0.0) -> float:
    """ln of the smallest error the top direction keeps at the crossing, relative to the angle where the jump shows
    (:func:`theory.escape_angle`): the weights' rounding ``error_floor``, or the gradient noise's floor
    (:func:`theory.noise_floor`, with s̃ and σ) where that is higher.

    Parameters
    ----------
    error_floor : float
        ln of the rounding of the weights (:data:`ROUNDING_FLOOR` in float64, ``ln ε₃₂`` in float32).
    lr, wd : float
        η and λ > 0 (β = 0).
    eff_sharpness, gradient_noise : float
        s̃ of the minima and σ per direction at unit norm; the noise floor counts where both are known and σ > 0.

    Returns
    -------
    float
    """
    floor = error_floor
    if gradient_noise > 0 and math.isfinite(eff_sharpness):
        floor = max(floor, math.log(theory.noise_floor(eff_sharpness, gradient_noise, lr, wd)))
    return floor - math.log(theory.escape_angle(lr, wd))


def period_a_priori(floor: float, lr: float, wd: float) -> float:
    """The period fed nothing from the run: ηλ and the floor (:func:`escape_floor`) alone, through
    :func:`theory.plane_period` with ``ln A = −floor``; NaN where the floor is not below the escape angle."""
    return float(theory.plane_period(-floor, lr, wd)) if floor < 0 else math.nan


def periods_in_hindsight(
    elr: np.ndarray, events: np.ndarray, lr: float, wd: float, momentum: float, elr_critical, floor=None
) -> np.ndarray:
    """The period law applied to each measured period, fed its whole η̃.

    For consecutive events ``e_k < e_{k+1}`` η̃ bottoms out at ``b_k = argmin η̃ on (e_k, e_{k+1})``; the prediction
    is :func:`period_from_bottom`. With ``floor`` (β = 0 only), the escape delay is added: the error, shrunk from the
    angle where the jump shows by :func:`convergence_depth` but not below ``e^floor`` times it, must grow back
    there, ``ln A = −max(depth, floor)``.

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
        destabilisation (then the prediction is an identity of the ELR map, not a prediction).
    floor : float, optional
        ln of the smallest error over the escape angle (≤ 0, :func:`escape_floor`); None: no delay.

    Returns
    -------
    ndarray, shape (len(events) − 1,)
        Predicted length of each period, in steps.
    """
    starts, ends = events[:-1], events[1:]
    bottoms = np.array([elr_bottom(elr, s, e) for s, e in zip(starts, ends, strict=True)], dtype=int)
    elr_start = elr[bottoms]
    elr_critical = np.broadcast_to(np.asarray(elr_critical, dtype=np.float64), elr_start.shape)
    growth = None
    if floor is not None:
        depth = convergence_depth(elr_start, elr_critical, lr, wd)
        growth = np.maximum(-np.maximum(depth, floor), np.finfo(float).tiny)
    return period_from_bottom(
        starts, bottoms, elr_start, elr_critical, lr=lr, wd=wd, momentum=momentum, log_amplification=growth
    )


def horizon_inputs(steps, elr, events, sharpness_steps, sharpness, *, horizon: float = HORIZON) -> dict:
    """What is known of each period at its horizon ``c_k = e_k + ⌈q·T̄_k⌉``, ``T̄_k`` the mean past period.

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
    first = int(steps[0])
    for k in range(1, lengths.size):
        start, end = int(events[k]), int(events[k + 1])
        past_mean = float(lengths[:k].mean())
        cutoff = start + math.ceil(horizon * past_mean)
        bottom = first + elr_bottom(elr, start - first, min(cutoff, int(steps[-1])) + 1 - first)
        measured = sharpness[(sharpness_steps > start) & (sharpness_steps <= cutoff)]
        rows["start"].append(start)
        rows["end"].append(end)
        rows["cutoff"].append(cutoff)
        rows["bottom"].append(bottom)
        rows["elr_start"].append(elr[bottom - first])
        rows["sharpness"].append(float(np.median(measured)) if measured.size else math.nan)
        rows["past_threshold"].append(float(np.median(elr[events[1 : k + 1] - first])))
        rows["measured"].append(end - start)
        rows["previous"].append(int(lengths[k - 1]))
        rows["past_mean"].append(past_mean)
        rows["ended_early"].append(end <= cutoff)
    floats = {"elr_start", "sharpness", "past_threshold", "past_mean"}
    return {
        k: np.asarray(v, dtype=bool if k == "ended_early" else float if k in floats else np.int64)
        for k, v in rows.items()
    }


def periods_at_horizon(
    inputs: dict, threshold: Threshold, *, lr: float, wd: float, momentum: float = 0.0, log_amplification=None
) -> np.ndarray:
    """Each period predicted at its horizon: :func:`period_from_bottom` of :func:`horizon_inputs`, the threshold as
    ``threshold`` says (:data:`THRESHOLDS`)."""
    if threshold == "sharpness":
        critical = float(theory.stability_threshold(lr, wd, momentum)) / inputs["sharpness"]
    else:
        critical = inputs["past_threshold"]
    return period_from_bottom(
        inputs["start"],
        inputs["bottom"],
        inputs["elr_start"],
        critical,
        lr=lr,
        wd=wd,
        momentum=momentum,
        log_amplification=log_amplification,
    )


def median_abs_relative_error(predicted, measured) -> float:
    """``median |predicted/measured − 1|`` over the given entries (NaN when there are none)."""
    errors = np.abs(np.asarray(predicted, dtype=np.float64) / np.asarray(measured, dtype=np.float64) - 1)
    return float(np.median(errors)) if errors.size else math.nan


@dataclass(frozen=True)
class PredictionScores:
    """A prediction scored beside its baselines and controls on the same periods.

    ``errors`` maps ``"prediction"`` and each baseline's and control's name to its median absolute relative error;
    ``beats_baselines``: the prediction's error is below every baseline's; ``controls_fail``: every control's is
    above the prediction's."""

    errors: dict[str, float]
    beats_baselines: bool
    controls_fail: bool


def score_predictions(predicted, baselines: dict, controls: dict, measured) -> PredictionScores:
    """:class:`PredictionScores` of ``predicted`` against ``measured``.

    Parameters
    ----------
    predicted, measured : array_like, shape (n,)
    baselines, controls : dict of name -> array_like, shape (n,)
        Names are identifiers (they become keys of files).
    """
    everything = {"prediction": predicted, **baselines, **controls}
    errors = {name: median_abs_relative_error(p, measured) for name, p in everything.items()}
    mine = errors["prediction"]
    return PredictionScores(
        errors=errors,
        beats_baselines=bool(all(mine < errors[name] for name in baselines)),
        controls_fail=bool(all(errors[name] > mine for name in controls)),
    )


@dataclass(frozen=True)
class HorizonPredictions:
    """Every period of a run predicted at its horizon, with its baselines and controls (:func:`horizon_predictions`).

    Arrays have one entry per period of :func:`horizon_inputs`; ``scored`` marks those scored (not over by their
    horizon, with the input the threshold needs). ``baselines``: ``previous_period`` and ``mean_of_others``;
    ``controls``: ``mean_input`` and ``shuffled_input`` (the period's own input averaged, shuffled).
    ``sharpness_spread`` is std/mean of s̃ over the periods."""

    threshold: Threshold
    scored: np.ndarray
    measured: np.ndarray
    predicted: np.ndarray
    baselines: dict[str, np.ndarray]
    controls: dict[str, np.ndarray]
    scores: PredictionScores
    n_scored: int
    n_ended_early: int
    n_missing_sharpness: int
    sharpness_spread: float


def horizon_predictions(
    inputs: dict,
    *,
    lr: float,
    wd: float,
    momentum: float = 0.0,
    threshold: Threshold = "sharpness",
    log_amplification=None,
    seed: int = 0,
) -> HorizonPredictions:
    """The prediction of every period at its horizon, its baselines and its controls, scored.

    Parameters
    ----------
    inputs : dict
        :func:`horizon_inputs`; the periods over by their horizon are left out of every score (they are counted).
    lr, wd, momentum, log_amplification : float
        As :func:`period_from_bottom`.
    threshold : {"sharpness", "past_events"}
        A key of :data:`THRESHOLDS`. The controls replace the period's own input to the prediction (s̃ for
        ``"sharpness"``, η̃ after the jump for ``"past_events"``) by its mean over the periods, and shuffle it
        between them.
    seed : int
        Seeds the shuffle.
    """
    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {list(THRESHOLDS)}; got {threshold!r}")
    needed = np.isfinite(inputs["sharpness"]) if threshold == "sharpness" else np.ones(inputs["start"].size, bool)
    scored = ~inputs["ended_early"] & needed
    measured = inputs["measured"].astype(np.float64)
    own = _PER_PERIOD_INPUT[threshold]

    def predict(values):
        given = {**inputs, own: values}
        return periods_at_horizon(
            given, threshold, lr=lr, wd=wd, momentum=momentum, log_amplification=log_amplification
        )

    known = inputs[own][scored]
    averaged = np.where(scored, known.mean() if known.size else math.nan, math.nan)
    shuffled = inputs[own].astype(np.float64)
    shuffled[scored] = np.random.default_rng(seed).permutation(known)
    others = (measured[scored].sum() - measured) / max(int(scored.sum()) - 1, 1)
    predicted = predict(inputs[own])
    baselines = {"previous_period": inputs["previous"].astype(np.float64), "mean_of_others": others}
    controls = {"mean_input": predict(averaged), "shuffled_input": predict(shuffled)}
    scores = score_predictions(
        predicted[scored],
        {name: p[scored] for name, p in baselines.items()},
        {name: p[scored] for name, p in controls.items()},
        measured[scored],
    )
    sharpness = inputs["sharpness"][np.isfinite(inputs["sharpness"])]
    return HorizonPredictions(
        threshold=threshold,
        scored=scored,
        measured=measured,
        predicted=predicted,
        baselines=baselines,
        controls=controls,
        scores=scores,
        n_scored=int(scored.sum()),
        n_ended_early=int(inputs["ended_early"].sum()),
        n_missing_sharpness=int((~inputs["ended_early"] & ~np.isfinite(inputs["sharpness"])).sum()),
        sharpness_spread=float(sharpness.std() / sharpness.mean()) if sharpness.size > 1 else math.nan,
    )
