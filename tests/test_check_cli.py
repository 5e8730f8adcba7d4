"""`bnwd check` and `bnwd demo`: selection, verdict files, the report, and one-line errors."""

from __future__ import annotations

import json
import math

import pytest
import torch

import theory
from empirical.runs import RunSpec, spec_steps
from paper_checks import c3_frequency as c3
from paper_checks import c8_practical as c8
from paper_checks import cli
from paper_checks.checks import MODULES, load_checks, select
from paper_checks.common import SCALES, CheckContext
from paper_checks.demo import DemoPlan, run_demo
from paper_checks.plan import PAPER_MEAN_PERIODS, format_plan, plan_checks


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


@pytest.mark.parametrize("scale", SCALES)
def test_plan_lists_every_run_and_trains_nothing(tmp_path, capsys, scale):
    out = tmp_path / "out"
    # no GPU and no CIFAR folder needed: the plan reads no data
    assert cli.main(["check", "--scale", scale, "--device", "cpu", "--plan", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert not out.exists()
    rows = plan_checks(list(load_checks().values()), CheckContext(out=out, scale=scale, device="cpu"))
    assert printed == format_plan(rows, scale) + "\n"
    assert {row["claim"] for row in rows} == set(load_checks())
    for row in rows:
        spec = RunSpec(**{k: row[k] for k in ("model", "width", "data", "lr", "wd", "momentum")})
        assert row["steps"] >= 1 and row["lr_wd"] == pytest.approx(spec.lr * spec.wd)
        if row["id"] is not None:
            assert f"run {row['id']}" in printed
    total = sum({row["id"]: row["steps"] for row in rows if row["id"]}.values())
    assert f"{total + sum(row['steps'] for row in rows if not row['id']):,} steps" in printed


def test_paper_plan_tests_the_paper():
    """What the paper settings must be (issue: settings that fail for the right reasons): C3 over a decade of ηλ
    whose runs the paper shows periodic or that lie between them and above, with periods enough for its rule; C1, C6
    and C10 on such runs; C8 on the affine ResNet-18 with momentum 0.9 and augmentation."""
    rows = plan_checks(list(load_checks().values()), CheckContext(out=None, scale="paper", device="cpu"))
    by_claim = {claim: [r for r in rows if r["claim"] == claim] for claim in load_checks()}
    grid = by_claim["C3"]
    lr_wd = [r["lr_wd"] for r in grid]
    assert math.log10(max(lr_wd) / min(lr_wd)) >= c3.SETTINGS["paper"]["min_decades"] - 1e-9
    assert min(lr_wd) == pytest.approx(min(PAPER_MEAN_PERIODS))  # the slowest periodic run of the paper's figure
    assert all(r["periods"] >= c3.SETTINGS["paper"]["min_periods"] + 2 for r in grid)  # + the transient, + margin
    periodic = {round(k, 12) for k in PAPER_MEAN_PERIODS}
    for claim in ("C1", "C6", "C10"):
        assert round(by_claim[claim][0]["lr_wd"], 12) in periodic, claim
    practical = c8.SETTINGS["paper"]["run"]
    assert practical["model"] == "resnet18_si_affine" and practical["momentum"] == 0.9 and practical["augment"]
    # every run a check trains at paper scale checkpoints, at least a hundred times over a 1001-epoch run
    spec = CheckContext(out=None, scale="paper").spec(lr=0.03, wd=1e-3, data="cifar10", epochs=1001)
    assert 0 < spec.checkpoint_every <= spec_steps(spec) / 100


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


def test_analogue_trains_the_four_learning_rates_together_and_draws_them(tmp_path, capsys):
    """Fashion-MNIST stand-in files (the IDX format, 300 random images): the command's whole path in seconds."""
    from test_data import write_idx_set

    write_idx_set(tmp_path / "fm", n_train=300, n_test=50)
    out = tmp_path / "out"
    argv = ["analogue", "--data-dir", str(tmp_path / "fm"), "--device", "cpu", "--steps", "12", "--width", "2"]
    assert cli.main([*argv, "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ANALOGUE" in printed and "not a reproduction" in printed and (out / "figure2.png").is_file()
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 4
    configs = [json.loads((run / "config.json").read_text()) for run in runs]
    assert sorted(c["lr"] for c in configs) == [0.001, 0.01, 0.03, 1.0]
    assert all(c["wd"] == 1e-3 and c["batch_size"] == 128 and len(c["trained_together_with"]) == 3 for c in configs)
    # a second call reads the finished runs back and trains nothing
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("series.jsonl")}
    assert cli.main([*argv, "--quiet", "--out", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("series.jsonl")} == mtimes


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["analogue", "--device", "cpu", "--data-dir", "/nonexistent"], "/nonexistent"),
        (["analogue", "--steps", "0"], "--steps"),
    ],
)
def test_analogue_bad_input_is_one_line(tmp_path, capsys, argv, message):
    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_analogue_without_a_gpu_is_refused(tmp_path, capsys):
    assert cli.main(["analogue", "--out", str(tmp_path / "out")]) == cli.EXIT_USAGE
    assert "needs a CUDA GPU" in capsys.readouterr().err and not (tmp_path / "out").exists()
