"""The plain files (analysis.records): series and JSON round trips."""

from __future__ import annotations

import json

import numpy as np
from numpy.testing import assert_allclose

from bnwd.analysis.records import read_series_csv, write_json, write_series_csv
from bnwd.analysis.schema import SERIES


def test_records_round_trip(tmp_path):
    steps = np.arange(5)
    series = {name: np.linspace(0, 1, 5) * (i + 1) for i, name in enumerate(SERIES)}
    series["loss"][3] = np.nan
    got_steps, got = read_series_csv(write_series_csv(tmp_path / "a" / "s.csv", steps, series))
    assert np.array_equal(got_steps, steps)
    for name in SERIES:
        assert_allclose(got[name], series[name], rtol=0, equal_nan=True)
    data = json.loads(write_json(tmp_path / "x.json", {"a": np.float64("nan"), "b": np.arange(2)}).read_text())
    assert data == {"a": None, "b": [0, 1]}
