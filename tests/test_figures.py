"""The checks' figures (paper_checks.figures)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from warning_support import toy_run

import bnwd.paper_checks.c1_periodic as c1
import bnwd.paper_checks.c8_practical as c8
from bnwd.analysis.early_warning import alarm_onsets, on_intervals
from bnwd.paper_checks.figures import early_warning_panels, equilibrium_line, four_panels, run_warning


def test_four_panels_draws_any_number_of_runs(ctx, tmp_path):
    runs = [ctx.train(ctx.spec(**c1.SETTINGS["tiny"]["run"])), ctx.train(ctx.spec(**c8.SETTINGS["tiny"]["run"]))]
    path = four_panels(runs, tmp_path / "sub" / "four.png", labels=["free", "practical"])
    assert path.is_file() and path.stat().st_size > 0
    with pytest.raises(ValueError, match="one entry per run"):
        four_panels(runs, tmp_path / "x.png", labels=["only one"])
    # The equilibrium line comes from theory: its product with ‖g̃‖ is √(ηλ(2−ηλ)) everywhere.
    grad = np.geomspace(0.1, 10, 5)
    spec = runs[0].spec
    assert np.allclose(equilibrium_line(runs[0], grad) * grad, np.sqrt(spec.lr * spec.wd * (2 - spec.lr * spec.wd)))
    assert equilibrium_line(runs[1], grad) is None  # momentum: plain SGD's line does not apply


@given(st.lists(st.booleans(), max_size=60))
def test_on_intervals_cover_exactly_the_steps_the_warning_is_on(warning):
    intervals = on_intervals(warning)
    covered = [i for start, end in intervals for i in range(start, end)]
    assert covered == [i for i, on in enumerate(warning) if on]
    # each stretch is whole: it starts after an off step (or at 0) and ends before one (or at the end)
    assert all(start < end for start, end in intervals)
    assert all(end < next_start for (_, end), (next_start, _) in itertools.pairwise(intervals))


def test_run_warning_is_the_recorded_one_or_the_one_the_summary_scored():
    recorded = toy_run(0.03, 1500)
    # records whose warning is not the one η̃ gives: theirs is drawn, not recomputed
    recorded.records = [r | {"warning": 1 - r["warning"]} for r in recorded.records]
    assert run_warning(recorded).tolist() == [r["warning"] for r in recorded.records]
    older = toy_run(0.03, 1500, recorded_warning=False)  # a run recorded before the warning: recomputed from η̃
    warning = run_warning(older)
    scored = older.summary["early_warning"]["by_horizon"]["0.25"]["warning"]
    onsets = alarm_onsets(warning)
    assert scored["n_alarms"] == np.count_nonzero(onsets > older.summary["events"][0]) > 10


def test_early_warning_panels_draw_a_panel_per_run(tmp_path):
    runs = [toy_run(0.03, 1500), toy_run(0.01, 150, recorded_warning=False)]  # the second: 3 destabilisations
    path = early_warning_panels(runs, tmp_path / "sub" / "early_warning.png", labels=["scored", "too short"])
    assert path.is_file() and path.stat().st_size > 10_000
    with pytest.raises(ValueError, match="one entry per run"):
        early_warning_panels(runs, tmp_path / "x.png", labels=["only one"])
