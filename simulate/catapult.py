"""A simulator of norm evolution fed by the catapult's theory: the exact ELR map, driven by ‖g̃‖ in its phases.

:mod:`theory.catapult` explains a net's period by three phases, and this module runs them, vectorised over
configurations and seeds (one numpy batch). Its inputs are the few constants of
:class:`analysis.catapult.CatapultConstants`, measured on one run (:func:`analysis.catapult.catapult_constants`) or
given a priori; nothing else of a run enters.

- **Quiet decay**: ‖g̃‖ relaxes after a landing as ``‖g̃‖²(τ) = g_q²·exp(−2τ/τ_q)`` and η̃ follows the exact ELR map,
  ``η̃⁺ = η̃/(z₊² + c_β(η̃‖g̃‖)²)`` (:func:`theory.elr_after_step` for β = 0; ``z₊`` :func:`theory.norm_decay_factor`,
  ``c_β = 1/(1−β²)``: the buffer of independent minibatch gradients has ``E‖b‖² = ‖g‖²/(1−β²)``). The gradients'
  share is what slows the decay against pure weight decay (the slowdown ``s`` of :data:`theory.CATAPULT_PERIOD`).
- **Destabilisation** once η̃ reaches ``η̃_e``, drawn per event log-normally around the calibration's geometric mean
  and scaled by the stability threshold, ``η̃_e(ηλ, β) = η̃_e·t(ηλ, β)/t(ηλ₀, β₀)``
  (:func:`theory.stability_threshold`: the same sharpness destabilises at a threshold that moves with ηλ and β).
- **Spike** of ``K`` steps at ‖g̃‖ = ``g_far``, landing at ``η̃_b = θ_land(1−β)/g_far`` (:data:`theory.CATAPULT_JUMP`;
  with momentum the angular step of a steady gradient is ``η̃‖g̃‖/(1−β)``), ``g_far`` and ``θ_land`` drawn per event
  log-normally. Over the spike η̃ moves geometrically to its landing: the split of the jump between the spike's
  steps changes no period.

So the period's mean, spread and serial correlation, and the regime within a budget, come from the landscape's
constants and (η, λ, β) alone: ``periodic`` with at least :data:`analysis.regimes.MIN_DESTABILIZATIONS`
destabilisations, as a measured run; else ``equilibrium`` when η̃ ends stationary (a quiet ‖g̃‖ that does not relax,
τ_q = ∞, holds η̃ at the map's fixed point below η̃_e); else ``convergent``. With τ_q finite the quiet gradients
vanish and there is no equilibrium: the model has no gradient floor (SGD noise). Its spreads are independent from
event to event, so it predicts no serial correlation of consecutive periods (measured near 0 on ConvNetSI and the
toy: ``benchmarks/catapult_calibration.py``); the nets' feedback, longer decays before larger jumps, acts within a
period and is not in the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from bnwd import theory
from bnwd.analysis.catapult import CatapultConstants, correlation, run_catapult_constants
from bnwd.analysis.detection import period_lengths
from bnwd.analysis.periods import PredictionScores, median_abs_relative_error, score_predictions
from bnwd.analysis.regimes import MIN_DESTABILIZATIONS

__all__ = [
    "SIMULATED_BUDGETS",
    "STATIONARY",
    "CalibratedPredictions",
    "CatapultRun",
    "SimulatedPeriods",
    "calibrate_on_runs",
    "measured_periods",
    "missed_as_infinite",
    "one_run_calibrations",
    "power_law_held_out",
    "shuffled_constants",
    "simulate_catapults",
    "simulated_periods",
]


@dataclass(frozen=True)
class CatapultRun:
    """The simulated runs of a batch of configurations (rows: configuration × seed, seeds fastest).

    Attributes
    ----------
    lr, wd, momentum : ndarray, shape (n_rows,)
    elr, eff_grad_norm : ndarray, shape (n_rows, steps)
        η̃ and ‖g̃‖ per step, before that step's update.
    events : list of ndarray of int
        Each row's destabilisation steps.
    """

    lr: np.ndarray
    wd: np.ndarray
    momentum: np.ndarray
    elr: np.ndarray
    eff_grad_norm: np.ndarray
    events: list


def _threshold_ratio(constants: CatapultConstants, lr, wd, momentum) -> np.ndarray:
    """``t(ηλ, β)/t(ηλ₀, β₀)``: how far the same sharpness's critical η̃ moves from the calibration's (η₀, λ₀, β₀)."""
    own = theory.stability_threshold(constants.lr, constants.wd, constants.momentum)
    return theory.stability_threshold(lr, wd, momentum) / own


def simulate_catapults(
    constants: CatapultConstants, lr, wd, momentum=0.0, *, steps: int, seeds: int = 4, seed: int = 0, elr0=None
) -> CatapultRun:
    """Run the three phases (module docstring) for every (η, λ, β) and ``seeds`` seeds at once.

    Parameters
    ----------
    constants : CatapultConstants
    lr, wd, momentum : array_like, broadcast to (n_configs,)
        η > 0, λ > 0, β in [0, 1) with ηλ ≤ (1−√β)².
    steps : int
        Steps per run, ≥ 1.
    seeds : int
        Runs per configuration (independent draws of the per-event constants).
    seed : int
        Seeds the draws; run k of every configuration gets the same draws (common random numbers).
    elr0 : array_like or None
        η̃ at step 0, broadcast to (n_configs,); None: a landing. The start is far from any minimum, so a start above
        the landing η̃_b lands there at once, as a catapult would, without counting as a destabilisation; the quiet
        ‖g̃‖ starts at its just-landed level either way.

    Returns
    -------
    CatapultRun
    """
    if int(steps) != steps or steps < 1 or int(seeds) != seeds or seeds < 1:
        raise ValueError(f"steps and seeds must be integers >= 1; got {steps!r}, {seeds!r}")
    lr, wd, momentum = (np.atleast_1d(a).astype(np.float64) for a in np.broadcast_arrays(lr, wd, momentum))
    ratio = _threshold_ratio(constants, lr, wd, momentum)  # validates the grid
    lr, wd, momentum, ratio = (np.repeat(a, seeds) for a in (lr, wd, momentum, ratio))
    n = lr.size
    decay_sq = theory.norm_decay_factor(lr, wd, momentum) ** 2
    buffer_gain = 1.0 / (1.0 - momentum**2)
    spike_steps = max(1, round(constants.spike_steps))
    # Common random numbers: seed k draws the same per-event normals in every configuration (row = config·seeds + k),
    # so a row's run does not depend on the batch around it and configurations differ by their (η, λ, β) alone.
    normals = np.random.default_rng([seed, 30]).standard_normal((seeds, int(steps) // spike_steps + 2, 3))
    seed_of_row = np.arange(n) % seeds
    period = np.zeros(n, dtype=np.int64)  # the index of each row's current period

    def threshold_of(rows: np.ndarray) -> np.ndarray:
        z = normals[seed_of_row[rows], period[rows], 0]
        return ratio[rows] * constants.elr_event * np.exp(constants.elr_event_spread * z)

    def landing_of(rows: np.ndarray) -> np.ndarray:
        z = normals[seed_of_row[rows], period[rows]]
        angle = constants.landing_angle * np.exp(constants.landing_angle_spread * z[:, 1])
        far = constants.far_grad_norm * np.exp(constants.far_grad_norm_spread * z[:, 2])
        return angle * (1.0 - momentum[rows]) / far

    every = np.arange(n)
    elr = landing_of(every)
    if elr0 is not None:  # far from any minimum, a start above the landing lands first (no destabilisation)
        elr = np.minimum(np.repeat(np.broadcast_to(elr0, (n // seeds,)), seeds), elr)
    threshold = threshold_of(every)
    target = np.zeros(n)
    since_landing, spike_left = np.zeros(n), np.zeros(n, dtype=np.int64)
    elr_out, grad_out = np.empty((n, int(steps))), np.empty((n, int(steps)))
    fired = np.zeros((n, int(steps)), dtype=bool)
    for t in range(int(steps)):
        fire = (spike_left == 0) & (elr >= threshold)
        fired[:, t] = fire
        rows = np.flatnonzero(fire)
        period[rows] += 1
        spike_left[rows], target[rows] = spike_steps, landing_of(rows)
        spiking = spike_left > 0
        quiet_sq = constants.quiet_grad_norm**2 * np.exp(-2.0 * since_landing / constants.quiet_steps)
        grad = np.where(spiking, constants.far_grad_norm, np.sqrt(quiet_sq))
        elr_out[:, t], grad_out[:, t] = elr, grad
        quiet_next = elr / (decay_sq + buffer_gain * (elr * grad) ** 2)
        spike_next = elr * (target / elr) ** (1.0 / np.maximum(spike_left, 1))
        elr = np.where(spiking, spike_next, quiet_next)
        spike_left = np.maximum(spike_left - 1, 0)
        landed = spiking & (spike_left == 0)
        since_landing = np.where(landed, 0.0, since_landing + 1)
        rows = np.flatnonzero(landed)
        threshold[rows] = threshold_of(rows)
    return CatapultRun(lr, wd, momentum, elr_out, grad_out, [np.flatnonzero(row) for row in fired])


@dataclass(frozen=True)
class SimulatedPeriods:
    """The simulator's prediction for one (η, λ, β), over its seeds.

    Attributes
    ----------
    lr, wd, momentum : float
    period : float
        Mean period over the seeds' periods (:func:`analysis.detection.period_lengths`); NaN when not periodic.
    period_std : float
        Standard deviation of the periods within a run, averaged over the seeds.
    serial_correlation : float
        Lag-1 correlation of consecutive periods, pooled over the seeds (NaN with fewer than 3 pairs).
    regime : str
        ``periodic``, ``equilibrium`` or ``convergent`` (module docstring), the most common over the seeds.
    n_events : float
        Mean destabilisations per seed.
    """

    lr: float
    wd: float
    momentum: float
    period: float
    period_std: float
    serial_correlation: float
    regime: str
    n_events: float


STATIONARY = 0.01
"""A run without periods is at equilibrium when η̃ changed over its last tenth by less than this share of what pure
weight decay would have changed it by."""


def _regime(events: np.ndarray, elr: np.ndarray, decay_rate: float) -> str:
    """``decay_rate``: ``−2 ln z₊``, the growth of ln η̃ per step under pure weight decay."""
    if events.size >= MIN_DESTABILIZATIONS:
        return "periodic"
    tail = elr[-max(2, elr.size // 10) :]
    growth = abs(np.log(tail[-1] / tail[0]))
    return "equilibrium" if growth < STATIONARY * decay_rate * (tail.size - 1) else "convergent"


def simulated_periods(
    constants: CatapultConstants, lr, wd, momentum=0.0, *, steps: int, seeds: int = 4, seed: int = 0, elr0=None
) -> list[SimulatedPeriods]:
    """The period distribution and regime :func:`simulate_catapults` predicts for each (η, λ, β)."""
    run = simulate_catapults(constants, lr, wd, momentum, steps=steps, seeds=seeds, seed=seed, elr0=elr0)
    found = []
    for start in range(0, run.lr.size, seeds):
        per_seed = [run.events[start + k] for k in range(seeds)]
        decay_rate = float(-2 * np.log(theory.norm_decay_factor(run.lr[start], run.wd[start], run.momentum[start])))
        regimes = [_regime(events, run.elr[start + k], decay_rate) for k, events in enumerate(per_seed)]
        periodic = [e for e in per_seed if e.size >= MIN_DESTABILIZATIONS]
        lengths = [period_lengths(e).astype(float) for e in periodic]
        pairs = np.concatenate([np.c_[p[:-1], p[1:]] for p in lengths if p.size >= 2] or [np.empty((0, 2))])
        found.append(
            SimulatedPeriods(
                lr=float(run.lr[start]),
                wd=float(run.wd[start]),
                momentum=float(run.momentum[start]),
                period=float(np.mean(np.concatenate(lengths))) if lengths else math.nan,
                period_std=float(np.mean([p.std() for p in lengths])) if lengths else math.nan,
                serial_correlation=correlation(pairs[:, 0], pairs[:, 1]),
                regime=max(set(regimes), key=regimes.count),
                n_events=float(np.mean([e.size for e in per_seed])),
            )
        )
    return found


def shuffled_constants(own: CatapultConstants, others: list[CatapultConstants], seed: int = 0) -> CatapultConstants:
    """``own`` with each landscape constant taken from a randomly chosen run of ``others``: a control whose
    predictions must do worse if the calibration run's own constants carry its information."""
    rng = np.random.default_rng(seed)
    others = sorted(others, key=lambda c: (c.lr * c.wd, c.momentum, c.lr))  # the draw does not hang on their order
    names = ("elr_event", "far_grad_norm", "landing_angle", "quiet_grad_norm", "quiet_steps", "spike_steps")
    return replace(own, **{name: getattr(others[rng.integers(len(others))], name) for name in names})


