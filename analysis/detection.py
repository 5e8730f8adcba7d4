"""The per-signal building blocks of destabilisation detection: what each finds in one series.

What counts as a destabilisation of a run, which combines these signals, is defined in
:mod:`analysis.destabilization`; this module finds one kind of event in one series, as scipy's ``find_peaks`` sits
beside ``peak_prominences``. A destabilisation of scale-invariant training with weight decay shows at once in four
series: the norm ρ of the scale-invariant weights jumps up, the effective learning rate η̃ = η/ρ² drops, and the
loss and the effective-gradient norm ‖g̃‖ spike. The same code serves simulated and measured runs.

- :func:`find_jumps`: the jumps of ρ (or drops of η̃), rises of ``±ln x`` out of the series' own noise;
- :func:`spike_statistic` and :func:`find_spikes`: the spikes of a loss or ‖g̃‖, the only loss-spike detector;
- :func:`period_lengths` and :func:`frequency_interval`: the periods between events and the frequency's interval;
- :func:`robust_location_scale`: the median and 1.4826·MAD every noise estimate here rests on.

Algorithm of :func:`find_jumps`, per row:

1. ``y = ±log x`` (``+`` for ρ, ``−`` for η̃); the row ends at its first non-finite value.
2. Trend: the median first difference is subtracted as a linear trend (weight decay makes log ρ and log η̃ fall
   linearly between events), so a steady rise never looks like an event, nor does a steady fall hide one.
3. ``R[i] = max(y[i+1 : i+window+1]) − max(y[i-2 : i+1])``: the largest rise within ``window`` samples above the
   current level (the highest of the last three samples, so that a recovery from a dip is no rise).
4. Threshold ``median(R) + 6·1.4826·MAD(R)``, the upper tail of the robust null distribution of the rise (it
   adapts to white and to random-walk noise alike), estimated again without the samples near the events of a
   first pass at 4 instead of 6, and never below ``log(1.05)`` (``2·log(1.05)`` for η̃, so that η̃ = η/ρ² and ρ give
   the same events); or ``min_jump`` when given. For white noise of σ on ``y`` it is ≈ 6.3σ.
5. Flagged samples less than ``min_separation`` apart form one event. Its index is the last sample before the
   rise: the rise is the first sample that exceeds the running minimum by the threshold, and the event the last
   earlier sample within a noise band (2 σ of the first differences, by MAD) of the baseline (the median of the
   ``window + 1`` samples up to the run's first flagged sample). A rise within the first ``window`` samples is the
   growth from initialisation, not an event.

Its accuracy on synthetic series with known events is asserted by ``tests/test_detection.py`` (hypothesis) and
measured at scale by ``benchmarks/detection_band.py`` (``docs/results.md``). Limits: events filling more than about
a third of the samples inflate the noise estimate, so small ones can be missed (pass ``min_jump``); ``window`` must
cover the duration of a rise: per-epoch records need the default, per-step records of SGD, whose jumps last tens
to hundreds of steps, need a matching one.

Example
-------
>>> import numpy as np
>>> t = np.arange(300)
>>> rho = np.exp(-0.01 * (t % 100)) * 3.0  # weight decay shrinks ρ; every 100 steps it jumps back
>>> find_jumps(rho).tolist()
[99, 199]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.ndimage import maximum_filter1d

__all__ = [
    "DEFAULT_WINDOW",
    "JUMP_KINDS",
    "MAD_TO_SIGMA",
    "MIN_JUMP_FLOOR",
    "JumpKind",
    "find_jumps",
    "find_spikes",
    "frequency_interval",
    "period_lengths",
    "robust_location_scale",
    "spike_statistic",
]

JumpKind = Literal["si_norm", "elr"]
JUMP_KINDS: tuple[JumpKind, ...] = ("si_norm", "elr")
_DIRECTION = {"si_norm": 1.0, "elr": -1.0}  # a destabilisation moves ρ up and η̃ down

DEFAULT_WINDOW = 5
MIN_JUMP_FLOOR = float(np.log(1.05))
MAD_TO_SIGMA = 1.4826
"""The standard deviation of a normal distribution over its median absolute deviation."""
_NOISE_Z = 6.0
_BAND_Z = 2.0
_EXCLUDE_Z = 4.0
_RELATIVE_FLOOR = 1e-8
_BEHIND = 3


def _as_series(series, kind: str) -> tuple[np.ndarray, bool]:
    """Validate ``series`` for ``kind``; return it as float64 (n_configs, n_steps) and whether it was 1-D."""
    if kind not in _DIRECTION:
        raise ValueError(f"kind must be one of {JUMP_KINDS}; got {kind!r}")
    try:
        x = np.asarray(series, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"series must be a real 1-D or 2-D array; got {type(series).__name__}") from None
    if x.ndim not in (1, 2):
        raise ValueError(f"series must be 1-D (n_steps,) or 2-D (n_configs, n_steps); got shape {x.shape}")
    bad = x <= 0
    if bad.any():
        raise ValueError(f"{kind} must be > 0 (its log is taken); got {x[bad].flat[0].item()!r}")
    return np.atleast_2d(x), x.ndim == 1


def _finite_length(x: np.ndarray) -> np.ndarray:
    """Per row, the index of the first non-finite value (the row length when there is none)."""
    nonfinite = ~np.isfinite(x)
    return np.where(nonfinite.any(axis=1), nonfinite.argmax(axis=1), x.shape[1])


def _masked_median(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Median of each row of ``a`` over its ``valid`` entries (0 for a row with none)."""
    if valid.all():
        return np.median(a, axis=1)
    count = valid.sum(axis=1)
    ordered = np.sort(np.where(valid, a, np.inf), axis=1)
    middle = np.stack([np.maximum(count - 1, 0) // 2, np.minimum(count // 2, a.shape[1] - 1)], axis=1)
    return np.where(count > 0, np.take_along_axis(ordered, middle, axis=1).mean(axis=1), 0.0)


def robust_location_scale(a, valid=None) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the median and the MAD-based standard deviation ``1.4826·median|a − median(a)|``: the location and
    scale of a row's noise, untouched by the few large values that are the events.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n)
    valid : ndarray of bool, shape (n_rows, n), optional
        The entries that count (all by default); a row with none gives 0.

    Returns
    -------
    (ndarray, ndarray), shape (n_rows,) each
    """
    valid = np.ones(np.shape(a), dtype=bool) if valid is None else valid
    centre = _masked_median(a, valid)
    return centre, MAD_TO_SIGMA * _masked_median(np.abs(a - centre[:, None]), valid)


def _last_true(mask: np.ndarray) -> np.ndarray:
    """Per row, the index of the last True entry (−1 for a row with none)."""
    last = mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
    return np.where(mask.any(axis=1), last, -1)


def _flagged_runs(flagged: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group True entries of each row closer than ``gap`` samples into runs; return (row, first, last) per run."""
    rows, cols = np.nonzero(flagged)
    if rows.size == 0:
        return rows, cols, cols
    new = np.ones(rows.size, dtype=bool)
    new[1:] = (rows[1:] != rows[:-1]) | (cols[1:] - cols[:-1] >= gap)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], rows.size) - 1
    return rows[starts], cols[starts], cols[ends]


