"""The checks' figures (paper_checks.figures)."""

from __future__ import annotations

import numpy as np
import pytest

import bnwd.paper_checks.c1_periodic as c1
import bnwd.paper_checks.c8_practical as c8
from bnwd.paper_checks.figures import equilibrium_line, four_panels


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
