"""An early warning of the next destabilisation, computed online, and its score against the clock and the reactive
spike detectors.

**What a warning says.** A warning switched on at step ``a`` (an *alarm*) says: the next destabilisation comes within
``horizon`` steps, at least :data:`MIN_LEAD` of them from now. The alarm is *true* when the next destabilisation ``e``
(:mod:`analysis.destabilization`: the last step before ρ rises) falls in ``[a + min_lead, a + horizon]``; a
destabilisation is *warned* when an alarm went off in ``[e − horizon, e − min_lead]`` after the destabilisation before
it, and its *lead time* is ``e`` minus the first such alarm. Precision is true alarms over alarms, recall warned
destabilisations over destabilisations, F1 their harmonic mean. A warning that stays on says nothing new while it
stays on: only its switching on counts, so a warning that is always on scores one alarm.

The horizon is a fraction of the run's mean period (:data:`HORIZON_FRACTION`, scored over :data:`HORIZON_BAND` as
well): "within a quarter of a period" is the same claim at every ηλ. The first destabilisation of a run ends the
transient from the initialisation, and nothing before it is like what follows: destabilisations are scored from the
second on, alarms after the first.

**The warning** (:class:`EarlyWarning`) reads one record at a time and never a later one. Between
destabilisations η̃ grows by (1−ηλ)^(−2/(1−β)) a step, and the next destabilisation comes once η̃·s̃ passes its
threshold; s̃ is not measured at every step, so the η̃ at which the past destabilisations came stands in for the
threshold, and the warning switches on when η̃ is a few steps of growth below it. It reads η̃ only: on ConvNetSI's
minibatch runs the loss, ‖g̃‖ and the cosine of consecutive gradients (``grad_cosine``, −1 once the top direction
flips the gradient every step) leave their noise about 2 steps before a destabilisation, too late for a warning; on
a full-batch run the cosine is out of its noise 5 steps ahead, but it also sits near −1 for long stretches between
destabilisations, and a warning on it (its moving average below −0.5) warned none of them
(``benchmarks/early_warning_table.py`` measures both, and how much any warning built on these signals could reach).

**Baselines**, scored by the same function: the *clock* (:func:`clock_alarms`: an alarm once the current period
reaches a fraction of the mean of the past ones, told each destabilisation at its step, which no online clock could
be), at the fraction whose precision is at least the warning's with the best F1; and the reactive detectors
(:data:`REACTIVE_RULES`, each by its published rule, on the loss), whose alarms come at or after the spike: they
are scored with a lead down to minus the run's rise time, so that their hits and delays show.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bnwd import theory
from bnwd.analysis.destabilization import DEFAULT_SETTINGS
from bnwd.analysis.detection import MIN_JUMP_FLOOR

__all__ = [
    "CLOCK_FRACTIONS",
    "HORIZON_BAND",
    "HORIZON_FRACTION",
    "MIN_LEAD",
    "REACTIVE_RULES",
    "TARGETS",
    "AlarmScore",
    "EarlyWarning",
    "WarningReport",
    "alarm_onsets",
    "band_warnings",
    "clock_alarms",
    "horizon_steps",
    "on_intervals",
    "reactive_alarms",
    "score_alarms",
    "score_run",
    "warnings_of",
]

MIN_LEAD = 5
"""Steps ahead a warning must come to count."""
HORIZON_FRACTION = 0.25
"""A warning's horizon as a fraction of the run's mean period."""
HORIZON_BAND = (0.125, 0.25, 0.5)
"""The horizon fractions a warning is also built for and scored at: a verdict that changes over them is fragile."""
CLOCK_FRACTIONS = tuple(np.round(np.arange(0.05, 1.51, 0.05), 2))
"""The clock's fractions of the past mean period, from which the one matching the warning's precision is taken."""
TARGETS = {"recall": 0.8, "precision": 0.8, "f1_over_clock": 0.1}
"""What a warning has to reach (issue 32): 80 % of destabilisations warned at least :data:`MIN_LEAD` steps ahead,
precision 0.8, and an F1 0.1 above the clock's at the warning's precision."""
MIN_HISTORY = 3
"""Destabilisations seen before the warning predicts a threshold (the first one, the transient's end, included)."""
HISTORY = 20
"""The past destabilisations whose η̃ the threshold is predicted from."""


def horizon_steps(mean_period: float, fraction: float = HORIZON_FRACTION) -> int:
    """A warning's horizon in steps: ``fraction`` of ``mean_period``, at least 2 × :data:`MIN_LEAD` (so that its
    window [:data:`MIN_LEAD`, horizon] is never narrower than the lead itself)."""
    return max(round(fraction * mean_period), 2 * MIN_LEAD)


class EarlyWarning:
    """The warning, one record at a time (the module docstring): :meth:`update` takes each step's record in order
    and returns the warning and the signals behind it; nothing of a later record enters.

    Destabilisations are seen online as a fall of ln η̃ below its running peak by more than a jump of ρ would make:
    ``2·max(ln 1.05, min_decay_steps·κ)`` (:mod:`analysis.destabilization`'s floors, κ the fall of ln ρ per step
    of pure decay); the peak is η̃ at the destabilisation, the lowest η̃ after it the period's start. The next
    destabilisation's ln η̃ is predicted as the median of the past ones, shifted by the regression of each on the
    start of its period (a lower landing tends to be followed by a lower threshold). The steps until η̃ reaches it by
    pure decay (:func:`theory.norm_decay_factor`) are ``steps_to_threshold``; the warning switches on when they
    fall to ``lead_target``, the middle of the window [:data:`MIN_LEAD`, horizon] with the horizon
    ``horizon_fraction`` of the mean past period (:func:`horizon_steps`), and stays on until the destabilisation is
    seen.
    """

    def __init__(
        self,
        *,
        horizon_fraction: float = HORIZON_FRACTION,
        min_decay_steps: float = DEFAULT_SETTINGS.min_decay_steps,
    ):
        if not 0 < horizon_fraction <= 1:
            raise ValueError(f"horizon_fraction must be in (0, 1]; got {horizon_fraction!r}")
        self.horizon_fraction = float(horizon_fraction)
        self.min_decay_steps = float(min_decay_steps)
        self.peaks: list[float] = []  # ln η̃ at each destabilisation seen
        self.peak_steps: list[int] = []
        self.starts: list[float] = []  # ln η̃ at the start of the period each destabilisation ended (NaN: first)
        self.peak, self.peak_step = -math.inf, -1
        self.start = math.nan  # the lowest ln η̃ since the last destabilisation
        self.falling = False  # between a destabilisation's detection and the bottom of its jump
        self.on = False
        self._rate: tuple[tuple, float] | None = None  # (η, λ, β) → growth of ln η̃ per step
        self._threshold: tuple | None = None  # (destabilisations seen, start) → predicted threshold, lead target

    def _growth(self, lr: float, wd: float, momentum: float) -> float:
        """−2 ln z₊, the growth of ln η̃ per step of pure decay (cached per η, λ, β); NaN outside the theory's
        domain (ηλ ≥ 1, or momentum whose decay oscillates), which a schedule may reach."""
        key = (lr, wd, momentum)
        if self._rate is None or self._rate[0] != key:
            try:
                growth = float(-2 * np.log(theory.norm_decay_factor(lr, wd, momentum)))
            except ValueError:
                growth = math.nan
            self._rate = (key, growth)
        return self._rate[1]

    def predicted_threshold(self) -> float:
        """ln η̃ at which the next destabilisation is predicted: NaN before :data:`MIN_HISTORY` of them."""
        if len(self.peaks) < MIN_HISTORY:
            return math.nan
        peaks = np.array(self.peaks[-HISTORY:])
        starts = np.array(self.starts[-HISTORY:])
        paired = np.isfinite(starts)
        median = float(np.median(peaks))
        if paired.sum() < MIN_HISTORY or not math.isfinite(self.start):
            return median
        x, y = starts[paired], peaks[paired]
        spread = float(np.var(x))
        slope = float(np.clip(np.cov(x, y, bias=True)[0, 1] / spread, 0.0, 1.0)) if spread > 0 else 0.0
        return median + slope * (self.start - float(np.median(x)))

    def update(self, step: int, elr: float, lr: float, wd: float, momentum: float = 0.0) -> dict:
        """The warning at ``step`` from its η̃ and η, λ, β: ``warning`` (0 or 1), ``steps_to_threshold`` (NaN
        where there is no prediction: too few destabilisations seen, λ = 0, η̃ not finite)."""
        step = int(step)  # a plain int in the state (torch.load(weights_only=True) refuses numpy's)
        quiet = {"warning": 0, "steps_to_threshold": math.nan}
        if not (math.isfinite(elr) and elr > 0 and lr > 0 and wd > 0):
            return quiet
        growth = self._growth(lr, wd, momentum)
        if not math.isfinite(growth):
            return quiet
        level = math.log(elr)
        drop = 2 * max(MIN_JUMP_FLOOR, self.min_decay_steps * growth / 2)
        if self.falling:
            if level <= self.start:
                self.start = level
            else:  # past the jump's bottom: the period has started
                self.falling, self.peak, self.peak_step = False, level, step
        elif level >= self.peak:
            self.peak, self.peak_step = level, step
        elif self.peak - level > drop:  # a destabilisation, seen
            self.peaks.append(self.peak)
            self.peak_steps.append(self.peak_step)
            self.starts.append(self.start)
            self.falling, self.start, self.on = True, level, False
        key = (len(self.peaks), self.start)
        if self._threshold is None or self._threshold[0] != key:  # they change with a destabilisation only
            self._threshold = (key, self.predicted_threshold(), self.lead_target())
        _, threshold, lead_target = self._threshold
        if self.falling or not math.isfinite(threshold):
            return quiet
        steps_to_threshold = (threshold - level) / growth
        self.on = self.on or steps_to_threshold <= lead_target
        return {"warning": int(self.on), "steps_to_threshold": steps_to_threshold}

    def lead_target(self) -> float:
        """Steps before the predicted threshold at which the warning switches on: the middle of its window
        [:data:`MIN_LEAD`, :func:`horizon_steps`], the horizon that of the mean period between the
        destabilisations seen."""
        if len(self.peak_steps) < 2:
            return math.nan
        return (horizon_steps(float(np.mean(np.diff(self.peak_steps))), self.horizon_fraction) + MIN_LEAD) / 2

    def state_dict(self) -> dict:
        """Plain values: enough to go on after a checkpoint. A copy, so that the warner going on leaves a state
        kept in memory (not yet saved) as it was taken."""
        return copy.deepcopy({k: v for k, v in vars(self).items() if not k.startswith("_")})

    def load_state_dict(self, state: dict) -> None:
        """Go on from :meth:`state_dict`'s ``state`` (copied: the warner going on leaves it as it is)."""
        vars(self).update(copy.deepcopy(state))
        self._rate = self._threshold = None


def warnings_of(steps, elr, lr, wd, momentum=0.0, *, horizon_fraction=HORIZON_FRACTION) -> dict[str, np.ndarray]:
    """:class:`EarlyWarning` (claiming ``horizon_fraction`` of a period) run over a whole series, one step after the
    other (what :class:`empirical.monitor.Monitor` computes as the run goes): ``warning`` and
    ``steps_to_threshold``, shape (n,) each; ``lr``, ``wd``, ``momentum`` scalars or per step."""
    steps = np.asarray(steps)
    elr = np.asarray(elr, dtype=float)
    lr, wd, momentum = (np.broadcast_to(np.asarray(v, dtype=float), steps.shape) for v in (lr, wd, momentum))
    warner = EarlyWarning(horizon_fraction=horizon_fraction)
    out = [
        warner.update(int(t), float(e), float(a), float(b), float(c))
        for t, e, a, b, c in zip(steps, elr, lr, wd, momentum, strict=True)
    ]
    return {key: np.array([o[key] for o in out]) for key in ("warning", "steps_to_threshold")}


def band_warnings(steps, elr, lr, wd, momentum=0.0) -> dict[float, np.ndarray]:
    """The warning claiming each horizon fraction of :data:`HORIZON_BAND` (:func:`warnings_of`), what
    :func:`score_run` scores."""
    return {f: warnings_of(steps, elr, lr, wd, momentum, horizon_fraction=f)["warning"] for f in HORIZON_BAND}


def on_intervals(warning) -> np.ndarray:
    """The stretches where ``warning`` (shape (n,), 0/1 or bool) is on: shape (k, 2), each row the index it switches
    on at and the index after its last on step, in order."""
    padded = np.concatenate([[False], np.asarray(warning, dtype=bool), [False]])
    return np.flatnonzero(padded[1:] != padded[:-1]).reshape(-1, 2)


def alarm_onsets(warning) -> np.ndarray:
    """Indices where the boolean series ``warning`` (shape (n,)) switches on: ``warning[a]`` and not
    ``warning[a − 1]`` (or ``a = 0``), the starts of its :func:`on_intervals`."""
    return on_intervals(warning)[:, 0]


@dataclass(frozen=True)
class AlarmScore:
    """The alarms of one warning (or detector) against one run's destabilisations (:func:`score_alarms`).

    ``events`` are the destabilisations scored, ``lead`` per event the lead time of its first alarm in its window
    (NaN: none), ``warned`` whether it counts (lead ≥ ``min_lead``); ``n_alarms`` alarms of which ``n_true`` were
    followed by a destabilisation inside their window; ``steps`` the steps scored."""

    horizon: int
    min_lead: int
    events: np.ndarray
    lead: np.ndarray
    warned: np.ndarray
    n_alarms: int
    n_true: int
    steps: int

    @property
    def recall(self) -> float:
        return float(self.warned.mean()) if self.events.size else math.nan

    @property
    def precision(self) -> float:
        return self.n_true / self.n_alarms if self.n_alarms else math.nan

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if not (math.isfinite(p) and math.isfinite(r)):
            return math.nan
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def false_alarms_per_1000(self) -> float:
        return 1000 * (self.n_alarms - self.n_true) / self.steps if self.steps else math.nan

    @property
    def median_lead(self) -> float:
        """Median lead time of the warned destabilisations (NaN with none)."""
        return float(np.median(self.lead[self.warned])) if self.warned.any() else math.nan

    def as_dict(self) -> dict:
        """Plain values for a summary: the scores, the lead times (None where none) and the counts."""
        return {
            "horizon": self.horizon,
            "min_lead": self.min_lead,
            "n_destabilizations": int(self.events.size),
            "n_warned": int(self.warned.sum()),
            "recall": self.recall,
            "precision": self.precision,
            "f1": self.f1,
            "n_alarms": self.n_alarms,
            "false_alarms_per_1000": self.false_alarms_per_1000,
            "median_lead": self.median_lead,
            "lead": [None if math.isnan(v) else int(v) for v in self.lead.tolist()],
        }


def score_alarms(onsets, events, n_steps: int, *, horizon: int, min_lead: int = MIN_LEAD) -> AlarmScore:
    """Score alarms against destabilisations (the module docstring): destabilisations from the second on, alarms
    after the first.

    Parameters
    ----------
    onsets : array_like of int
        Steps at which the warning switched on (:func:`alarm_onsets`), increasing.
    events : array_like of int
        The run's destabilisations, increasing.
    n_steps : int
        Steps of the run.
    horizon : int
        The longest lead an alarm claims, ≥ ``min_lead``.
    min_lead : int
        The shortest lead that counts; negative for a reactive detector (an alarm up to ``−min_lead`` steps after a
        destabilisation detects it).
    """
    onsets, events = np.asarray(onsets, dtype=np.int64), np.asarray(events, dtype=np.int64)
    if horizon < min_lead:
        raise ValueError(f"horizon must be >= min_lead; got {horizon} < {min_lead}")
    start = int(events[0]) + 1 if events.size else n_steps
    scored, onsets = events[1:], onsets[onsets >= start]
    # the destabilisation an alarm announces is the next one (a reactive detector's: the one it may lag), and it
    # must fall in the alarm's window [a + min_lead, a + horizon]
    announced = np.searchsorted(scored, onsets + min(min_lead, 0))
    inside = announced < scored.size
    due = scored[np.minimum(announced, scored.size - 1)] if scored.size else onsets
    n_true = int(np.count_nonzero(inside & (due >= onsets + min_lead) & (due <= onsets + horizon)))
    # each destabilisation's first alarm in [e − horizon, e − min_lead], after the destabilisation before it
    previous = events[:-1]
    lo = np.searchsorted(onsets, np.maximum(scored - horizon, previous + 1))
    hi = np.searchsorted(onsets, scored - min_lead, side="right")
    lead = np.where(lo < hi, scored - onsets[np.minimum(lo, onsets.size - 1)] if onsets.size else 0, np.nan)
    return AlarmScore(
        horizon=int(horizon),
        min_lead=int(min_lead),
        events=scored,
        lead=lead.astype(float),
        warned=lo < hi,
        n_alarms=int(onsets.size),
        n_true=n_true,
        steps=max(n_steps - start, 0),
    )


def clock_alarms(events, n_steps: int, fraction: float) -> np.ndarray:
    """The clock's alarms: one in each period once it has lasted ``fraction`` of the mean of the periods before
    it (from the second period on), unless the period has ended by then. The clock is told each destabilisation
    at its own step."""
    events = np.asarray(events, dtype=np.int64)
    periods = np.diff(events)
    if periods.size < 1:
        return np.zeros(0, dtype=np.int64)
    past_mean = np.cumsum(periods) / np.arange(1, periods.size + 1)  # after events[k + 1]: mean of periods[:k + 1]
    starts = events[1:]
    onsets = starts + np.ceil(fraction * past_mean).astype(np.int64)
    ends = np.append(events[2:], n_steps)
    return onsets[onsets < ends]


# --- the reactive detectors, each by its published rule on the loss ------------------------------------------


def _trailing(loss: np.ndarray, window: int, reduce: Callable) -> np.ndarray:
    """``reduce`` over the ``window`` losses before each step (NaN until there are that many)."""
    out = np.full(loss.size, np.nan)
    if loss.size > window:
        windows = np.lib.stride_tricks.sliding_window_view(loss[:-1], window)
        out[window:] = reduce(windows, axis=1)
    return out


def _olmo_core(loss: np.ndarray) -> np.ndarray:
    """OLMo-core's stability check: the loss more than 6 standard deviations above the mean of the last 128."""
    mean, std = _trailing(loss, 128, np.mean), _trailing(loss, 128, np.std)
    return loss > mean + 6 * std


def _llm_foundry(loss: np.ndarray) -> np.ndarray:
    """llm-foundry's ``KillLossSpike``: the loss above 2× the mean of the last 100, for more than 4 steps in a
    row (the alarm at the fifth)."""
    outlier = loss > 2 * _trailing(loss, 100, np.mean)
    run = np.zeros(loss.size, dtype=np.int64)
    for i, flag in enumerate(outlier):
        run[i] = run[i - 1] + 1 if flag and i else int(flag)
    return run > 4


def _lightning(loss: np.ndarray) -> np.ndarray:
    """Lightning's ``SpikeDetection`` at its defaults: the loss above (1 + rtol)·the mean of the last 10, rtol=2."""
    return loss > 3 * _trailing(loss, 10, np.mean)


def _megatron(loss: np.ndarray) -> np.ndarray:
    """Megatron-LM's spiky-loss check: the loss above 10× the largest loss seen before."""
    largest = np.concatenate([[np.nan], np.maximum.accumulate(loss)[:-1]])
    return loss > 10 * largest


REACTIVE_RULES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "olmo_core": _olmo_core,
    "llm_foundry": _llm_foundry,
    "lightning": _lightning,
    "megatron": _megatron,
}
"""The reactive detectors: name → the boolean series of steps each flags, from the loss alone."""