def _onsets(y, threshold, band, rows, first, last, window: int, n_valid) -> np.ndarray:
    """Locate the start of the rise of each flagged run (``rows``, ``first``, ``last``) of ``y``.

    The rise is searched in ``[first, last + window]``, which holds the rise that flagged the run: it is the first
    sample that exceeds the running minimum by ``threshold``. The onset is the last earlier sample within ``band``
    of the baseline, the median of the ``window + 1`` samples up to ``first``.
    """
    # Runs are padded to the longest of their group: grouped by length (powers of 2), one long run of flags (a
    # noisy stretch) does not make every short one pay for its length.
    lengths = last - first
    groups = np.ceil(np.log2(lengths + 2)).astype(int)
    if np.unique(groups).size > 1:
        onsets = np.empty_like(first)
        for group in np.unique(groups):
            members = groups == group
            onsets[members] = _onsets(y, threshold, band, rows[members], first[members], last[members], window, n_valid)
        return onsets
    span = np.arange(lengths.max(initial=0) + window + 1)
    idx = first[:, None] + span
    inside = idx <= np.minimum(last + window, n_valid[rows] - 1)[:, None]
    level = np.where(inside, y[rows[:, None], np.minimum(idx, y.shape[1] - 1)], np.inf)
    crossed = (level - np.minimum.accumulate(level, axis=1) > threshold[rows, None]).argmax(axis=1)
    before = y[rows[:, None], np.maximum(first[:, None] - np.arange(window + 1), 0)]
    near_base = (span < crossed[:, None]) & (level <= (np.median(before, axis=1) + band[rows])[:, None])
    return first + _last_true(near_base)


