"""The regime of a run: what its training did, with the numbers that decided it.

Each run is given one regime (:func:`classify`), with the numbers that decided it, in this order: ``undetermined``
(fewer than :data:`MIN_SAMPLES` finite samples, constant, all non-finite, or a NaN gap followed by finite values:
never a number from such a series); ``diverged`` (a non-finite loss or ρ from some step to the end, named with the
step); ``static`` (every angular update 0: η̃ too small to change the SI weights at all); ``failed``
(finite, but the median loss of the last tenth of the run above the loss at its first step); ``fixed_norm`` /
``fixed_elr`` (ρ held by projection: the regime is the control); ``periodic`` (≥ 3 destabilisations, the last within
3 median periods of the end, so that they repeat over the run; std/mean of the periods is stated); ``equilibrium``
(the angular update's RMS over each quarter of the run's second half within 25 % of each other, and the RMS over the
half within 25 % of the theory's θ* = arccos(1 − ηλ/(1+β)); with SGD's noise the equilibrium holds in mean square);
``convergent`` (the loss falling and η̃ growing over the second half, slopes beyond 2 standard errors); otherwise
``undetermined``, with the numbers.

:func:`screen` finds where a run's finite part ends before any of this; the destabilisations come from
:func:`analysis.destabilization.analyze`.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np

from bnwd import theory
from bnwd.analysis.schema import NormControl

__all__ = ["MIN_DESTABILIZATIONS", "MIN_SAMPLES", "REGIMES", "Regime", "classify", "screen"]

Regime = Literal[
    "undetermined", "diverged", "static", "failed", "fixed_norm", "fixed_elr", "periodic", "equilibrium", "convergent"
]
REGIMES: tuple[Regime, ...] = get_args(Regime)
MIN_DESTABILIZATIONS = 3
"""Destabilisations a run needs to be called periodic."""

MIN_SAMPLES = 8
"""Fewest finite samples a series needs before anything is measured on it."""
_NAMES = {"si_norm": "ρ", "loss": "the loss"}
_STATIONARY = 0.25  # equilibrium: quarters within 25 % of each other and of θ*
_REPEAT_PERIODS = 3.0  # periodic: the last event within this many median periods of the end


def _half_slope(log_y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of the second half of a log series, and its standard error."""
    segment = log_y[log_y.size // 2 :]
    t = np.arange(segment.size) - (segment.size - 1) / 2
    slope = float(t @ (segment - segment.mean()) / (t @ t))
    residual = segment - segment.mean() - slope * t
    return slope, float(np.sqrt(residual @ residual / max(segment.size - 2, 1) / (t @ t)))


def classify(series: dict, events, *, lr, wd, momentum=0.0, norm_control: NormControl = "free") -> tuple[Regime, dict]:
    """The regime of one finite, gap-free run and the numbers that decided it (rules: the module docstring).

    Parameters
    ----------
    series : dict of ndarray, shape (n_steps,) each
        ``elr``, ``angular_update`` and ``loss`` (may be missing: no ``failed`` rule, η̃ alone for ``convergent``)
        per step.
    events : array_like of int
        Its destabilisations.
    lr, wd, momentum : float
        η applied to the SI weights, λ, β.
    norm_control : {"free", "fixed_norm", "fixed_elr"}

    Returns
    -------
    (str, dict)
        The regime (one of :data:`REGIMES`) and its evidence, with the ``rule`` in words.
    """
    events = np.asarray(events, dtype=int)
    evidence: dict = {"n_destabilizations": int(events.size)}
    # before the loss's rules: a static run's loss changes with the batches, not with training
    angular_update = series.get("angular_update")  # None in a series without it, which cannot tell
    if angular_update is not None and not np.any(angular_update):
        elr = float(np.median(series["elr"]))
        rule = f"the SI weights never moved: η̃ = {elr:.3g} is too small to change them in {len(series['elr'])} steps"
        return "static", evidence | {"elr": elr, "rule": rule}
    loss = series.get("loss")
    if loss is not None:
        loss = np.asarray(loss, dtype=float)
        tail = max(loss.size // 10, 1)
        evidence |= {"loss_start": float(loss[0]), "loss_end": float(np.median(loss[-tail:]))}
        if evidence["loss_end"] > evidence["loss_start"]:
            return "failed", evidence | {"rule": "the median loss of the last tenth is above the first step's"}
    if norm_control != "free":
        return norm_control, evidence | {"rule": "ρ is held by projection"}
    if events.size >= MIN_DESTABILIZATIONS:
        periods = np.diff(events)
        median = float(np.median(periods))
        evidence |= {"median_period": median, "steps_after_last": int(len(series["elr"]) - 1 - events[-1])}
        evidence["regularity"] = float(np.std(periods) / np.mean(periods))
        if evidence["steps_after_last"] <= _REPEAT_PERIODS * median:
            rule = (
                f"≥ {MIN_DESTABILIZATIONS} destabilisations, the last within {_REPEAT_PERIODS:g} median periods of "
                "the end"
            )
            return "periodic", evidence | {"rule": rule}
    theta = float(theory.equilibrium_angular_update(lr, wd, momentum)) if wd > 0 else math.nan
    angle = np.asarray(series["angular_update"], dtype=float)
    # with SGD's noise the equilibrium holds for the mean square of the update: RMS, not single steps
    quarters = np.array([np.sqrt(np.mean(q**2)) for q in np.array_split(angle[angle.size // 2 :], 4)])
    level = float(np.sqrt(np.mean(quarters**2)))
    evidence |= {
        "angular_update": level,
        "angular_update_theory": theta,
        "quarter_spread": float(np.ptp(quarters) / level) if level > 0 else math.inf,
        "relative_to_theory": abs(level / theta - 1) if math.isfinite(theta) else math.inf,
    }
    if evidence["quarter_spread"] <= _STATIONARY and evidence["relative_to_theory"] <= _STATIONARY:
        return "equilibrium", evidence | {"rule": "angular update stationary and within 25 % of θ*"}
    elr_slope, elr_se = _half_slope(np.log(np.asarray(series["elr"], dtype=float)))
    evidence["elr_slope"] = elr_slope
    falling = True  # without a loss, η̃ alone decides
    if loss is not None:
        evidence["loss_slope"], loss_se = _half_slope(np.log(np.maximum(loss, np.finfo(float).tiny)))
        falling = evidence["loss_slope"] < -2 * loss_se
    if falling and elr_slope > 2 * elr_se:
        return "convergent", evidence | {"rule": "the loss falls and η̃ grows over the second half"}
    return "undetermined", evidence | {"rule": "neither periodic, equilibrium nor convergent by these rules"}


def screen(series: dict) -> tuple[int, str | None, int | None]:
    """Where a run's finite part ends, why it cannot be analysed, and where it diverged.

    Returns
    -------
    (int, str or None, int or None)
        The samples before the first non-finite value of ``si_norm`` or ``loss`` (when given); the reason the run is
        ``undetermined`` (None when it can be analysed); the index from which it is non-finite to its end (None
        when it is finite, or has a NaN gap, which is not a divergence).
    """
    arrays = {
        name: np.asarray(series[name], dtype=float) for name in ("si_norm", "loss") if series.get(name) is not None
    }
    finite = np.logical_and.reduce([np.isfinite(a) for a in arrays.values()])
    first_bad = int(np.argmin(finite)) if not finite.all() else finite.size
    if first_bad < finite.size and finite[first_bad:].any():
        resumed = first_bad + int(np.argmax(finite[first_bad:]))
        return first_bad, f"non-finite gap at samples {first_bad}..{resumed - 1}, finite again after it", None
    diverged = first_bad if first_bad < finite.size else None
    if first_bad < MIN_SAMPLES:
        too_few = f"{first_bad} finite samples; at least {MIN_SAMPLES} are needed"
        if diverged is None:
            return first_bad, too_few, None
        gone = " and ".join(_NAMES[name] for name, a in arrays.items() if not np.isfinite(a[first_bad]))
        return first_bad, f"diverged at sample {first_bad}: {gone} non-finite from there on ({too_few})", diverged
    if all(np.ptp(a[:first_bad]) == 0 for a in arrays.values()):
        return first_bad, "constant series", diverged
    return first_bad, None, diverged
