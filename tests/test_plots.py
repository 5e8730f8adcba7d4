"""The figures of a grid (simulate.plots)."""

from __future__ import annotations


def test_period_plot_without_any_period_is_still_written(tmp_path):
    from bnwd.simulate.plots import plot_period_vs_lr_wd

    rows = [
        {
            "lr_wd": 0.01,
            "period_measured": None,
            "period_std": None,
            "period_predicted": None,
            "period_predicted_measured_threshold": None,
            "period_band_low": None,
            "period_band_high": None,
        }
    ]
    assert plot_period_vs_lr_wd(rows, tmp_path / "p.png").stat().st_size > 1000
