"""The catapult: what a run does at each destabilisation, measured on its series.

At a destabilisation ``e`` the weights are thrown out of their minimum: for a few steps ‖g̃‖ is far above its quiet
level, the norm ρ grows and η̃ = η/ρ² falls to its bottom ``b`` (:func:`analysis.periods.elr_bottom`); then the quiet
decay takes η̃ back up to the next destabilisation. Per destabilisation (the first, which follows the growth from
initialisation, is left out) :func:`catapults` measures:

- the jump ``J = ln(η̃(e)/η̃(b))``, and the same number as the sum over the spike's steps of the exact ELR map's
  factors, ``Σ_{t=e}^{b−1} ln((1−ηλ)² + (η̃_t‖g̃_t‖)²)`` (:func:`theory.elr_after_step`; plain SGD, β = 0): the jump
  is made of those steps and nothing else;
- the spike's length ``b − e``, its peak loss and peak ‖g̃‖;
- the landing, ``η̃(b)·max ‖g̃‖`` over the spike: the angular step (radians) at which the catapult stops;
- the quiet decay before it, from the previous bottom to ``e``: its steps, and its slowdown, those steps over the
  steps pure weight decay takes between the same two η̃ (:func:`theory.period_length`; 1 when the gradients add
  nothing to ρ).

:func:`summarize_catapults` gives a run's medians and spreads, and the correlations of the jump with what came before
it (the quiet decay's length, η̃ at the destabilisation, the peak loss). :func:`catapult_constants` gives the few
numbers the catapult simulator (:mod:`simulate.catapult`) is fed: the geometric means of η̃ at a destabilisation, of
the far gradient and of the landing angle, with their spreads; the spike's length; and the quiet ‖g̃‖ as it relaxes
after a landing, ``‖g̃‖²(τ) ≈ g_q²·exp(−2τ/τ_q)`` (τ the steps since the bottom).

Example
-------
Pure decay between jumps, each spike 3 steps of ‖g̃‖ = 30:

>>> import numpy as np
>>> from bnwd import theory
>>> g = np.where(np.arange(400) % 100 < 3, 30.0, 0.0)
>>> elr = [0.05]
>>> for t in range(399):
...     elr.append(float(theory.elr_after_step(elr[-1], g[t], 1.0, 0.01)))
>>> found = catapults(np.array(elr), g, None, [0, 100, 200, 300], lr=1.0, wd=0.01)
>>> [(c.event, c.spike_steps, round(c.jump, 4), round(c.jump_by_elr_map, 4), round(c.slowdown, 6)) for c in found]
[(100, 3, 2.0978, 2.0978, 1.0), (200, 3, 1.8902, 1.8902, 1.0), (300, 3, 1.9722, 1.9722, 1.0)]
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, fields

import numpy as np

from bnwd import theory
from bnwd.analysis.periods import elr_bottom

__all__ = [
    "MIN_CATAPULTS",
    "Catapult",
    "CatapultConstants",
    "CatapultSummary",
    "catapult_constants",
    "catapults",
    "correlation",
    "run_catapult_constants",
    "summarize_catapults",
]


@dataclass(frozen=True)
class Catapult:
    """One destabilisation's catapult (see the module docstring); steps are indices of the series.

    ``jump_by_elr_map`` is NaN with momentum (the map is that of plain SGD); ``peak_loss`` NaN without a loss;
    ``slowdown`` NaN where η̃ did not grow over the quiet decay."""

    event: int
    bottom: int
    jump: float
    jump_by_elr_map: float
    spike_steps: int
    landing: float
    peak_loss: float
    peak_eff_grad_norm: float
    elr_at_event: float
    quiet_steps: int
    slowdown: float


def catapults(elr, eff_grad_norm, loss, events, *, lr: float, wd: float, momentum: float = 0.0) -> list[Catapult]:
    """The catapult of every destabilisation but the first.

    Parameters
    ----------
    elr, eff_grad_norm : array_like, shape (n_steps,)
        η̃ and ‖g̃‖ per step, each before that step's update (the schema's records).
    loss : array_like, shape (n_steps,), or None
        The loss per step.
    events : array_like of int, shape (m,)
        Destabilisation indices, increasing (:func:`analysis.destabilization.analyze`).
    lr, wd, momentum : float
        η, λ > 0 and β of the run.

    Returns
    -------
    list of Catapult, one per event after the first
    """
    elr, grad = np.asarray(elr, dtype=np.float64), np.asarray(eff_grad_norm, dtype=np.float64)
    events = np.asarray(events, dtype=np.int64)
    if elr.shape != grad.shape or elr.ndim != 1:
        raise ValueError(f"elr and eff_grad_norm must be 1-D of one length; got {elr.shape} and {grad.shape}")
    if np.any(np.diff(events) <= 0) or (events.size and (events[0] < 0 or events[-1] >= elr.size)):
        raise ValueError("events must be strictly increasing indices of the series")
    if events.size == 0:  # a run that never destabilised (equilibrium, convergent): no catapult
        return []
    peaks = np.full(elr.size, np.nan) if loss is None else np.asarray(loss, dtype=np.float64)
    stops = np.append(events[1:], elr.size)
    bottoms = [elr_bottom(elr, int(e), int(stop)) for e, stop in zip(events, stops, strict=True)]
    found = []
    for k in range(1, events.size):
        e, b, before = int(events[k]), bottoms[k], bottoms[k - 1]
        spike = slice(e, b + 1)
        by_map = math.nan
        if not momentum:
            factors = elr[e:b] / theory.elr_after_step(elr[e:b], grad[e:b], lr, wd)
            by_map = float(np.sum(np.log(factors)))
        slowdown = math.nan
        if elr[e] > elr[before]:
            slowdown = (e - before) / float(theory.period_length(elr[before], elr[e], lr, wd, momentum))
        found.append(
            Catapult(
                event=e,
                bottom=b,
                jump=float(np.log(elr[e] / elr[b])),
                jump_by_elr_map=by_map,
                spike_steps=b - e,
                landing=float(elr[b] * grad[spike].max()),
                peak_loss=float(np.max(peaks[spike])),
                peak_eff_grad_norm=float(grad[spike].max()),
                elr_at_event=float(elr[e]),
                quiet_steps=e - before,
                slowdown=slowdown,
            )
        )
    return found


@dataclass(frozen=True)
class CatapultSummary:
    """A run's catapults in a few numbers (:func:`summarize_catapults`).

    ``jump_quartiles`` are the 25th and 75th percentiles of J; ``jump_spread`` its sd/mean; ``landing_spread`` the
    landing's sd/mean; ``map_residual`` the median |J − J by the ELR map|; ``correlations`` the Pearson correlation of
    J with ``quiet_steps``, ``elr_at_event`` and ``peak_loss`` (NaN with fewer than 3 catapults or a constant one)."""

    n: int
    jump: float
    jump_quartiles: tuple[float, float]
    jump_spread: float
    spike_steps: float
    landing: float
    landing_spread: float
    slowdown: float
    peak_loss: float
    peak_eff_grad_norm: float
    map_residual: float
    correlations: dict[str, float]


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r of the finite pairs; NaN with fewer than 3 or where either is constant (r is undefined)."""
    both = np.isfinite(x) & np.isfinite(y)
    x, y = x[both], y[both]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def _spread(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / values.mean()) if values.size >= 2 else math.nan