def power_law_held_out(lr_wd, measured) -> np.ndarray:
    """Each run's mean period from ``a·(ηλ)^(−b)`` fitted (least squares in logs) on the runs at the *other* products
    ηλ: the two-parameter baseline. NaN where fewer than two other products have a measured period.

    Parameters
    ----------
    lr_wd, measured : array_like, shape (n,)
        ηλ and the measured mean period (NaN: not measured) of each run.
    """
    x, y = np.log(np.asarray(lr_wd, dtype=np.float64)), np.log(np.asarray(measured, dtype=np.float64))
    found = np.full(x.shape, np.nan)
    for i in range(x.size):
        others = np.isfinite(y) & ~np.isclose(x, x[i])
        if np.unique(np.round(x[others], 9)).size >= 2:
            slope, intercept = np.polyfit(x[others], y[others], 1)
            found[i] = np.exp(intercept + slope * x[i])
    return found


@dataclass(frozen=True)
class CalibratedPredictions:
    """Every run's mean period predicted from the constants of one calibration run (:func:`one_run_calibrations`).

    Attributes
    ----------
    calibration : int
        Index of the run the constants were measured on.
    constants : CatapultConstants
        What the simulator was fed: that run's constants.
    predicted, predicted_std, predicted_serial_correlation : ndarray, shape (n,)
        The simulator's mean period, the spread of the periods within a run and their lag-1 correlation, per run.
    constant_product : ndarray, shape (n,)
        The baseline ``T·ηλ/(1−β) = const`` through the calibration run: ``T₀·p₀/p`` with ``p = ηλ/(1−β)``, the pure
        decay's rate per step (``T·ηλ = const`` without momentum).
    shuffled : ndarray, shape (n,)
        The control: the simulator fed the calibration run's constants with each replaced by another run's
        (:func:`shuffled_constants`); NaN when there is no other run with constants (and no control is scored).
    held_out : ndarray of bool, shape (n,)
        The runs scored: a measured period, at another ηλ or β than the calibration run's. Where the simulator (or the
        control) predicts no period for one of them, its error there is infinite: a miss.
    scores : PredictionScores
        Over the held-out runs: the prediction against the baseline ``constant_product``, the control ``shuffled``.
    power_law_error : float
        The median |relative error| over the held-out runs of the power law in ``ηλ/(1−β)`` through the other runs
        (:func:`power_law_held_out`; it needs two other products ηλ where the simulator needs one run); NaN where some
        held-out run has no such fit.
    """

    calibration: int
    constants: CatapultConstants
    predicted: np.ndarray
    predicted_std: np.ndarray
    predicted_serial_correlation: np.ndarray
    constant_product: np.ndarray
    shuffled: np.ndarray
    held_out: np.ndarray
    scores: PredictionScores
    power_law_error: float


