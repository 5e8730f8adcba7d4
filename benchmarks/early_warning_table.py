"""The early warning of the next destabilisation scored on finished runs (:mod:`analysis.early_warning`), one row per
run: destabilisations scored, warned at least 5 steps ahead, median lead, false alarms per 1000 steps, precision, F1;
the clock at matched precision; the reactive detectors; a control that must fail (the warning's alarms moved to random
steps); the scatter of η̃ at the destabilisations against the periods' and how long η̃ waits near it; how often the
loss, ‖g̃‖ and the gradient cosine are out of their noise 5 and 2 steps before a destabilisation; and how much any
warning built on the per-step signals could reach.

    .venv/bin/bnwd train --out runs/ew/a --lr 1 --wd 0.01 --steps 5000 --eval-points 2    # and so on
    .venv/bin/python benchmarks/early_warning_table.py runs/ew/* [--out FILE]

The last column is a ceiling, not a warning: a gradient-boosted classifier, cross-validated over periods (5 folds,
whole periods held out; none with fewer than 3 periods), told each destabilisation at its step, separates the steps
inside a warning's window (the next destabilisation 5 … horizon steps ahead) from the others on the causal per-step
signals (steps since the last destabilisation, ln η̃ and its rise since the period's start, moving averages of ln
loss, ln ‖g̃‖ and the gradient cosine). Its ROC AUC and average precision (against the window's base rate) say how
much the signals hold.

Writes ``benchmarks/results/early_warning_table.json`` (``_results``): one row per run, ordered by full batch, then
ηλ; the last numbers are on ``docs/results.md``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from _results import add_out_option, write_results
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import GroupKFold

from bnwd import theory
from bnwd.analysis.early_warning import (
    HORIZON_FRACTION,
    MIN_LEAD,
    EarlyWarning,
    band_warnings,
    score_alarms,
    score_run,
)
from bnwd.empirical.runs import read_run

CONTROL_SEED = 0


def _moving_average(x: np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average with ``weight`` on the newest value, NaNs skipped (causal)."""
    out, mean = np.empty_like(x), x[np.isfinite(x)][0] if np.isfinite(x).any() else 0.0
    for i, value in enumerate(x):
        mean = weight * value + (1 - weight) * mean if np.isfinite(value) else mean
        out[i] = mean
    return out


def signal_ceiling(series: dict, events: np.ndarray, horizon: int) -> tuple[float, float, float]:
    """ROC AUC, average precision and base rate of the cross-validated classifier of the module docstring."""
    n = series["elr"].size
    steps = np.arange(n)
    last = np.searchsorted(events, steps, side="right") - 1
    ln_elr = np.log(series["elr"])
    start = np.array([ln_elr[events[k] : t + 1].min() if k >= 0 else np.nan for t, k in enumerate(last)])
    ln_loss, ln_grad = np.log(series["loss"]), np.log(series["eff_grad_norm"])
    cosine = np.nan_to_num(series["grad_cosine"])
    features = np.column_stack(
        [steps - events[np.maximum(last, 0)], ln_elr - start, ln_elr]
        + [_moving_average(x, w) for x in (ln_loss, ln_grad, cosine) for w in (0.5, 0.1, 0.02)]
    )
    following = np.searchsorted(events, steps + MIN_LEAD)
    inside = (following < events.size) & (events[np.minimum(following, events.size - 1)] <= steps + horizon)
    kept = (steps > events[0]) & (steps < events[-1]) & np.isfinite(features).all(axis=1)
    x, y, periods = features[kept], inside[kept], last[kept]
    folds = min(5, np.unique(periods).size)
    if folds < 3:
        return (np.nan, np.nan, float(y.mean()))
    predicted = np.zeros(y.size)
    for train, test in GroupKFold(folds).split(x, y, periods):
        model = HistGradientBoostingClassifier(max_iter=100, max_depth=3, random_state=0).fit(x[train], y[train])
        predicted[test] = model.predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, predicted)), float(average_precision_score(y, predicted)), float(y.mean())


def signals_out_of_noise(series: dict, events: np.ndarray, leads=(MIN_LEAD, 2)) -> dict:
    """Per signal (ln loss, ln ‖g̃‖ up; the gradient cosine down) and lead L: the fraction of destabilisations (from
    the second) at which the signal, L steps before, is more than 3 robust standard deviations (1.4826·MAD) beyond
    its median over the middle of the period before it (60 % … 35 % of the mean period ahead)."""
    period = float(np.mean(np.diff(events)))
    signals = {
        "loss": np.log(series["loss"]),
        "eff_grad_norm": np.log(series["eff_grad_norm"]),
        "grad_cosine": -series["grad_cosine"],
    }
    out = {}
    for name, x in signals.items():
        kept = [e for e in events[1:] if e - 0.6 * period >= 0]
        for lead in leads:
            beyond = []
            for e in kept:
                calm = x[int(e - 0.6 * period) : int(e - 0.35 * period)]
                centre = np.nanmedian(calm)
                scale = 1.4826 * np.nanmedian(np.abs(calm - centre))
                beyond.append((x[e - lead] - centre) > 3 * scale)
            out[f"{name}_out_of_noise_at_lead_{lead}"] = float(np.mean(beyond)) if beyond else np.nan
    return out


def steps_near(ln_elr: np.ndarray, events: np.ndarray, within: float = 0.1) -> float:
    """Median over the periods of the steps from η̃ first coming within ``within`` (in ln) of the η̃ at the
    destabilisation that ends the period to that destabilisation: a few steps of pure decay where η̃ runs into its
    threshold, many where it waits near it."""
    waits = []
    for start, event in itertools.pairwise(events):
        period = ln_elr[start + 1 : event + 1]
        waits.append(period.size - 1 - int(np.argmax(period >= ln_elr[event] - within)))
    return float(np.median(waits))


