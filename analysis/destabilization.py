"""What a destabilisation is, and a run's periods and regime, with their sensitivity to the detector's settings.

**Definition.** A destabilisation is a step after which the weights leave the minimum they were converging to. It
shows in every signal at once: the loss and ‖g̃‖ spike, the norm ρ of the scale-invariant weights jumps up and
η̃ = η/ρ² drops (η̃ carries the same information as ρ). Step ``e`` is a destabilisation when, with ``W`` the run's
rise time,

1. ρ rises out of its noise: :func:`analysis.detection.find_jumps` on ρ flags it (the rise of ln ρ above its trend
   exceeds the robust null distribution of such rises by 6σ, and ln 1.05); ``e`` is the last sample before ln ρ has
   risen a tenth of its jump above its trend;
2. the jump undoes at least ``min_decay_steps`` steps of free decay, ``max ln ρ(e, e+W] − ln ρ(e) ≥
   min_decay_steps·κ``, κ = −ln(1−ηλ)/(1−β) the fall of ln ρ per step under weight decay alone: a bump that
   leaves ρ where a few steps of decay would put it does not start a new period (with λ = 0 there is no κ and
   step 1 alone applies);
3. the loss spikes: the mean of ln L over ``[e, e+W)`` exceeds its mean over ``[e−W, e)`` by at least
   ``loss_z`` standard errors, ``σ_L·√(2/W)``, with σ_L = 1.4826·MAD/√2 of the first differences of ln L (the
   loss's own step-to-step noise, measured on the run). Without a loss, ‖g̃‖ stands in (it spikes with the loss);
   without either, steps 1–2 decide alone, and ``signals`` says so.

Step 3 alone, maxima of that statistic above ``loss_z`` at least ``2W`` apart, is the loss's own detection
(:func:`analysis.detection.find_spikes`); steps 1–2 alone are ρ's. At a fixed norm ρ cannot jump, and the loss's
detection is used. The rise time ``W`` is measured on each run (:func:`rise_times`). Periods are the intervals
between destabilisations (:func:`analysis.detection.period_lengths`, a transient first interval dropped).

**Sensitivity.** Every number is computed again at the settings of :data:`SENSITIVITY_BAND`: each threshold
around its default, written as absolute values (``min_decay_steps`` 2.5 and 10, the jump halved and doubled;
``loss_z`` 4 and 8), and the window at twice the measured rise time (a window shorter than the rise cannot hold
it). Results carry their min–max over the band; a verdict that changes inside the band is *fragile*.

**Regimes**: :mod:`analysis.regimes` classifies each run with the numbers that decided it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bnwd.analysis.detection import find_jumps, find_spikes, frequency_interval, period_lengths, spike_statistic
from bnwd.analysis.regimes import classify, screen
from bnwd.analysis.schema import NormControl

__all__ = [
    "DEFAULT_SETTINGS",
    "SENSITIVITY_BAND",
    "Detection",
    "DetectorSettings",
    "Periodicity",
    "agreement",
    "analyze",
    "rise_times",
]

_START_WINDOW = 5
_RISE_QUANTILE = 0.9  # the rise time covers 90 % of a run's jumps


@dataclass(frozen=True)
class DetectorSettings:
    """The detector's knobs (see the module docstring): the smallest ρ jump in steps of free decay, the smallest
    loss spike in standard errors of the loss's own noise, and the window (None: the measured rise time; a float
    f: f times it; an int: that many samples)."""

    min_decay_steps: float = 5.0
    loss_z: float = 5.0
    window: int | float | None = None

    def __post_init__(self):
        for name in ("min_decay_steps", "loss_z"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
        if isinstance(self.window, int) and not isinstance(self.window, bool):
            if self.window < 1:
                raise ValueError(f"window must be an integer >= 1; got {self.window!r}")
        elif self.window is not None and not (isinstance(self.window, float) and self.window > 0):
            raise ValueError(f"window must be None, an int >= 1 or a factor > 0; got {self.window!r}")

    def label(self) -> str:
        """``name=value`` of the settings that differ from the defaults (``default`` for none); a window factor
        reads ``window=x2``."""
        changed = []
        for name, value in vars(self).items():
            if value != getattr(DEFAULT_SETTINGS, name):
                factor = name == "window" and isinstance(value, float)
                changed.append(f"{name}=x{value:g}" if factor else f"{name}={value:g}")
        return ", ".join(changed) or "default"


DEFAULT_SETTINGS = DetectorSettings()
SENSITIVITY_BAND = (
    DEFAULT_SETTINGS,
    DetectorSettings(min_decay_steps=2.5),
    DetectorSettings(min_decay_steps=10.0),
    DetectorSettings(loss_z=4.0),
    DetectorSettings(loss_z=8.0),
    DetectorSettings(window=2.0),
)
"""The declared band: the defaults; the jump floor halved and doubled; the spike's significance at 4 (below it,
Gaussian noise alone passes about once in 30 000 samples, runs are that long) and 8; the window doubled."""


@dataclass(frozen=True)
class Detection:
    """Destabilisations of one run at one setting: ``events`` (indices, each the last sample before the rise),
    the ``window`` (samples), the ``signals`` that decided, and per candidate of steps 1 (``candidates``) its jump
    in steps of free decay (``decay_steps``, NaN without κ) and its spike statistic (``spike_z``, NaN without a
    spiking signal)."""

    events: np.ndarray
    window: int
    signals: tuple[str, ...]
    candidates: np.ndarray
    decay_steps: np.ndarray
    spike_z: np.ndarray


@dataclass(frozen=True)
class Periodicity:
    """Periodicity and regime of one run.

    ``detection`` at the chosen settings, its ``periods``, ``period``, ``period_std``, ``frequency``,
    ``frequency_ci`` (NaN when undefined); ``regime`` with ``evidence`` (the numbers that decided it); ``band``
    maps each setting's label to ``(n_destabilizations, period)``.
    """

    detection: Detection
    periods: np.ndarray
    period: float
    period_std: float
    frequency: float
    frequency_ci: tuple[float, float]
    regime: str
    evidence: dict
    band: dict = field(default_factory=dict)

    @property
    def events(self) -> np.ndarray:
        return self.detection.events

    def band_range(self, what: str = "period") -> tuple[float, float]:
        """Min and max over the band of the mean ``"period"`` or the ``"n_destabilizations"``; NaN where no setting
        gives one."""
        index = {"n_destabilizations": 0, "period": 1}[what]
        values = np.array([entry[index] for entry in self.band.values()], dtype=float)
        if not np.isfinite(values).any():
            return (math.nan, math.nan)
        return (float(np.nanmin(values)), float(np.nanmax(values)))


# --- the three steps, vectorised over the rows of a batch ---------------------------------------------------------


def _rise_durations(log_rho: np.ndarray, row_events: list[np.ndarray], horizon: int) -> list[np.ndarray]:
    """Per row and event: the samples from the event to the end of the jump's steep part, within ``horizon``
    samples and before the next event. The steep part is the stretch around the jump's steepest step where ln ρ
    rises by at least a tenth of that step each step; the slow creep that can follow a jump is not part of it."""
    n = log_rho.shape[1]
    out = []
    for row, events in enumerate(row_events):
        if events.size == 0:
            out.append(np.zeros(0, dtype=int))
            continue
        span = np.arange(horizon)
        ends = np.minimum(np.append(events[1:], n - 1), events + horizon)
        idx = events[:, None] + span
        steps = log_rho[row, np.minimum(idx + 1, n - 1)] - log_rho[row, np.minimum(idx, n - 1)]
        steps = np.where(idx < ends[:, None], steps, -np.inf)
        steepest = steps.argmax(axis=1)
        steep = steps >= 0.1 * steps.max(axis=1, keepdims=True)
        # the first sample after the steepest step that is no longer steep
        after = (span[None, :] > steepest[:, None]) & ~steep
        end = np.where(after.any(axis=1), after.argmax(axis=1), horizon)
        out.append(end[steps.max(axis=1) > 0])
    return out


def rise_times(si_norm: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Per row, step 1's candidates and the samples a jump of ρ takes to rise, measured on the run.

    Candidates are detected on ρ with a search window of 5 samples (doubled, up to 1/16 of the series, while none
    is found). The rise time is the 90th percentile over them of the time from the event to the end of the jump's
    steep part (:func:`_rise_durations`), at least 3 and at most a third of their median interval (the spike
    statistic's two windows must fit between events); 5 where no jump is found.

    Parameters
    ----------
    si_norm : ndarray, shape (n_configs, n_steps)
        ρ per sample, > 0; a row ends at its first non-finite value.

    Returns
    -------
    search : ndarray of int, shape (n_configs,)
        The window the candidates were found with.
    rise : ndarray of int, shape (n_configs,)
    candidates : list of ndarray of int
        Per row, the candidates (:func:`analysis.detection.find_jumps` at ``search``).
    """
    rows, n = si_norm.shape
    log_rho = np.log(np.where(np.isfinite(si_norm), si_norm, 1.0))
    longest = max(_START_WINDOW, n // 16)
    search, rise = np.full(rows, _START_WINDOW), np.full(rows, _START_WINDOW)
    candidates = [np.zeros(0, dtype=np.int64)] * rows
    todo, window = np.arange(rows), _START_WINDOW
    while todo.size and window <= longest:
        events = find_jumps(si_norm[todo], window=window)
        durations = _rise_durations(log_rho[todo], events, 8 * window)
        for row, found, where in zip(todo.tolist(), durations, events, strict=True):
            search[row], candidates[row] = window, where
            if found.size:
                shortest = longest if where.size < 2 else max(int(np.median(np.diff(where))) // 3, 3)
                rise[row] = min(max(int(np.ceil(np.quantile(found, _RISE_QUANTILE))), 3), longest, shortest)
        todo, window = np.array([r for r, e in zip(todo.tolist(), events, strict=True) if not e.size]), 2 * window
    return search, rise, candidates


def _visible_onsets(log_rho: np.ndarray, events: np.ndarray, horizon: int) -> np.ndarray:
    """Each event moved to the last sample before ln ρ has risen a tenth of its jump above its trend (the median
    step of the row), looked for within ``horizon`` samples and before the next event: where the rise is visible,
    not where the detector's noise band first lets go of the baseline, which for a slowly starting jump can be
    several samples earlier."""
    if events.size == 0:
        return events
    finite = log_rho[np.isfinite(log_rho)]
    drift = np.median(np.diff(finite))
    ends = np.minimum(np.append(events[1:], finite.size - 1), events + horizon)
    moved = []
    for event, end in zip(events.tolist(), ends.tolist(), strict=True):
        above = finite[event : end + 1] - finite[event] - drift * np.arange(end + 1 - event)
        top = above.max()
        moved.append(event + max(int(np.argmax(above > 0.1 * top)) - 1, 0) if top > 0 else event)
    return np.unique(np.asarray(moved, dtype=np.int64))


def _windows(settings: DetectorSettings, rise: np.ndarray) -> np.ndarray:
    if settings.window is None:
        return rise
    if isinstance(settings.window, float):
        return np.maximum(np.round(settings.window * rise), 1).astype(int)
    return np.full(rise.size, settings.window)


@dataclass(frozen=True)
class _Measures:
    """Steps 2 and 3 measured on every row's candidates over one assignment of windows."""

    window: np.ndarray
    decay_steps: list[np.ndarray]
    spike_z: list[np.ndarray]


def _measure(log_rho, spiking, decay_rate, candidates, window) -> _Measures:
    """Each candidate's jump, ``max ln ρ(e, e+W] − ln ρ(e)`` in steps of free decay, and its spike statistic."""
    n = log_rho.shape[1]
    z = None if spiking is None else spike_statistic(spiking, window)
    decay_steps, spike_z = [], []
    for row, (events, w) in enumerate(zip(candidates, window.tolist(), strict=True)):
        ahead = log_rho[row, np.minimum(events[:, None] + 1 + np.arange(w), n - 1)].max(axis=1, initial=-np.inf)
        jump = ahead - log_rho[row, events]
        decay_steps.append(jump / decay_rate[row] if decay_rate[row] > 0 else np.full(events.size, np.nan))
        spike_z.append(np.full(events.size, np.nan) if z is None else np.nan_to_num(z[row, events], nan=-np.inf))
    return _Measures(window, decay_steps, spike_z)


def _detection(candidates: np.ndarray, found: _Measures, row: int, settings: DetectorSettings, signals) -> Detection:
    steps, z = found.decay_steps[row], found.spike_z[row]
    keep = np.ones(candidates.size, dtype=bool)
    if np.isfinite(steps).all():
        keep &= steps >= settings.min_decay_steps
    if len(signals) > 1:
        keep &= z >= settings.loss_z
    return Detection(candidates[keep], int(found.window[row]), signals, candidates, steps, z)


# --- periods and regimes --------------------------------------------------------------------------------------------


def _mean_period(events: np.ndarray) -> float:
    periods = period_lengths(events)
    return float(periods.mean()) if periods.size else math.nan


def _summarise(detection: Detection) -> tuple[np.ndarray, float, float, float, tuple[float, float]]:
    periods = period_lengths(detection.events).astype(float)
    period = float(periods.mean()) if periods.size else math.nan
    std = float(periods.std(ddof=1)) if periods.size >= 2 else math.nan
    return periods, period, std, 1 / period, frequency_interval(periods)


def _undetermined(reason: str, diverged: int | None) -> Periodicity:
    empty = np.zeros(0, dtype=np.int64)
    detection = Detection(empty, 0, (), empty, np.zeros(0), np.zeros(0))
    regime = "undetermined" if diverged is None else "diverged"
    evidence = {"rule": reason} | ({} if diverged is None else {"diverged_at": diverged})
    return Periodicity(detection, np.zeros(0), math.nan, math.nan, math.nan, (math.nan, math.nan), regime, evidence)


def analyze(
    series: dict,
    *,
    lr,
    wd,
    momentum=0.0,
    norm_control: NormControl = "free",
    settings=DEFAULT_SETTINGS,
    band=SENSITIVITY_BAND,
):
    """Destabilisations, periods and regime of one run or a batch, at ``settings`` and across ``band``.

    Parameters
    ----------
    series : dict of array_like, shape (n_steps,) or (n_configs, n_steps) each
        ``si_norm``, ``elr``, ``angular_update`` and ``loss`` (``None`` if there is none) per step, one row per run;
        ``eff_grad_norm`` optional (it stands in for a missing loss). Non-finite values from some step to the end
        are a divergence, and the finite part is analysed.
    lr, wd, momentum : float or array_like, shape (n_configs,)
        η applied to the SI weights, λ, β of each run.
    norm_control : {"free", "fixed_norm", "fixed_elr"}
        At a fixed norm the destabilisations are the loss's spikes (:func:`analysis.detection.find_spikes`).
    settings : DetectorSettings
    band : sequence of DetectorSettings
        Settings at which the number of events and the period are computed again (``()`` for none).

    Returns
    -------
    Periodicity, or a list of them for 2-D input

    Examples
    --------
    A sawtooth ρ that jumps back every 100 steps, the loss spiking with it:

    >>> import numpy as np
    >>> t = np.arange(600)
    >>> rho = 3.0 * np.exp(-0.01 * (t % 100))
    >>> loss = np.where(t % 100 < 3, 1.0, 1e-3) * (1 + 0.01 * np.sin(t))
    >>> series = {"si_norm": rho, "elr": 1 / rho**2, "angular_update": np.full(600, 0.01), "loss": loss}
    >>> found = analyze(series, lr=1.0, wd=0.005)
    >>> found.events.tolist(), found.period, found.regime
    ([99, 199, 299, 399, 499], 100.0, 'periodic')
    """
    one_d = np.ndim(series["si_norm"]) == 1
    arrays = {k: None if v is None else np.atleast_2d(np.asarray(v, dtype=np.float64)) for k, v in series.items()}
    rows, n = arrays["si_norm"].shape
    lr, wd, momentum = (np.broadcast_to(np.asarray(a, dtype=np.float64), (rows,)) for a in (lr, wd, momentum))
    screens = [screen({k: None if v is None else v[row] for k, v in arrays.items()}) for row in range(rows)]
    good = np.array([reason is None for _, reason, _ in screens], dtype=bool)
    lengths = np.array([length for length, _, _ in screens])
    # a divergent row is analysed up to its divergence: beyond it every series reads NaN
    past = np.arange(n)[None, :] >= lengths[:, None]
    rho = np.where(past, np.nan, arrays["si_norm"])
    spiking_name = next((name for name in ("loss", "eff_grad_norm") if arrays.get(name) is not None), None)
    spiking = None
    if spiking_name is not None:
        values = arrays[spiking_name]
        spiking = np.where(past | ~np.isfinite(values), 0.0, values)
    free = norm_control == "free"
    decay = np.where((wd > 0) & free, -np.log1p(-lr * wd) / (1 - momentum), 0.0)
    rise, candidates = np.full(rows, _START_WINDOW), [np.zeros(0, dtype=np.int64)] * rows
    log_rho = np.log(np.where(np.isfinite(rho) & (rho > 0), rho, np.nan))
    if free and good.any():
        _, rise[good], found = rise_times(rho[good])
        for row, events in zip(np.flatnonzero(good).tolist(), found, strict=True):
            candidates[row] = _visible_onsets(log_rho[row], events, 2 * rise[row])
    signals = ("si_norm",) if spiking_name is None else ("si_norm", spiking_name)
    cache: dict = {}

    def detect_all(at: DetectorSettings) -> list[Detection]:
        window = _windows(at, rise)
        key = (tuple(window.tolist()), at.loss_z if not free else None)
        if not free:
            if spiking is None:
                raise ValueError("a run at a fixed norm needs its loss (or ‖g̃‖): ρ cannot jump")
            if key not in cache:
                cache[key] = find_spikes(spiking, window, min_z=at.loss_z)
            return [
                Detection(e, int(w), (spiking_name,), e, np.full(e.size, np.nan), np.full(e.size, np.nan))
                for e, w in zip(cache[key], window, strict=True)
            ]
        if key not in cache:
            cache[key] = _measure(log_rho, spiking, decay, candidates, window)
        return [_detection(candidates[row], cache[key], row, at, signals) for row in range(rows)]

    chosen = detect_all(settings)
    in_band = {at.label(): detect_all(at) for at in band}
    results = []
    for row in range(rows):
        length, reason, diverged = screens[row]
        if reason is not None:
            results.append(_undetermined(reason, diverged))
            continue
        detection = chosen[row]
        periods, period, std, frequency, ci = _summarise(detection)
        if diverged is not None:
            regime, evidence = "diverged", {"diverged_at": diverged, "rule": "non-finite loss or ρ from there on"}
        else:
            part = {k: arrays[k][row, :length] for k in ("loss", "elr", "angular_update") if arrays.get(k) is not None}
            regime, evidence = classify(
                part, detection.events, lr=lr[row], wd=wd[row], momentum=momentum[row], norm_control=norm_control
            )
        found = {label: (int(d[row].events.size), _mean_period(d[row].events)) for label, d in in_band.items()}
        results.append(Periodicity(detection, periods, period, std, frequency, ci, regime, evidence, found))
    return results[0] if one_d else results


def agreement(a, b, tolerance: float) -> float:
    """Share of events two detections both found: pairs matched within ``tolerance`` samples (each event at most
    once, greedily in time) over the mean of their counts; 1 for two empty detections."""
    a, b = np.sort(np.asarray(a)), np.sort(np.asarray(b))
    if a.size + b.size == 0:
        return 1.0
    matched, j = 0, 0
    for event in a:
        while j < b.size and b[j] < event - tolerance:
            j += 1
        if j < b.size and abs(b[j] - event) <= tolerance:
            matched, j = matched + 1, j + 1
    return 2 * matched / (a.size + b.size)
