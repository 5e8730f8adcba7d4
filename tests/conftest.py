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
    from bnwd.empirical.runs import run_id

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


@pytest.fixture
def checked_alone(tmp_path):
    """``run(module)``: the check of ``module`` at its tiny settings, in a folder of its own, asserted to have trained
    what it planned; returns its context and verdict."""
    from bnwd.paper_checks.common import CheckContext, timed

    def run(module):
        ctx = CheckContext(out=tmp_path, scale="tiny", device="cpu")
        verdict = timed(module, ctx, module.SETTINGS["tiny"])
        _assert_as_planned(module, module.SETTINGS["tiny"], ctx, verdict)
        return ctx, verdict

    return run


@pytest.fixture(scope="session")
def ctx(tmp_path_factory):
    """One output folder for the tests of the checks at the tiny scale: checks asking for the same spec share its run,
    as in ``bnwd check`` (C2 reads back C1's run; C4 and C10 read back C3's)."""
    from bnwd.paper_checks.common import CheckContext

    return CheckContext(out=tmp_path_factory.mktemp("checks"), scale="tiny", device="cpu")


@pytest.fixture(scope="session")
def verdict3(ctx):
    """C3's verdict on its tiny grid, whose runs C4 and C10 read back."""
    import bnwd.paper_checks.c3_frequency as c3
    from bnwd.paper_checks.common import timed

    return timed(c3, ctx, c3.SETTINGS["tiny"])
