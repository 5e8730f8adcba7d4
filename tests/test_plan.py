"""``bnwd check --plan`` (paper_checks.plan): every run listed, nothing trained, the paper's plan tests the paper."""

from __future__ import annotations

import math

import pytest

from bnwd.empirical.runs import RunSpec, spec_steps
from bnwd.paper_checks import c3_frequency as c3
from bnwd.paper_checks import c8_practical as c8
from bnwd.paper_checks import cli
from bnwd.paper_checks.checks import load_checks
from bnwd.paper_checks.common import SCALES, CheckContext
from bnwd.paper_checks.plan import PAPER_MEAN_PERIODS, format_plan, plan_checks


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
