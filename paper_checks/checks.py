"""Run the paper checks: pick them, run each at a scale, write ``verdicts.json`` and print the table."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from bnwd.analysis.records import write_json
from bnwd.paper_checks.common import SCALES, CheckContext, Verdict, timed

__all__ = ["MODULES", "load_checks", "run_checks", "select", "table_row", "write_verdicts"]

MODULES = (
    "c1_periodic",
    "c2_fixed_norm",
    "c3_frequency",
    "c4_period_law",
    "c5_sharpness",
    "c6_minima",
    "c7_regimes",
    "c8_practical",
    "c9_symmetry",
    "c10_simulator",
)
"""One module per claim of the paper, in claim order (each defines ``CLAIM``, ``TITLE``, ``SETTINGS``, ``run``)."""


def load_checks() -> dict[str, ModuleType]:
    """``{"C1": module, …}`` for every module in :data:`MODULES`."""
    checks = {}
    for name in MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        checks[module.CLAIM] = module
    return checks


def select(claims: list[str] | None) -> list[ModuleType]:
    """The checks named in ``claims`` (case-insensitive, claim order kept), all of them for None.

    Raises ``ValueError`` naming the unknown claims and the known ones.
    """
    checks = load_checks()
    if claims is None:
        return list(checks.values())
    wanted = [c.strip().upper() for c in claims if c.strip()]
    unknown = [c for c in wanted if c not in checks]
    if unknown or not wanted:
        raise ValueError(f"unknown claim(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(checks)}")
    return [module for claim, module in checks.items() if claim in wanted]


def run_checks(checks: list[ModuleType], ctx: CheckContext, *, on_verdict=None) -> list[Verdict]:
    """Run ``checks`` at ``ctx.scale`` in order; after each, rewrite ``ctx.out/verdicts.json`` (so an interrupted
    run keeps what it found) and call ``on_verdict(verdict)``."""
    if ctx.scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {ctx.scale!r}")
    verdicts = []
    for check in checks:
        verdict = timed(check, ctx, check.SETTINGS[ctx.scale])
        verdicts.append(verdict)
        write_verdicts(verdicts, ctx)
        if on_verdict is not None:
            on_verdict(verdict)
    return verdicts


def write_verdicts(verdicts: list[Verdict], ctx: CheckContext) -> Path:
    """``ctx.out/verdicts.json``: the scale, the device, whether all passed, and each verdict."""
    return write_json(
        Path(ctx.out) / "verdicts.json",
        {
            "scale": ctx.scale,
            "device": ctx.device,
            "passed": all(v.passed for v in verdicts),
            "seconds": round(sum(v.seconds for v in verdicts), 2),
            "verdicts": [v.to_json() for v in verdicts],
        },
    )


def table_row(verdict: Verdict) -> str:
    """One line of the printed table: claim, ✓/✗, wall time, the verdict's summary."""
    return f"{verdict.claim:<4} {'✓' if verdict.passed else '✗'} {verdict.seconds:7.1f} s  {verdict.summary}"