def summarize_catapults(found: list[Catapult]) -> CatapultSummary:
    """Medians, spreads and the jump's correlations over a run's catapults (NaN where there are none)."""
    names = [f.name for f in fields(Catapult)]
    column = {name: np.array([getattr(c, name) for c in found], dtype=np.float64) for name in names}

    def median(name: str) -> float:
        values = column[name][np.isfinite(column[name])]
        return float(np.median(values)) if values.size else math.nan

    jump = column["jump"]
    correlations = {name: correlation(jump, column[name]) for name in ("quiet_steps", "elr_at_event", "peak_loss")}
    residual = np.abs(jump - column["jump_by_elr_map"])
    return CatapultSummary(
        n=len(found),
        jump=median("jump"),
        jump_quartiles=tuple(np.quantile(jump, [0.25, 0.75]).tolist()) if jump.size else (math.nan, math.nan),
        jump_spread=_spread(jump),
        spike_steps=median("spike_steps"),
        landing=median("landing"),
        landing_spread=_spread(column["landing"]),
        slowdown=median("slowdown"),
        peak_loss=median("peak_loss"),
        peak_eff_grad_norm=median("peak_eff_grad_norm"),
        map_residual=float(np.median(residual[np.isfinite(residual)])) if np.isfinite(residual).any() else math.nan,
        correlations=correlations,
    )