def missed_as_infinite(periods: np.ndarray) -> np.ndarray:
    """No period predicted where one was measured is a miss (infinite error), not a run left out of the score."""
    return np.where(np.isfinite(periods), periods, np.inf)


def one_run_calibrations(
    constants: list, lr, wd, momentum, measured, *, steps: int, seeds: int = 8, seed: int = 0
) -> list[CalibratedPredictions]:
    """For each run with constants and a measured period, predict every run's mean period from its constants alone
    (the measured period only sets the baseline through the same run).

    Parameters
    ----------
    constants : list of CatapultConstants or None, length n
        Per run (:func:`analysis.catapult.catapult_constants`); None for a run with too few catapults (it is
        predicted and scored, but calibrates nothing).
    lr, wd, momentum, measured : array_like, shape (n,)
        Each run's (η, λ, β) and measured mean period (NaN: none).
    steps : int
        Simulated steps per run: enough for many periods at the smallest ηλ (:func:`calibrate_on_runs` takes
        :data:`SIMULATED_BUDGETS` × the runs' budget).
    seeds, seed
        As in :func:`simulated_periods`.

    Returns
    -------
    list of CalibratedPredictions, one per calibrating run
    """
    lr, wd, momentum, measured = (np.asarray(a, dtype=np.float64) for a in (lr, wd, momentum, measured))
    lr_wd = lr * wd / (1 - momentum)  # the pure decay's rate per step, −ln z₊ ≈ ηλ/(1−β)
    power_law = power_law_held_out(lr_wd, measured)
    calibrating = [i for i, c in enumerate(constants) if c is not None and np.isfinite(measured[i])]
    found = []
    for i in calibrating:
        own = simulated_periods(constants[i], lr, wd, momentum, steps=steps, seeds=seeds, seed=seed)
        others = [constants[j] for j in calibrating if j != i]
        shuffled = np.full(lr.size, np.nan)
        if others:
            control = simulated_periods(
                shuffled_constants(constants[i], others, seed), lr, wd, momentum, steps=steps, seeds=seeds, seed=seed
            )
            shuffled = np.array([p.period for p in control])
        predicted = np.array([p.period for p in own])
        constant_product = measured[i] * lr_wd[i] / lr_wd
        other = ~np.isclose(lr * wd, lr[i] * wd[i]) | (momentum != momentum[i])
        held_out = np.isfinite(measured) & other
        scores = score_predictions(
            missed_as_infinite(predicted)[held_out],
            {"constant_period_times_lr_wd": constant_product[held_out]},
            {"shuffled_constants": missed_as_infinite(shuffled)[held_out]} if others else {},
            measured[held_out],
        )
        fitted = power_law[held_out]
        power_law_error = (
            median_abs_relative_error(fitted, measured[held_out]) if np.isfinite(fitted).all() else math.nan
        )
        found.append(
            CalibratedPredictions(
                calibration=i,
                constants=constants[i],
                predicted=predicted,
                predicted_std=np.array([p.period_std for p in own]),
                predicted_serial_correlation=np.array([p.serial_correlation for p in own]),
                constant_product=constant_product,
                shuffled=shuffled,
                held_out=held_out,
                scores=scores,
                power_law_error=power_law_error,
            )
        )
    return found