def seen_online(steps, elr, lr: float, wd: float, momentum: float) -> int:
    """How many destabilisations :class:`analysis.early_warning.EarlyWarning` sees online in the run."""
    warner = EarlyWarning()
    for step, value in zip(steps.tolist(), elr.tolist(), strict=True):
        warner.update(step, value, lr, wd, momentum)
    return len(warner.peaks)


def row(folder: Path) -> dict:
    """The early warning's scores on the finished run in ``folder``."""
    run = read_run(folder)
    summary, config = run.summary, run.config
    lr, wd, momentum = summary["lr_effective"], summary["wd"], summary["momentum"]
    events = np.searchsorted(run.steps, summary["events"])
    n = run.steps.size
    warnings = band_warnings(run.steps, run.series["elr"], lr, wd, momentum)
    report = score_run(warnings, events, n, loss=run.series["loss"], rise_time=summary["detection_window"])
    base = {
        "run": folder.name,
        "data": config.get("data", "?"),
        "full_batch": bool(config.get("full_batch", False)),
        "lr": lr,
        "wd": wd,
        "momentum": momentum,
        "lr_wd": lr * wd,
        "period": summary["period_measured"],
        "destabilizations": int(events.size),
        # how much the η̃ of a destabilisation scatters, in steps of η̃'s growth, beside the periods' scatter
        "elr_at_destabilization_sd_steps": float(
            np.std(np.log(run.series["elr"][events[1:]])) / (-2 * np.log(theory.norm_decay_factor(lr, wd, momentum)))
        ),
        "period_sd": float(np.std(np.diff(events))),
        "steps_near_elr_at_destabilization": steps_near(np.log(run.series["elr"]), events),
        "destabilizations_seen_online": seen_online(run.steps, run.series["elr"], lr, wd, momentum),
    }
    if report is None:
        return base | {"verdict": "too few destabilisations"}
    score, clock = report.warning[HORIZON_FRACTION], report.clock[HORIZON_FRACTION]
    rng = np.random.default_rng(CONTROL_SEED)
    start = int(events[0]) + 1
    moved = np.sort(rng.choice(np.arange(start, n), size=min(score.n_alarms, n - start), replace=False))
    control = score_alarms(moved, events, n, horizon=score.horizon)
    series = {k: np.asarray(v, dtype=float) for k, v in run.series.items() if v is not None}
    series["grad_cosine"] = np.array([r.get("grad_cosine", np.nan) for r in run.records], dtype=float)
    auc, average_precision, base_rate = signal_ceiling(series, events, score.horizon)
    return base | {
        "horizon": score.horizon,
        "scored": int(score.events.size),
        "warned": int(score.warned.sum()),
        "recall": score.recall,
        "median_lead": score.median_lead,
        "false_alarms_per_1000": score.false_alarms_per_1000,
        "precision": score.precision,
        "f1": score.f1,
        "clock_fraction": report.clock_fraction[HORIZON_FRACTION],
        "clock_precision": clock.precision,
        "clock_f1": clock.f1,
        "clock_precision_matched": report.clock_precision_matched[HORIZON_FRACTION],
        "control_f1": control.f1,
        **{f"f1_horizon_{f:g}": s.f1 for f, s in report.warning.items()},
        **{f"clock_f1_horizon_{f:g}": s.f1 for f, s in report.clock.items()},
        **{f"{rule}_detected": s.recall for rule, s in report.reactive.items()},
        **{f"{rule}_median_lead": s.median_lead for rule, s in report.reactive.items()},
        **signals_out_of_noise(series, events),
        "signals_auc": auc,
        "signals_average_precision": average_precision,
        "window_base_rate": base_rate,
        "verdict": report.verdict,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    add_out_option(parser, "early_warning_table")
    args = parser.parse_args()
    rows = sorted((row(folder) for folder in args.runs), key=lambda r: (r["full_batch"], r["lr_wd"]))
    for r in rows:
        head = f"{r['run']}: {r['data']}{' full batch' if r['full_batch'] else ''}, ηλ {r['lr_wd']:.3g}"
        if "scored" not in r:
            print(f"{head}: {r['verdict']} ({r['destabilizations']})")
            continue
        print(
            f"{head}, horizon {r['horizon']}: {r['warned']}/{r['scored']} warned, median lead {r['median_lead']:g}, "
            f"precision {r['precision']:.2f}, F1 {r['f1']:.2f}, {r['false_alarms_per_1000']:.1f} false alarms/1000; "
            f"clock F1 {r['clock_f1']:.2f} (precision {r['clock_precision']:.2f}); control F1 {r['control_f1']:.2f}; "
            f"signals AUC {r['signals_auc']:.2f}, AP {r['signals_average_precision']:.2f} (base "
            f"{r['window_base_rate']:.2f}); out of noise 5 / 2 steps ahead: loss "
            f"{r['loss_out_of_noise_at_lead_5']:.0%} / {r['loss_out_of_noise_at_lead_2']:.0%}, cosine "
            f"{r['grad_cosine_out_of_noise_at_lead_5']:.0%} / {r['grad_cosine_out_of_noise_at_lead_2']:.0%}; "
            f"η̃ at destabilisations sd {r['elr_at_destabilization_sd_steps']:.0f} steps, periods sd "
            f"{r['period_sd']:.0f}, {r['steps_near_elr_at_destabilization']:g} steps near it; "
            f"{r['destabilizations_seen_online']} seen online; {r['verdict']}"
        )
    write_results(args.out, "early_warning_table", {"runs": rows})


if __name__ == "__main__":
    main()
