"""What ``bnwd check`` will train, before it trains anything: each claim's runs, their steps, ηλ and the periods
expected (``bnwd check --plan``).

The runs are the checks' own (each check's ``plan(settings)``, the list its ``run`` trains), with the context's
device and data applied as :meth:`~paper_checks.common.CheckContext.spec` applies them, so a run shared by several
claims has one id and is counted once. Steps come from the settings and the datasets' sizes
(:func:`empirical.runs.spec_steps`); no data is read.

The periods expected are an estimate for planning, not a prediction any check is judged by: ``steps/T`` with
``T = ln(η̃_c/η̃_s)/(−2 ln z₊)`` (:func:`theory.period_length`, momentum included) and the one number
``ln(η̃_c/η̃_s)`` that the paper's own mean periods imply (:data:`PAPER_MEAN_PERIODS`). It is blind to the regime:
a run that converges or settles at its equilibrium has no periods whatever ``T`` says, and runs with the norm fixed
are counted as none.
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np

from bnwd import theory
from bnwd.empirical.runs import RunSpec, run_id, spec_steps
from bnwd.paper_checks.common import CheckContext

__all__ = [
    "PAPER_MEAN_PERIODS",
    "PAPER_STEPS_PER_EPOCH",
    "claim_lines",
    "expected_period",
    "format_plan",
    "log_elr_ratio",
    "plan_checks",
]

PAPER_MEAN_PERIODS = {1e-5: 222, 3e-5: 64}
"""Mean period in epochs of :data:`PAPER_STEPS_PER_EPOCH` steps at ηλ = 1e-5 and 3e-5, read from the paper's Fig. 2
(ConvNetSI c = 32, CIFAR-10, λ = 1e-3, η = 0.01 and 0.03; ``shared/reference/science.md`` §2.5)."""
PAPER_STEPS_PER_EPOCH = 391


def log_elr_ratio() -> float:
    """``ln(η̃_c/η̃_s)`` implied by :data:`PAPER_MEAN_PERIODS` through :func:`theory.period_length` (β = 0): the mean
    over the two of ``T_paper / T(ln ratio = 1)``."""
    lr_wd = np.array(list(PAPER_MEAN_PERIODS))
    unit = theory.period_length(1.0, math.e, lr_wd / 1e-3, 1e-3)
    return float(np.mean(np.array(list(PAPER_MEAN_PERIODS.values())) * PAPER_STEPS_PER_EPOCH / unit))


_FIXING_FIELDS = ("fix_norm", "fix_elr")


def expected_period(spec: RunSpec, log_ratio: float) -> float:
    """Steps of one period of ``spec`` by :func:`theory.period_length` with ``ln(η̃_c/η̃_s) = log_ratio``; ``inf``
    for a run without free decay (λ = 0, or the norm fixed), NaN where the decay is not monotone (large ηλ with
    momentum) and the formula does not apply."""
    if spec.wd == 0 or any(getattr(spec, name) is not None for name in _FIXING_FIELDS):
        return math.inf
    try:
        return float(theory.period_length(1.0, math.exp(log_ratio), spec.lr, spec.wd, spec.momentum))
    except ValueError:
        return math.nan


def plan_checks(checks: list[ModuleType], ctx: CheckContext) -> list[dict]:
    """One row per run of each check at ``ctx.scale``, in claim order.

    Returns
    -------
    list of dict
        ``claim``, ``role``, ``id`` (None for a run whose fields an earlier run decides), ``derived`` (field → how it
        is found), ``shared_with`` (the first claim listing the same id, or None), ``model``, ``width``, ``data``,
        ``lr``, ``wd``, ``momentum``, ``lr_wd``, ``steps`` (an upper bound where ``steps`` is derived),
        ``free_decay`` (λ > 0 and the norm not fixed), ``period`` (expected, steps; None without free decay or where
        the estimate does not apply) and ``periods`` (expected, ``steps/period``; 0 without free decay, None where
        the estimate does not apply).
    """
    log_ratio = log_elr_ratio()
    rows, first_claim = [], {}
    for check in checks:
        for planned in check.plan(check.SETTINGS[ctx.scale]):
            spec = ctx.spec(**planned.values)
            rid = None if planned.derived else run_id(spec)
            steps = spec_steps(spec)
            fixed = any(name in planned.derived for name in _FIXING_FIELDS)
            period = math.inf if fixed else expected_period(spec, log_ratio)
            rows.append(
                {
                    "claim": check.CLAIM,
                    "role": planned.role,
                    "id": rid,
                    "derived": planned.derived,
                    "shared_with": first_claim.get(rid),
                    "model": spec.model,
                    "width": spec.width,
                    "data": spec.data,
                    "lr": spec.lr,
                    "wd": spec.wd,
                    "momentum": spec.momentum,
                    "lr_wd": spec.lr * spec.wd,
                    "steps": steps,
                    "free_decay": period != math.inf,
                    "period": period if math.isfinite(period) else None,
                    "periods": None if math.isnan(period) else int(steps / period),
                }
            )
            if rid is not None:
                first_claim.setdefault(rid, check.CLAIM)
    return rows


def claim_lines(rows: list[dict]) -> list[str]:
    """Per claim: its runs, the steps they add (a run shared with an earlier claim counts there), and the span of ηλ
    over its runs with free decay."""
    lines = []
    for claim in dict.fromkeys(row["claim"] for row in rows):
        own = [row for row in rows if row["claim"] == claim]
        new_steps = sum(row["steps"] for row in own if row["shared_with"] is None)
        lr_wd = sorted({row["lr_wd"] for row in own if row["free_decay"]})
        if len(lr_wd) > 1:
            span = f"ηλ {lr_wd[0]:.3g}–{lr_wd[-1]:.3g} ({math.log10(lr_wd[-1] / lr_wd[0]):.2f} decades)"
        else:
            span = f"ηλ {lr_wd[0]:.3g}" if lr_wd else "no run with free decay"
        lines.append(f"{claim}: {len(own)} run(s), {new_steps:,} steps of its own; {span}")
    return lines


def format_plan(rows: list[dict], scale: str) -> str:
    """The plan as printed by ``bnwd check --plan``: one line a run, one a claim, the totals and what the expected
    periods rest on."""
    lines = [f"plan at scale {scale} (nothing is trained):"]
    for row in rows:
        where = (
            f"run {row['id']}" if row["id"] else "derived: " + "; ".join(f"{k} {v}" for k, v in row["derived"].items())
        )
        shared = f" (shared with {row['shared_with']})" if row["shared_with"] else ""
        periods = "—" if row["periods"] is None else f"~{row['periods']}" if row["periods"] else "0"
        net = f"{row['model']} c{row['width']} {row['data']}"
        setting = f"η={row['lr']:g} λ={row['wd']:.3g} β={row['momentum']:g}"
        lines.append(
            f"  {row['claim']:<4} {row['role']:<38} {net:<32} {setting:<26} ηλ={row['lr_wd']:<8.3g} "
            f"{row['steps']:>9,} steps {periods:>5} periods  {where}{shared}"
        )
    lines += claim_lines(rows)
    distinct = {row["id"]: row["steps"] for row in rows if row["id"]}
    derived = [row["steps"] for row in rows if not row["id"]]
    lines.append(
        f"total: {len(distinct) + len(derived)} runs, {sum(distinct.values()) + sum(derived):,} steps "
        f"(shared runs once; derived runs at their upper bound)"
    )
    lines.append(
        f"periods expected: steps/T, T = ln(η̃_c/η̃_s)/(−2 ln z₊) (theory.period_length) with ln(η̃_c/η̃_s) = "
        f"{log_elr_ratio():.2f}, implied by the paper's mean periods ("
        + ", ".join(f"{epochs} epochs at ηλ = {lr_wd:g}" for lr_wd, epochs in PAPER_MEAN_PERIODS.items())
        + "); an estimate blind to the regime (a converging or equilibrium run has none)"
    )
    return "\n".join(lines)
