"""C9 (the symmetry law) on tiny settings: the symmetric map keeps directions, a broken one does not."""

from __future__ import annotations

import math

import pytest

import bnwd.paper_checks.c9_symmetry as c9
from bnwd.paper_checks.common import CheckContext, timed


def test_c9_symmetric_map_keeps_directions_and_a_broken_map_does_not(tmp_path, monkeypatch, checked_alone):
    ctx, verdict = checked_alone(c9)
    numbers = verdict.numbers
    assert verdict.passed, verdict.summary
    assert numbers["max_direction_gap_symmetric"] <= c9.SETTINGS["tiny"]["max_direction_gap"]
    assert numbers["max_direction_gap_control"] >= c9.SETTINGS["tiny"]["min_control_gap"]
    c = numbers["scale"]
    assert numbers["config_symmetric"]["lr"] == pytest.approx(c * numbers["config_reference"]["lr"])
    assert numbers["config_symmetric"]["wd"] == pytest.approx(numbers["config_reference"]["wd"] / c)
    assert numbers["config_symmetric"]["si_init_scale"] == pytest.approx(math.sqrt(c))
    assert (ctx.out / verdict.figure).exists()

    # a map that forgets to divide λ by c: the "symmetric" net is then the control, and the check must fail
    monkeypatch.setattr(c9.theory, "symmetric_config", lambda lr, wd, rho, scale: (scale * lr, wd, rho * scale**0.5))
    broken = timed(c9, CheckContext(out=tmp_path / "broken", scale="tiny", device="cpu"), c9.SETTINGS["tiny"])
    assert not broken.passed
    assert broken.numbers["max_direction_gap_symmetric"] == broken.numbers["max_direction_gap_control"]
