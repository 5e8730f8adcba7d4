"""C8 (the practical net) on tiny settings: the verdict comes from the run files."""

from __future__ import annotations

from checks_support import assert_periodic_verdict, run_files

import bnwd.paper_checks.c8_practical as c8
from bnwd.paper_checks.common import timed


def test_c8_verdict_is_computed_from_the_run(ctx, as_planned):
    settings = c8.SETTINGS["tiny"]
    verdict = timed(c8, ctx, settings)
    as_planned(c8, settings, ctx, verdict)
    assert_periodic_verdict(verdict, ctx, settings)
    assert verdict.numbers["regime"] == run_files(ctx, verdict.runs[0])[0]["regime"]
