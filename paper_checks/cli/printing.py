"""The numbers the commands print: one formatter, and the lines that report periods and slopes."""

from __future__ import annotations

import math

__all__ = ["band_text", "fmt", "slope_text"]


def fmt(value, width: int = 9, spec: str = ".1f") -> str:
    """``value`` formatted by ``spec`` and right-aligned in ``width``; ``—`` for None and non-finite values."""
    text = "—" if value is None or not math.isfinite(value) else format(value, spec)
    return f"{text:>{width}}"


def band_text(row: dict) -> str:
    """The mean period's min–max over the detector's sensitivity band, e.g. ``98.2–143.1``."""
    return f"{fmt(row['period_band_low'], 0)}–{fmt(row['period_band_high'], 0)}"


def slope_text(fit: dict, what: str, a_priori: float | None = None) -> str:
    """One line: the slope of log frequency against log ηλ, its interval, its range over the detector's band, and
    what theory expects: 1 by the period law, and ``a_priori`` (:func:`analysis.summary.a_priori_slope`) if given."""
    low, high = fit["slope_ci"]
    expected = "the period law: 1" + ("" if a_priori is None else f"; a priori: {fmt(a_priori, 0, '.3f')}")
    return (
        f"slope of log frequency vs log ηλ: {fmt(fit['slope'], 0, '.3f')} (95% CI {fmt(low, 0, '.3f')} … "
        f"{fmt(high, 0, '.3f')}; {fmt(fit['slope_band_low'], 0, '.3f')} … {fmt(fit['slope_band_high'], 0, '.3f')} "
        f"over the detector's band; {fit['n_points']} periodic {what}; {expected})"
    )