def find_jumps(series, kind: JumpKind = "si_norm", *, min_jump=None, window=None, min_separation=None):
    """Indices of the jumps of ρ (or drops of η̃) in a logged series (the module docstring has the algorithm).

    Parameters
    ----------
    series : array_like, shape (n_steps,) or (n_configs, n_steps)
        One series of the given ``kind`` per row, sampled at equal intervals, > 0; NaN or ±inf ends the row (a
        divergence).
    kind : {"si_norm", "elr"}
        What the series is; a destabilisation moves it up and down respectively.
    min_jump : float, optional
        Smallest event, as a rise of the natural log of the series (``log(1.5)``: ρ × 1.5, or η̃ / 1.5); it
        replaces the threshold derived from the noise of each row, which is at least ``log(1.05)`` (for η̃:
        ``2·log(1.05)``, the same ρ × 1.05, so that η̃ = η/ρ² and ρ give the same events).
    window : int, optional
        Samples over which one jump may spread (default 5).
    min_separation : int, optional
        Flagged samples closer than this belong to one event (default ``2 * window``); it bounds the shortest
        period that can be resolved.

    Returns
    -------
    ndarray of int64 or list of them
        For 1-D input, the sorted event indices, each the last sample before the rise; for 2-D input, a list with
        one such array per row.
    """
    x, one_d = _as_series(series, kind)
    window = DEFAULT_WINDOW if window is None else _positive_int(window, "window")
    gap = 2 * window if min_separation is None else _positive_int(min_separation, "min_separation")
    if min_jump is not None and not (np.isfinite(min_jump) and min_jump > 0):
        raise ValueError(f"min_jump must be finite and > 0 (a rise of the natural log); got {min_jump!r}")
    n_rows, n = x.shape
    if n < 2 or n_rows == 0:
        empty = [np.zeros(0, dtype=np.int64) for _ in range(n_rows)]
        return empty[0] if one_d else empty
    n_valid = _finite_length(x)
    steps = np.arange(n)
    valid = steps < n_valid[:, None]
    y = _DIRECTION[kind] * np.log(x if valid.all() else np.where(valid, x, 1.0))

    pairs = valid[:, 1:] & valid[:, :-1]
    diffs = np.diff(y, axis=1)
    drift, diff_sigma = robust_location_scale(diffs, pairs)
    y = y - drift[:, None] * steps
    # Held at the last finite value, the tail of a divergent row cannot rise.
    y = np.where(valid, y, np.take_along_axis(y, np.maximum(n_valid - 1, 0)[:, None], axis=1))

    # Measured from the highest of the last three samples, a recovery from a downward outlier (a log series of a
    # quantity that can approach 0 has them) is no rise.
    ahead = maximum_filter1d(y, size=window, axis=1, mode="nearest", origin=-(window // 2))
    behind = maximum_filter1d(y, size=_BEHIND, axis=1, mode="nearest", origin=(_BEHIND - 1) // 2)
    rise = ahead[:, 1:] - behind[:, :-1]
    if min_jump is None:
        # log η̃ moves twice as far as log ρ: with the floor doubled too, η̃ and ρ give the same events.
        floor = MIN_JUMP_FLOOR * (2.0 if kind == "elr" else 1.0)
        # The rises of frequent events would widen the null distribution: estimate it again without the samples
        # near those of a first pass at a lower bar.
        centre, spread = robust_location_scale(rise, pairs)
        first_pass = np.maximum(centre + _EXCLUDE_Z * spread, floor)
        near = maximum_filter1d(rise > first_pass[:, None], size=3 * window, axis=1, mode="constant")
        centre, spread = robust_location_scale(rise, pairs & ~near)
        threshold = np.maximum(centre + _NOISE_Z * spread, floor)
    else:
        threshold = np.full(n_rows, float(min_jump))
    flagged = pairs & (rise > threshold[:, None])
    flagged[:, : _BEHIND - 1] = False  # no full reference level yet
    run_rows, first, last = _flagged_runs(flagged, gap)

    band = np.maximum(_BAND_Z * diff_sigma, 0.01 * threshold)
    events = _onsets(y, threshold, band, run_rows, first, last, window, n_valid)

    # Two runs just over min_separation apart can still locate their onsets closer than that. A rise within the
    # first `window` samples has no baseline before it: it is the growth from initialisation.
    keep = events >= window
    keep[1:] &= (run_rows[1:] != run_rows[:-1]) | (events[1:] - events[:-1] >= gap)
    run_rows, events = run_rows[keep], events[keep].astype(np.int64)
    per_row = np.split(events, np.searchsorted(run_rows, np.arange(1, n_rows)))
    return per_row[0] if one_d else per_row


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def _log_floored(values: np.ndarray) -> np.ndarray:
    """ln of a loss or ‖g̃‖ per row, a 0 floored at the row's smallest positive value (and at 1e-8 of its peak:
    relative changes below that are numerical dust, as an instability grows through tens of orders of magnitude
    before it shows)."""
    positive = np.where(values > 0, values, np.inf).min(axis=1, keepdims=True, initial=np.inf)
    floor = np.maximum(positive, _RELATIVE_FLOOR * values.max(axis=1, keepdims=True, initial=0.0))
    return np.log(np.maximum(values, np.where(np.isfinite(floor) & (floor > 0), floor, 1.0)))


def _as_spiking(signal, window) -> tuple[np.ndarray, np.ndarray, bool]:
    """``signal`` as float64 rows and ``window`` as one int per row, and whether the signal was 1-D."""
    values = np.asarray(signal, dtype=np.float64)
    if values.ndim not in (1, 2) or (values < 0).any():
        raise ValueError(f"signal must be a 1-D or 2-D array of values >= 0; got shape {values.shape}")
    rows = np.atleast_2d(values)
    return rows, np.broadcast_to(np.asarray(window, dtype=int), (rows.shape[0],)), values.ndim == 1


def _spike_z(log_signal: np.ndarray, window: np.ndarray) -> np.ndarray:
    rows, n = log_signal.shape
    if n < 2:  # no step-to-step noise to measure (a run that diverged at its first step)
        return np.full((rows, n), np.nan)
    _, sigma = robust_location_scale(np.diff(log_signal, axis=1))
    sigma = sigma / np.sqrt(2)
    total = np.concatenate([np.zeros((rows, 1)), np.cumsum(log_signal, axis=1)], axis=1)
    t = np.arange(n)
    w = window[:, None]
    after = np.take_along_axis(total, np.minimum(t + w, n), axis=1) - total[:, :n]
    before = total[:, :n] - np.take_along_axis(total, np.maximum(t - w, 0), axis=1)
    z = (after - before) / w / (np.maximum(sigma, 1e-300)[:, None] * np.sqrt(2 / w))
    return np.where((t - w >= 0) & (t + w <= n), z, np.nan)


def spike_statistic(signal, window):
    """The significance of a spike starting at each sample: ``(mean ln x[t, t+W) − mean ln x[t−W, t)) / (σ·√(2/W))``,
    σ the row's step-to-step noise of ln x (1.4826·MAD/√2 of its first differences).

    Parameters
    ----------
    signal : array_like, shape (n_steps,) or (n_configs, n_steps)
        A loss or ‖g̃‖ per step, ≥ 0 and finite (a 0 is floored at the row's smallest positive value).
    window : int or array_like of int, shape (n_configs,)
        W per row.

    Returns
    -------
    ndarray, the shape of ``signal``
        NaN where a window does not fit.
    """
    rows, window, one_d = _as_spiking(signal, window)
    z = _spike_z(_log_floored(rows), window)
    return z[0] if one_d else z


def find_spikes(signal, window, *, min_z: float = 5.0, min_jump: float | None = None):
    """The spikes of a loss or ‖g̃‖: the samples where :func:`spike_statistic` peaks above ``min_z``, peaks at least
    2W apart (each the first sample of its spike, the convention of :func:`find_jumps`).

    Parameters
    ----------
    signal : array_like, shape (n_steps,) or (n_configs, n_steps)
        As :func:`spike_statistic`.
    window : int or array_like of int, shape (n_configs,)
        W per row.
    min_z : float
        The smallest significance, in standard errors of the signal's own noise.
    min_jump : float, optional
        The smallest size, ``max ln x[t, t+W) − mean ln x[t−W, t)``: a spike must also reach ``exp(min_jump)``
        times the level before it. Without it, a signal with no step-to-step noise (σ = 0, as a smooth decay held
        at its floor) turns the rounding of the windows' sums into significance and can give a "spike": pass a
        size for such signals.

    Returns
    -------
    ndarray of int64, or a list of them for 2-D input
    """
    rows, window, one_d = _as_spiking(signal, window)
    log_signal = _log_floored(rows)
    z = _spike_z(log_signal, window)
    flagged = np.nan_to_num(z, nan=-np.inf) >= min_z
    found = []
    for row, w in enumerate(window.tolist()):
        hits = np.flatnonzero(flagged[row])
        groups = np.split(hits, np.flatnonzero(np.diff(hits) >= 2 * w) + 1) if hits.size else []
        peaks = np.array([g[np.argmax(z[row, g])] for g in groups], dtype=np.int64)
        if min_jump is not None:
            size = [log_signal[row, t : t + w].max() - log_signal[row, t - w : t].mean() for t in peaks.tolist()]
            peaks = peaks[np.asarray(size, dtype=float) >= min_jump]
        found.append(peaks)
    return found[0] if one_d else found


def period_lengths(events, *, discard_transient: bool = True) -> np.ndarray:
    """Lengths of the periods between consecutive events.

    The time before the first event is never a period. The first inter-event interval often is a transient
    (training from initialisation); with ``discard_transient`` it is dropped when it is an outlier among the
    others: when it differs from their median ``m`` by more than ``max(0.5·m, 3·1.4826·MAD)``. With fewer than
    two intervals nothing is dropped.

    Parameters
    ----------
    events : array_like, shape (n_events,)
        Strictly increasing event indices (or times).
    discard_transient : bool
        Apply the outlier rule to the first interval.

    Returns
    -------
    ndarray, shape (n_events - 1,) or (n_events - 2,)
        The intervals, in the units of ``events`` (samples for the output of :func:`find_jumps` or :func:`find_spikes`).
    """
    events = np.asarray(events)
    if events.ndim != 1 or not np.issubdtype(events.dtype, np.number) or not np.isfinite(events).all():
        raise ValueError(f"events must be a 1-D array of finite numbers; got shape {events.shape}")
    periods = np.diff(events)
    if (periods <= 0).any():
        raise ValueError("events must be strictly increasing")
    if discard_transient and periods.size >= 2:
        others = periods[1:]
        (median,), (sigma,) = robust_location_scale(others[None, :])
        if abs(periods[0] - median) > max(0.5 * median, 3.0 * sigma):
            return others
    return periods


def frequency_interval(periods, *, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0):
    """Percentile-bootstrap confidence interval of the frequency ``1/mean(periods)``.

    Parameters
    ----------
    periods : array_like, shape (n_periods,)
        Period lengths > 0.
    confidence : float
        Coverage in (0, 1).
    n_boot : int
        Bootstrap resamples (≥ 1), all drawn at once from ``np.random.default_rng(seed)``.
    seed : int
        Seed of the resampling, so the interval is reproducible.

    Returns
    -------
    tuple of float
        ``(low, high)`` in events per unit of ``periods``; ``(nan, nan)`` for fewer than 2 periods.
    """
    periods = np.asarray(periods, dtype=np.float64)
    if periods.ndim != 1 or not (np.isfinite(periods) & (periods > 0)).all():
        raise ValueError("periods must be a 1-D array of finite numbers > 0")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence!r}")
    n_boot = _positive_int(n_boot, "n_boot")
    if periods.size < 2:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    means = periods[rng.integers(0, periods.size, size=(n_boot, periods.size))].mean(axis=1)
    alpha = 1 - confidence
    low, high = np.quantile(1 / means, [alpha / 2, 1 - alpha / 2])
    return (float(low), float(high))