def reactive_alarms(loss, rule: str) -> np.ndarray:
    """The alarms of the reactive detector ``rule`` (a name of :data:`REACTIVE_RULES`) on the per-step ``loss``."""
    with np.errstate(invalid="ignore"):
        return alarm_onsets(REACTIVE_RULES[rule](np.asarray(loss, dtype=float)))


@dataclass(frozen=True)
class WarningReport:
    """A warning's score on one run and its baselines' at every horizon of :data:`HORIZON_BAND`.

    ``warning`` and ``clock`` (at ``clock_fraction``, the fraction whose precision is at least the warning's with
    the best F1; ``clock_precision_matched`` False when no fraction reaches it) map each horizon fraction to an
    :class:`AlarmScore`; ``reactive`` maps each rule to its score at the default horizon, detections counted up to
    ``rise_time`` steps after a destabilisation."""

    warning: dict[float, AlarmScore]
    clock: dict[float, AlarmScore]
    clock_fraction: dict[float, float]
    clock_precision_matched: dict[float, bool]
    reactive: dict[str, AlarmScore] = field(default_factory=dict)

    def meets_targets(self, fraction: float = HORIZON_FRACTION) -> bool:
        """Whether the warning at horizon ``fraction`` meets :data:`TARGETS`: recall and precision at least theirs,
        F1 above the precision-matched clock's by at least theirs (where no clock is that precise, the most precise
        one's: an imprecise clock's F1 still counts, lest a warning win by a hair of precision)."""
        score, clock = self.warning[fraction], self.clock[fraction]
        clock_f1 = np.nan_to_num(clock.f1)
        return bool(
            np.nan_to_num(score.recall) >= TARGETS["recall"]
            and np.nan_to_num(score.precision) >= TARGETS["precision"]
            and np.nan_to_num(score.f1) - clock_f1 >= TARGETS["f1_over_clock"]
        )

    @property
    def verdict(self) -> str:
        """``meets``, ``misses`` (the same at every horizon of the band) or ``fragile``."""
        met = {self.meets_targets(f) for f in self.warning}
        return "fragile" if len(met) > 1 else ("meets" if met.pop() else "misses")

    def as_dict(self) -> dict:
        """Plain values for a summary: per horizon fraction the warning's and the clock's scores, the reactive
        detectors' and the verdict against :data:`TARGETS`."""
        return {
            "targets": dict(TARGETS),
            "verdict": self.verdict,
            "by_horizon": {
                f"{fraction:g}": {
                    "warning": self.warning[fraction].as_dict(),
                    "clock": self.clock[fraction].as_dict()
                    | {
                        "fraction": self.clock_fraction[fraction],
                        "precision_matched": self.clock_precision_matched[fraction],
                    },
                }
                for fraction in self.warning
            },
            "reactive": {rule: score.as_dict() for rule, score in self.reactive.items()},
        }


