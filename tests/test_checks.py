"""The registry of checks (paper_checks.checks): every claim a module with every scale, selection, fragility."""

from __future__ import annotations

import pytest

from bnwd.paper_checks.checks import MODULES, load_checks, select
from bnwd.paper_checks.common import SCALES, CheckContext


def test_every_claim_has_a_module_with_all_scales():
    checks = load_checks()
    assert list(checks) == [f"C{i}" for i in range(1, 11)] and len(MODULES) == 10
    for claim, module in checks.items():
        assert module.TITLE and callable(module.run) and callable(module.plan), claim
        assert set(module.SETTINGS) == set(SCALES), claim


def test_select_keeps_claim_order_and_names_unknown_claims():
    assert [m.CLAIM for m in select(["c9", " C3"])] == ["C3", "C9"]
    with pytest.raises(ValueError, match=r"unknown claim.*C11.*known: C1"):
        select(["C3", "C11"])


def test_a_verdict_that_changes_inside_the_detector_band_is_fragile(tmp_path):
    """A check passing only at the default detector settings is reported fragile and fails; one passing or failing
    everywhere keeps its verdict; a check that declares it detects nothing is run once."""
    from types import SimpleNamespace

    from bnwd.analysis.destabilization import SENSITIVITY_BAND
    from bnwd.paper_checks.common import Verdict, timed

    def check(passes):
        def run(ctx, settings):
            return Verdict("CX", "test", passes(ctx.detector), "summary", {"n": len(ctx.detector.label())}, {})

        return SimpleNamespace(run=run, HEADLINE=("n",))

    ctx = CheckContext(out=tmp_path)
    default_only = timed(check(lambda at: at == SENSITIVITY_BAND[0]), ctx, {})
    assert default_only.fragile and not default_only.passed and default_only.summary.startswith("FRAGILE")
    assert list(default_only.detector_band) == [at.label() for at in SENSITIVITY_BAND]
    assert sum(entry["passed"] for entry in default_only.detector_band.values()) == 1
    for everywhere in (True, False):
        verdict = timed(check(lambda at, everywhere=everywhere: everywhere), ctx, {})
        assert verdict.passed == everywhere and not verdict.fragile
        lengths = [len(at.label()) for at in SENSITIVITY_BAND]
        assert verdict.summary == f"summary [over the detector's band: n {min(lengths)}–{max(lengths)}]"
    calls = []
    once = check(lambda at: calls.append(at) or True)
    once.DETECTOR_BAND = "not evaluated: detects nothing"
    assert timed(once, ctx, {}).detector_band == "not evaluated: detects nothing" and len(calls) == 1
