"""C6 (different minima, ensembles) on tiny settings: its numbers against a direct evaluation; too few periods fail."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from checks_support import tiny_settings

import bnwd.paper_checks.c6_minima as c6
from bnwd.paper_checks.common import CheckContext, timed


def test_cosine_matrix_is_symmetric_with_unit_diagonal():
    generator = torch.Generator().manual_seed(0)
    vectors = [torch.randn(50, generator=generator, dtype=torch.float64) for _ in range(4)]
    sims = c6.cosine_matrix(vectors)
    np.testing.assert_allclose(sims, sims.T, atol=1e-15)
    np.testing.assert_allclose(np.diag(sims), 1.0, atol=1e-15)
    assert sims[0, 1] == pytest.approx(float(vectors[0] @ vectors[1] / (vectors[0].norm() * vectors[1].norm())))


@pytest.mark.slow
def test_c6_numbers_match_a_direct_evaluation(checked_alone):
    ctx, verdict = checked_alone(c6)
    settings = c6.SETTINGS["tiny"]
    numbers = verdict.numbers
    assert numbers["rerun_rho_max_relative_error"] <= settings["reproduce_rtol"]
    n = settings["n_periods"]
    assert len(numbers["cos_along_period"]) == len(numbers["cos_across_periods"]) == n
    lower = np.mean(np.array(numbers["cos_across_periods"]) < np.array(numbers["cos_along_period"]))
    assert numbers["across_lower_fraction"] == pytest.approx(lower)
    expected = (
        np.mean(numbers["cos_across_periods"]) < np.mean(numbers["cos_along_period"])
        and lower >= settings["min_across_lower_fraction"]
        and numbers["period_ensemble_test_acc"] >= max(numbers["member_test_acc"])
    )
    assert verdict.passed == expected

    # the last member's accuracy is what the trainer's own evaluation gives for a fresh copy of that checkpoint
    spec = ctx.spec(**settings["run"])
    last = numbers["period_ends"][-1]
    states, trainer = c6._states_at(ctx, spec, [last])
    probs, record = c6.evaluate_state(trainer, states[last])
    assert record["test_acc"] == pytest.approx(numbers["member_test_acc"][-1])
    assert float((probs.argmax(1) == trainer.data.test_y).double().mean()) == pytest.approx(record["test_acc"])
    np.testing.assert_allclose(probs.sum(1).numpy(), 1.0, rtol=1e-5)
    assert (ctx.out / verdict.figure).exists()


def test_c6_fails_without_enough_periods(tmp_path):
    ctx = CheckContext(out=tmp_path, scale="tiny", device="cpu")
    verdict = timed(c6, ctx, tiny_settings(c6, run={"steps": 20}))
    assert not verdict.passed
    assert verdict.numbers["n_events"] < verdict.tolerance["min_events"]
