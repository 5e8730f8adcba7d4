"""Test-wide settings: hypothesis is derandomized, so every run draws the same examples (seeded, reproducible)."""

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "bnwd", derandomize=True, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("bnwd")


def _assert_as_planned(module, settings: dict, ctx, verdict) -> None:
    """Assert that ``module``'s check trained the runs its ``plan(settings)`` lists (``bnwd check --plan``): every
    run fixed by the settings, and no more others than the plan has derived runs.

    Trained runs are those through ``ctx.train`` (``verdict.runs``) and the replays a check builds itself, kept in
    ``<out>/c<N>/<run id>[-name]/``.
    """
    from empirical.runs import run_id

    planned = module.plan(settings)
    ids = {run_id(ctx.spec(**p.values)) for p in planned if not p.derived}
    replays = {path.name.split("-")[0] for path in ctx.out.glob("c*/*") if path.is_dir()}
    trained = set(verdict.runs) | replays
    assert ids <= trained, f"planned but not trained: {ids - trained}"
    assert len(trained - ids) <= sum(bool(p.derived) for p in planned), f"trained, not planned: {trained - ids}"


@pytest.fixture
def as_planned():
    """:func:`_assert_as_planned`, for the tests of each check."""
    return _assert_as_planned