@dataclass(frozen=True)
class CatapultConstants:
    """What a run's catapults say about its landscape, in the units the catapult simulator needs.

    Attributes
    ----------
    elr_event : float
        η̃ at a destabilisation, geometric mean (``exp(mean ln)``); ``elr_event_spread`` the sd of its ln.
    far_grad_norm : float
        The spike's peak ‖g̃‖, geometric mean; ``far_grad_norm_spread`` the sd of its ln.
    landing_angle : float
        ``η̃(b)·max ‖g̃‖`` (radians), geometric mean; ``landing_angle_spread`` the sd of its ln.
    spike_steps : float
        Median steps from a destabilisation to η̃'s bottom.
    quiet_grad_norm, quiet_steps : float
        ``g_q`` and ``τ_q`` of the quiet decay's ``‖g̃‖²(τ) ≈ g_q²·exp(−2τ/τ_q)``: a least-squares line through ln of
        the mean ‖g̃‖² at each τ since the bottom (up to the quiet minimum of ‖g̃‖ before the next destabilisation,
        weighted by the number of decays reaching τ). The mean of ‖g̃‖², not of ln ‖g̃‖, because the ELR map adds
        ``(η̃‖g̃‖)²``.
    lr, wd, momentum : float
        The run's η, λ and β.
    n_catapults : int
        How many catapults the numbers come from.
    """

    elr_event: float
    elr_event_spread: float
    far_grad_norm: float
    far_grad_norm_spread: float
    landing_angle: float
    landing_angle_spread: float
    spike_steps: float
    quiet_grad_norm: float
    quiet_steps: float
    lr: float
    wd: float
    momentum: float
    n_catapults: int


MIN_CATAPULTS = 2
"""Catapults (destabilisations after the first) a run needs for :func:`catapult_constants`: a spread needs two."""


def catapult_constants(
    found: list[Catapult], eff_grad_norm, *, lr: float, wd: float, momentum: float = 0.0
) -> CatapultConstants:
    """The constants of :class:`CatapultConstants`, measured on a run's catapults (:func:`catapults`).

    Parameters
    ----------
    found : list of Catapult
        At least :data:`MIN_CATAPULTS`, in order.
    eff_grad_norm : array_like, shape (n_steps,)
        ‖g̃‖ per step, the series ``found`` was measured on.
    lr, wd, momentum : float
        The run's η, λ and β.

    Returns
    -------
    CatapultConstants
    """
    if len(found) < MIN_CATAPULTS:
        raise ValueError(f"catapult_constants needs at least {MIN_CATAPULTS} catapults; got {len(found)}")
    grad = np.asarray(eff_grad_norm, dtype=np.float64)
    since_bottom, grad_sq = [], []
    for before, after in itertools.pairwise(found):
        quiet = grad[before.bottom : after.event]
        relaxed = int(np.argmin(quiet)) + 1  # past the minimum the next escape has begun
        since_bottom.append(np.arange(relaxed))
        grad_sq.append(quiet[:relaxed] ** 2)
    tau, values = np.concatenate(since_bottom), np.concatenate(grad_sq)
    counts = np.bincount(tau)
    reached = counts > 0
    mean_sq = np.bincount(tau, values)[reached] / counts[reached]
    if reached.sum() >= 2:
        slope, intercept = np.polyfit(np.flatnonzero(reached), np.log(mean_sq), 1, w=np.sqrt(counts[reached]))
    else:  # every quiet decay had its minimum right at the bottom: no relaxation to fit
        slope, intercept = 0.0, float(np.log(mean_sq[0]))
    quiet_steps = -2.0 / slope if slope < 0 else math.inf

    def log_stats(name: str) -> tuple[float, float]:
        logs = np.log([getattr(c, name) for c in found])
        return float(np.exp(logs.mean())), float(logs.std(ddof=1))

    return CatapultConstants(
        *log_stats("elr_at_event"),
        *log_stats("peak_eff_grad_norm"),
        *log_stats("landing"),
        spike_steps=float(np.median([c.spike_steps for c in found])),
        quiet_grad_norm=float(np.exp(intercept / 2)),
        quiet_steps=float(quiet_steps),
        lr=float(lr),
        wd=float(wd),
        momentum=float(momentum),
        n_catapults=len(found),
    )


def run_catapult_constants(steps, series: dict, row: dict) -> CatapultConstants | None:
    """:func:`catapult_constants` of a run given as its summary row (``events``, ``lr_effective``, ``wd``,
    ``momentum``: :func:`analysis.summary.summarize_run`) and series (``elr``, ``eff_grad_norm``, ``loss``, indexed by
    ``steps``); None with fewer than :data:`MIN_CATAPULTS` catapults."""
    lr, wd, momentum = row["lr_effective"], row["wd"], row["momentum"]
    events = np.searchsorted(np.asarray(steps), row["events"])
    grad = series["eff_grad_norm"]
    found = catapults(series["elr"], grad, series.get("loss"), events, lr=lr, wd=wd, momentum=momentum)
    if len(found) < MIN_CATAPULTS:
        return None
    return catapult_constants(found, grad, lr=lr, wd=wd, momentum=momentum)
