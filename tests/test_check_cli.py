"""`bnwd check` and `bnwd demo`: selection, verdict files, the report, and one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

import theory
from paper_checks import cli
from paper_checks.checks import MODULES, load_checks, select
from paper_checks.common import SCALES
from paper_checks.demo import DemoPlan, run_demo


def test_every_claim_has_a_module_with_all_scales():
    checks = load_checks()
    assert list(checks) == [f"C{i}" for i in range(1, 11)] and len(MODULES) == 10
    for claim, module in checks.items():
        assert module.TITLE and callable(module.run), claim
        assert set(module.SETTINGS) == set(SCALES), claim


def test_select_keeps_claim_order_and_names_unknown_claims():
    assert [m.CLAIM for m in select(["c9", " C3"])] == ["C3", "C9"]
    with pytest.raises(ValueError, match=r"unknown claim.*C11.*known: C1"):
        select(["C3", "C11"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--claims", "C11"], "unknown claim(s) C11"),
        (["check", "--claims", ","], "(none given)"),
        (["check", "--scale", "huge"], "invalid choice"),
        (["check", "--scale", "paper", "--device", "cpu"], "--data-dir"),
    ],
)
def test_check_usage_errors_are_one_line(tmp_path, capsys, argv, message):
    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_paper_scale_without_a_gpu_is_refused(tmp_path, capsys):
    assert cli.main(["check", "--scale", "paper", "--out", str(tmp_path)]) == cli.EXIT_USAGE
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_check_writes_verdicts_and_exit_status(tmp_path, capsys):
    out = tmp_path / "check"
    status = cli.main(["check", "--claims", "C9", "--scale", "tiny", "--quiet", "--out", str(out)])
    written = json.loads((out / "verdicts.json").read_text())
    assert written["scale"] == "tiny" and [v["claim"] for v in written["verdicts"]] == ["C9"]
    verdict = written["verdicts"][0]
    assert status == (0 if verdict["passed"] else cli.EXIT_FAILED) and written["passed"] == verdict["passed"]
    assert verdict["tolerance"] and verdict["numbers"] and verdict["seconds"] > 0
    assert (out / verdict["figure"]).is_file()
    printed = capsys.readouterr().out
    assert "C9" in printed and verdict["summary"] in printed


@pytest.mark.slow
def test_demo_writes_a_report_from_its_own_runs(tmp_path, monkeypatch):
    # Two quick statements stand in for the 24 (proving all takes ~45 s; `bnwd theory` is tested elsewhere).
    monkeypatch.setattr(theory, "STATEMENTS", theory.STATEMENTS[:2])
    plan = DemoPlan(real_wd=(0.01, 0.03), real_steps=120, width=2, sim_lr=(1.0,), sim_wd=(0.01, 0.03), sim_steps=800)
    report = run_demo(tmp_path, plan, device="cpu", progress=False, say=lambda _: None)
    text = report.read_text()
    for figure in ("four_panels.png", "period_vs_etalambda.png"):
        assert f"]({figure})" in text and (tmp_path / figure).stat().st_size > 10_000
    rows = json.loads((tmp_path / "simulate" / "summary.json").read_text())["rows"]
    assert len(rows) == 2 and "2 of 2 statements verified" in text
    for run_dir in (tmp_path / "runs").iterdir():
        summary = json.loads((run_dir / "summary.json").read_text())
        assert f"| {summary['n_destabilizations']} |" in text


def test_a_verdict_that_changes_inside_the_detector_band_is_fragile(tmp_path):
    """A check passing only at the default detector settings is reported fragile and fails; one passing or failing
    everywhere keeps its verdict; a check that declares it detects nothing is run once."""
    from types import SimpleNamespace

    from paper_checks.common import CheckContext, Verdict, timed
    from simulate.destabilization import SENSITIVITY_BAND

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
