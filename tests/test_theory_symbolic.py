"""Every statement of the theory verifies, and the verifier rejects what is false.

A statement is verified when its residual reduces to zero (``theory.symbolic.is_identically_zero``). The
negative controls feed the same proofs a loss that is not scale-invariant, or a formula with a plausible
mistake, and require ``verified`` to be False: the zero test is not vacuous.
"""

from __future__ import annotations

import json

import pytest
import sympy as sp

from bnwd import theory
from bnwd.theory import catapult, equilibrium, escape, period, scale_invariance, sgd, stability
from bnwd.theory.report import markdown, summary, write_report
from bnwd.theory.symbolic import elr_critical, f, is_identically_zero, lr, momentum, si_norm, wd, weights

SLOW = {"hessian_scaling", "hessian_euler", "angular_update", "momentum_equilibrium_angular_update"}


@pytest.mark.parametrize(
    "statement",
    [pytest.param(s, id=s.__name__, marks=[pytest.mark.slow] if s.__name__ in SLOW else []) for s in theory.STATEMENTS],
)
def test_statement_verifies(statement):
    record = statement()
    assert record.name == statement.__name__
    assert record.verified, f"{record.name}: residual {record.residual}"
    assert record.latex and record.title and record.assumptions


def test_there_are_at_least_fourteen_distinct_statements():
    names = [s.__name__ for s in theory.STATEMENTS]
    assert len(names) == len(set(names)) >= 14


def _not_scale_invariant(w):
    return f(*w)  # a generic loss of the raw weights


def _homogeneous_of_degree_one(w):
    return sp.sqrt((w.T * w)[0]) * f(*(w / sp.sqrt((w.T * w)[0])))  # L(cw) = c L(w): close, but not SI


@pytest.mark.parametrize("loss", [_not_scale_invariant, _homogeneous_of_degree_one], ids=["raw", "degree-1"])
@pytest.mark.parametrize(
    "identity",
    [
        scale_invariance.loss_invariance,
        scale_invariance.gradient_scaling,
        scale_invariance.gradient_orthogonality,
        scale_invariance.hessian_euler,
        scale_invariance.effective_gradient,
    ],
    ids=lambda fn: fn.__name__,
)
def test_identities_fail_for_a_loss_that_is_not_scale_invariant(identity, loss):
    assert not identity(loss).verified


@pytest.mark.parametrize(
    ("module", "name", "wrong", "statement"),
    [
        # forgetting to square the decay factor
        (sgd, "ELR_AFTER_STEP", sgd.ELR_AFTER_STEP.subs((1 - lr * wd) ** 2, 1 - lr * wd), sgd.elr_map),
        # the equilibrium of the first-order approximation, 2ηλ in place of ηλ(2−ηλ)
        (
            equilibrium,
            "EQUILIBRIUM_SI_NORM",
            equilibrium.EQUILIBRIUM_SI_NORM.subs(2 - lr * wd, 2),
            equilibrium.equilibrium_norm,
        ),
        # the summary's threshold 2 where the exact one is 2(1−ηλ)
        (stability, "CRITICAL_SI_NORM", sp.sqrt(lr * stability.eff_sharpness / 2), stability.minimum_instability),
        # the leading-order period used as if it were exact
        (period, "PERIOD_LENGTH", period.PERIOD_LENGTH_LEADING, period.period_length),
        # momentum that lengthens the period instead of shortening it
        (period, "PERIOD_LENGTH_LEADING", period.PERIOD_LENGTH_LEADING / (1 - momentum) ** 2, period.momentum_period),
        # plain GD's threshold 2(1−ηλ) kept with momentum
        (stability, "STABILITY_THRESHOLD", 2 * (1 - lr * wd), stability.momentum_instability),
        # the leading-order delay used as if it were the solution
        (escape, "ESCAPE_DELAY", escape.ESCAPE_DELAY_LEADING, escape.escape_delay),
        # the period without its delay
        (escape, "WHOLE_PERIOD", period.PERIOD_LENGTH.subs(momentum, 0), escape.whole_period),
        # a reset that lands back at the threshold, as if the jump removed exactly the overshoot
        (escape, "RESET_OVERSHOOT", 1 / ((1 - lr * wd) ** 2), escape.plane_reset),
        # the delay alone, the reset's decay forgotten
        (escape, "PLANE_PERIOD", escape.ESCAPE_DELAY, escape.plane_period),
        # the quiet decay at pure weight decay's pace, its slowdown forgotten
        (catapult, "CATAPULT_PERIOD", catapult.CATAPULT_PERIOD.subs(catapult.slowdown, 1), catapult.catapult_period),
        # the ELR map's factor with η̃‖g̃‖ not squared
        (catapult, "_elr_map_factor", lambda e, g: (1 - lr * wd) ** 2 + e * g, catapult.catapult_jump),
        # the jump as the landing's own η̃ (θ_land alone), the far gradient forgotten
        (catapult, "CATAPULT_JUMP", sp.log(elr_critical / catapult.landing_angle), catapult.catapult_frequency),
    ],
    ids=[
        "elr_map",
        "equilibrium_norm",
        "minimum_instability",
        "period_length",
        "momentum_period",
        "momentum_threshold",
        "escape_delay",
        "whole_period",
        "plane_reset",
        "plane_period",
        "catapult_period",
        "catapult_jump",
        "catapult_frequency",
    ],
)
def test_a_wrong_formula_fails_to_verify(monkeypatch, module, name, wrong, statement):
    monkeypatch.setattr(module, name, wrong)
    assert not statement().verified


def test_zero_test_separates_true_and_false_residuals():
    rho = sp.sqrt((weights.T * weights)[0])
    assert is_identically_zero(rho**2 - sum(x**2 for x in weights))
    assert not is_identically_zero(rho - sum(abs(x) for x in weights))
    assert is_identically_zero(sp.sqrt((1 - lr * wd) ** 2) - (1 - lr * wd))  # true only on the domain ηλ < 1
    assert not is_identically_zero(sp.sqrt((1 - lr * wd) ** 2) - (lr * wd - 1))
    assert not is_identically_zero(sp.Matrix([0, si_norm * 1e-30]))


def test_report_files(tmp_path):
    records = [scale_invariance.loss_invariance(), sgd.elr_map()]
    md_path, json_path = write_report(records, tmp_path / "out")
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data == json.loads(json.dumps(summary(records)))
    assert (data["n_statements"], data["n_verified"], data["all_verified"]) == (2, 2, True)
    assert [s["name"] for s in data["statements"]] == ["loss_invariance", "elr_map"]
    assert all(s["verified"] and s["latex"] for s in data["statements"])
    text = md_path.read_text(encoding="utf-8")
    assert text == markdown(records)
    assert text.count("## ✓") == 2 and r"$$ L(c\,w) = L(w) $$" in text
