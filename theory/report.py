"""Write the verified statements as ``theory.md`` (LaTeX) and ``theory.json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import sympy as sp

from bnwd.theory.symbolic import DIM, Statement

__all__ = ["markdown", "summary", "write_report"]


def summary(statements: Sequence[Statement]) -> dict:
    """JSON-ready summary: counts, whether all verified, and every statement's record."""
    return {
        "n_statements": len(statements),
        "n_verified": sum(s.verified for s in statements),
        "all_verified": all(s.verified for s in statements),
        "generic_dimension": DIM,
        "sympy_version": sp.__version__,
        "seconds": round(sum(s.seconds for s in statements), 3),
        "statements": [s.to_json() for s in statements],
    }


def markdown(statements: Sequence[Statement]) -> str:
    """The statements as a Markdown document with display LaTeX."""
    n_ok = sum(s.verified for s in statements)
    lines = [
        "# bnwd theory: verified statements",
        "",
        f"{n_ok} of {len(statements)} statements verified symbolically (sympy {sp.__version__}). "
        f"Identities of a scale-invariant loss are proved for the generic L(w) = f(w/‖w‖) in dimension {DIM} "
        "with f an undefined function; a statement is verified when its residual (left side minus right side, "
        "built from the update rule) reduces to zero.",
        "",
    ]
    for s in statements:
        mark = "✓" if s.verified else "✗"
        lines += [
            f"## {mark} `{s.name}`: {s.title}",
            "",
            f"$$ {s.latex} $$",
            "",
            f"*Assumes:* {s.assumptions}.",
            "",
            f"*Residual {'reduces to 0' if s.verified else 'does NOT reduce to 0'}* ({s.seconds:.2f} s).",
            "",
        ]
    return "\n".join(lines)


def write_report(statements: Sequence[Statement], out: Path) -> tuple[Path, Path]:
    """Write ``out/theory.md`` and ``out/theory.json``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "theory.md", out / "theory.json"
    md.write_text(markdown(statements), encoding="utf-8")
    js.write_text(json.dumps(summary(statements), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return md, js