def score_run(warnings: dict, events, n_steps: int, *, loss=None, rise_time: int = 0) -> WarningReport | None:
    """A warning's :class:`WarningReport` on one run: at each horizon fraction of ``warnings`` the warning that
    claims it, beside the clock at matched precision; the reactive detectors on ``loss`` (when given) at the default
    horizon.

    Parameters
    ----------
    warnings : dict of float to array_like of bool or int, shape (n_steps,) each
        Per horizon fraction (:data:`HORIZON_BAND`; :data:`HORIZON_FRACTION` among them), the warning claiming it at
        each step (:func:`band_warnings`).
    events : array_like of int
        The run's destabilisations (:func:`analysis.destabilization.analyze`).
    n_steps : int
    loss : array_like, shape (n_steps,), optional
    rise_time : int
        The run's rise time: a reactive detector's alarm up to that many steps after a destabilisation detects it.

    Returns
    -------
    WarningReport, or None when the run has fewer than :data:`MIN_HISTORY` + 1 destabilisations (nothing to score).
    """
    events = np.asarray(events, dtype=np.int64)
    if events.size < MIN_HISTORY + 1:
        return None
    if HORIZON_FRACTION not in warnings:
        raise ValueError(f"warnings must hold the default horizon fraction {HORIZON_FRACTION}; got {sorted(warnings)}")
    mean_period = float(np.mean(np.diff(events)))
    scores, clocks, fractions, matched = {}, {}, {}, {}
    for fraction, warning in warnings.items():
        horizon = horizon_steps(mean_period, fraction)
        scores[fraction] = score = score_alarms(alarm_onsets(warning), events, n_steps, horizon=horizon)
        clock = {
            f: score_alarms(clock_alarms(events, n_steps, f), events, n_steps, horizon=horizon) for f in CLOCK_FRACTIONS
        }
        precise = {f: c for f, c in clock.items() if c.precision >= np.nan_to_num(score.precision)}
        matched[fraction] = bool(precise)
        pool = precise or {max(clock, key=lambda f: np.nan_to_num(clock[f].precision)): None}
        fractions[fraction] = best = max(pool, key=lambda f: np.nan_to_num(clock[f].f1))
        clocks[fraction] = clock[best]
    reactive = {}
    if loss is not None:
        horizon = horizon_steps(mean_period)
        reactive = {
            rule: score_alarms(reactive_alarms(loss, rule), events, n_steps, horizon=horizon, min_lead=-int(rise_time))
            for rule in REACTIVE_RULES
        }
    return WarningReport(scores, clocks, fractions, matched, reactive)
