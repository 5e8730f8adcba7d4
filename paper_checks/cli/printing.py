"""The numbers the commands print: one formatter, and the lines that report periods, slopes and the early
warning."""

from __future__ import annotations

import math

__all__ = [
    "REACTIVE_NAMES",
    "band_text",
    "clock_versus_warning",
    "early_warning_lines",
    "fmt",
    "horizons_text",
    "slope_text",
    "targets_text",
    "unscored_reason",
]

REACTIVE_NAMES = {
    "olmo_core": "OLMo-core",
    "llm_foundry": "llm-foundry",
    "lightning": "Lightning",
    "megatron": "Megatron-LM",
}
"""The reactive detectors (:data:`analysis.early_warning.REACTIVE_RULES`) by the names of the projects they come
from."""
_FRACTION_WORDS = {0.125: "an eighth", 0.25: "a quarter", 0.5: "half"}  # the horizons of HORIZON_BAND


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


def unscored_reason(row: dict) -> str:
    """Why the summary ``row`` has no early-warning score (its ``early_warning`` is None): the conditions of
    :func:`analysis.summary.summarize_run` and :func:`analysis.early_warning.score_run`, in their order."""
    from bnwd import theory  # here, not at the top: `bnwd train --help` loads no numpy
    from bnwd.analysis.early_warning import MIN_HISTORY

    held = {
        "fixed_norm": "ρ is held fixed: η̃ does not grow toward a threshold",
        "fixed_elr": "η̃ is held fixed: it does not grow toward a threshold",
    }
    if row["norm_control"] in held:
        return held[row["norm_control"]]
    if row["wd"] == 0:
        return "λ = 0: η̃ does not grow toward a threshold"
    if not theory.monotone_decay(row["lr_effective"], row["wd"], row["momentum"]):
        return "ηλ > (1 − √β)²: the norm's decay oscillates"
    n = row["n_destabilizations"]
    return (
        f"{n} destabilisation{'' if n == 1 else 's'}, fewer than {MIN_HISTORY + 1}: {MIN_HISTORY} to learn the "
        "threshold from, then one to warn of"
    )


def clock_versus_warning(horizon: dict) -> str:
    """``0.19 vs 0.37``: the F1 of the clock at matched precision against the warning's, at one horizon (an entry
    of ``early_warning["by_horizon"]``); where none of the clock's fractions reaches the warning's precision, the
    most precise one's, marked (the targets compare with its F1 all the same)."""
    clock = horizon["clock"]
    mark = "" if clock["precision_matched"] else " (the most precise clock: none reaches the warning's precision)"
    return f"{fmt(clock['f1'], 0, '.2f')}{mark} vs {fmt(horizon['warning']['f1'], 0, '.2f')}"


def early_warning_lines(row: dict) -> list[str]:
    """What a command prints of the early warning of the summary ``row`` (``row["early_warning"]``,
    :func:`analysis.early_warning.score_run`): at the default horizon, the destabilisations warned, the median lead,
    the precision, the false alarms, the clock's F1 at matched precision against the warning's, and what the
    reactive detectors on the loss warn ahead and detect; then the verdict against the targets over the horizon
    band with the numbers at each horizon. One line saying why where the run has no score."""
    from bnwd.analysis.early_warning import HORIZON_FRACTION

    report = row["early_warning"]
    if report is None:
        return [f"early warning: not scored ({unscored_reason(row)})"]
    at = report["by_horizon"][f"{HORIZON_FRACTION:g}"]
    warning = at["warning"]
    lead = "no lead" if not warning["n_warned"] else f"median lead {warning['median_lead']:g} steps"
    first = (
        f"early warning (a destabilisation within {warning['horizon']} steps, {horizons_text([HORIZON_FRACTION])}, "
        f"and ≥{warning['min_lead']} ahead): {warning['n_warned']} of {warning['n_destabilizations']} "
        f"warned, {lead}, precision {fmt(warning['precision'], 0, '.2f')}, "
        f"{fmt(warning['false_alarms_per_1000'], 0, '.1f')} false alarms per 1000 steps; the clock at matched "
        f"precision vs the warning: F1 {clock_versus_warning(at)}"
    )
    if report["reactive"]:
        first += "; " + _reactive_text(report["reactive"], warning["min_lead"])
    return [first, _verdict_line(report)]


def _verdict_line(report: dict) -> str:
    """The verdict of the early-warning ``report`` against its targets over the horizon band, with the warning's
    recall, precision and F1 and the clock's F1 at each horizon."""
    horizons = report["by_horizon"]
    outcome = {
        "meets": "meets them at every one",
        "misses": "misses them at every one",
        "fragile": "fragile (meets them at some, misses them at others)",
    }[report["verdict"]]

    def at_each(who: str, key: str) -> str:
        return " / ".join(fmt(h[who][key], 0, ".2f") for h in horizons.values())

    return (
        f"  verdict against the targets ({targets_text(report['targets'])}) over horizons of "
        f"{horizons_text(float(key) for key in horizons)}: {outcome}; recall {at_each('warning', 'recall')}, "
        f"precision {at_each('warning', 'precision')}, F1 {at_each('warning', 'f1')} vs the clock's "
        f"{at_each('clock', 'f1')}"
    )


def targets_text(targets: dict) -> str:
    """The early warning's ``targets`` (:data:`analysis.early_warning.TARGETS`) in words."""
    return (
        f"recall ≥ {targets['recall']:g}, precision ≥ {targets['precision']:g}, F1 ≥ the clock's + "
        f"{targets['f1_over_clock']:g}"
    )


def horizons_text(fractions) -> str:
    """Horizons as ``fractions`` of a period in words: ``an eighth, a quarter and half of a period``."""
    words = [_FRACTION_WORDS.get(f, f"{f:g}") for f in fractions]
    listed = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
    return f"{listed} of a period"


def _reactive_text(reactive: dict, min_lead: int) -> str:
    """What the reactive detectors warn at least ``min_lead`` steps ahead, and what share of the destabilisations
    each detects by the rise time after them (their scores' negative ``min_lead``)."""
    ahead = {
        rule: sum(lead is not None and lead >= min_lead for lead in score["lead"]) for rule, score in reactive.items()
    }
    some = next(iter(reactive.values()))  # every detector is scored on the same destabilisations and window
    n, rise_time = some["n_destabilizations"], -some["min_lead"]
    warned = ", ".join(f"{REACTIVE_NAMES.get(rule, rule)} {k} of {n}" for rule, k in ahead.items() if k)
    detected = ", ".join(
        f"{REACTIVE_NAMES.get(rule, rule)} {fmt(s['recall'], 0, '.0%')}" for rule, s in reactive.items()
    )
    return (
        f"reactive detectors on the loss warn {f'ahead: {warned}' if warned else 'none ahead'} (detected by the rise "
        f"time, {rise_time} steps after: {detected})"
    )