SIMULATED_BUDGETS = 4
"""How many times the longest measured run :func:`calibrate_on_runs` simulates: more periods, less Monte Carlo
noise in the predicted means."""


def measured_periods(rows: list[dict], min_periods: int) -> np.ndarray:
    """Each summary row's mean period (``period_measured``), NaN where it counted fewer than ``min_periods`` periods:
    shape (n_rows,)."""
    return np.array([r["period_measured"] if len(r["periods"]) >= min_periods else np.nan for r in rows], dtype=float)


def calibrate_on_runs(
    runs, *, min_periods: int, budgets: int = SIMULATED_BUDGETS, seeds: int = 8, seed: int = 0
) -> list[CalibratedPredictions]:
    """:func:`one_run_calibrations` of finished runs, each given as ``(steps, series, summary row)``: their constants
    (:func:`analysis.catapult.run_catapult_constants`), (η, λ, β) and :func:`measured_periods`, simulated for
    ``budgets`` × the longest run."""
    rows = [row for *_, row in runs]
    lr, wd, momentum = (np.array([r[key] for r in rows], dtype=float) for key in ("lr_effective", "wd", "momentum"))
    constants = [run_catapult_constants(*run) for run in runs]
    steps = budgets * max(r["steps_trained"] for r in rows)
    measured = measured_periods(rows, min_periods)
    return one_run_calibrations(constants, lr, wd, momentum, measured, steps=steps, seeds=seeds, seed=seed)
