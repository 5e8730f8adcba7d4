"""A simulated grid (simulate.sweep): a diverging config, and the period law on the toys."""

from __future__ import annotations

import numpy as np

from bnwd.analysis.records import read_series_csv
from bnwd.simulate.models import RayleighQuotient


class _BreaksAt:
    """Rayleigh quotient whose gradient turns NaN for config 1 from a given step on."""

    def __init__(self, step):
        self.model, self.step, self.calls = RayleighQuotient.evenly_spaced(4, noise=0.0), step, 0
        self.dim, self.name, self.eff_sharpness = 4, "breaks", self.model.eff_sharpness

    def loss_and_grad(self, w, rng):
        loss, grad = self.model.loss_and_grad(w, rng)
        self.calls += 1
        if self.calls > self.step:
            grad[1] = np.nan
        return loss, grad


def test_a_diverging_config_is_reported_and_the_others_finish(tmp_path):
    from bnwd.simulate.sweep import simulate_grid

    summary = simulate_grid(_BreaksAt(50), [1.0], [0.005, 0.01], steps=400, out=tmp_path, progress=False)
    first, second = summary["rows"]
    assert second["regime"] == "diverged" and second["diverged_at"] == 50
    assert first["regime"] != "diverged" and first["diverged_at"] is None
    steps, series = read_series_csv(tmp_path / "series" / f"{second['run_id']}.csv")
    assert np.isnan(series["si_norm"][steps >= 50]).all() and np.isfinite(series["si_norm"][steps < 50]).all()


def test_the_escape_delay_brings_the_deterministic_toys_period_law_close(tmp_path):
    # without noise the period law alone is about half the measured period; with the delay from the depth of
    # convergence (floored at float64 rounding) it is within 20 % on these configs
    from bnwd.simulate.sweep import simulate_grid

    model = RayleighQuotient.evenly_spaced(64, noise=0.0)
    summary = simulate_grid(model, [1.0, 2.0], [0.005, 0.01], steps=12000, out=tmp_path, progress=False)
    law = np.array([r["relative_error"] for r in summary["rows"]])
    delayed = np.array([r["relative_error_with_delay"] for r in summary["rows"]])
    assert np.median(np.abs(law)) > 0.4
    assert np.median(np.abs(delayed)) < 0.2


def test_the_a_priori_period_predicts_the_noisy_toy(tmp_path):
    # fed ηλ, s̃ and σ only: twice the escape delay from the noise floor to the escape angle (−0.5 … +40 % here).
    # Control that must fail: a period ∝ 1/ηλ through the first config (the law's scaling) misses the rest by
    # 22–56 %, since with one unstable direction the period goes as 1/√ηλ
    from bnwd.simulate.sweep import simulate_grid

    model = RayleighQuotient.evenly_spaced(64)  # the default noise floor
    summary = simulate_grid(model, [1.0, 2.0], [0.0025, 0.01], steps=12000, out=tmp_path, progress=False)
    rows = summary["rows"]
    assert all(r["regime"] == "periodic" for r in rows)
    a_priori = np.array([r["relative_error_a_priori"] for r in rows])
    assert np.median(np.abs(a_priori)) < 0.2
    measured = np.array([r["period_measured"] for r in rows])
    lr_wd = np.array([r["lr_wd"] for r in rows])
    inverse = measured[0] * lr_wd[0] / lr_wd
    assert np.median(np.abs(inverse[1:] / measured[1:] - 1)) > 0.3
    # the exponent of the frequency: ≈ 1/2 measured and a priori, the law's 1 far off
    slope, a_priori_slope = summary["frequency_slope"]["slope"], summary["frequency_slope_a_priori"]
    assert abs(a_priori_slope - slope) < 0.15 < 1 - slope
