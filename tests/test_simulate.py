"""The simulator: toy models, the batched integrator, the norm/ELR replay, the sweep, and ``bnwd simulate``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import theory
from paper_checks.cli import main
from simulate.analysis import convergence_depth, frequency_slope, predicted_periods, summarize_run, threshold_crossings
from simulate.integrate import initial_weights, integrate, lr_for_fixed_elr
from simulate.models import RayleighQuotient, SoftmaxRegression
from simulate.norm_map import replay_elr, replay_si_norm
from simulate.records import read_series_csv, write_json, write_series_csv
from simulate.schema import SERIES

SEEDS = st.integers(0, 2**32 - 1)


def _small_softmax(seed: int, batch_size=None) -> SoftmaxRegression:
    rng = np.random.default_rng(seed)
    return SoftmaxRegression(rng.standard_normal((40, 5)), rng.integers(0, 3, 40), 4.0, batch_size)


def _models(seed: int):
    return [
        RayleighQuotient.evenly_spaced(6, 1.5, noise=0.0),
        RayleighQuotient.evenly_spaced(6, 1.5, noise=0.3),
        _small_softmax(seed),
        _small_softmax(seed, batch_size=8),
    ]


@settings(max_examples=20)
@given(seed=SEEDS, scale=st.floats(0.01, 100.0))
def test_models_are_scale_invariant_with_tangent_gradients(seed, scale):
    for model in _models(seed):
        w = np.random.default_rng(seed).standard_normal((3, model.dim))
        loss, grad = model.loss_and_grad(w, np.random.default_rng(seed))
        loss_c, grad_c = model.loss_and_grad(scale * w, np.random.default_rng(seed))
        assert_allclose(loss_c, loss, rtol=1e-12)
        assert_allclose(grad_c, grad / scale, rtol=1e-9, atol=1e-12 * np.abs(grad).max() / scale)
        assert_allclose(np.sum(w * grad, axis=1), 0.0, atol=1e-12 * np.linalg.norm(w) * np.abs(grad).max())


@settings(max_examples=10)
@given(seed=SEEDS)
def test_full_batch_gradients_match_finite_differences(seed):
    rng = np.random.default_rng(seed)
    for model in (RayleighQuotient(rng.uniform(0, 2, 5), noise=0.0), _small_softmax(seed)):
        w = rng.standard_normal((1, model.dim))
        _, grad = model.loss_and_grad(w, rng)
        step = 1e-6
        basis = np.eye(model.dim)
        numeric = [
            (model.loss_and_grad(w + step * e, rng)[0] - model.loss_and_grad(w - step * e, rng)[0])[0] / (2 * step)
            for e in basis
        ]
        assert_allclose(grad[0], numeric, rtol=1e-6, atol=1e-8)


def test_rayleigh_effective_sharpness_is_the_top_hessian_eigenvalue_at_the_minimum():
    model = RayleighQuotient(np.array([0.3, 0.7, 1.9, 1.1]), noise=0.0)
    minimum = np.eye(4)[0]
    step = 1e-5
    columns = [
        (
            model.loss_and_grad((minimum + step * e)[None], None)[1]
            - model.loss_and_grad((minimum - step * e)[None], None)[1]
        )[0]
        / (2 * step)
        for e in np.eye(4)
    ]
    assert_allclose(np.linalg.eigvalsh(np.array(columns)).max(), model.eff_sharpness, rtol=1e-7)


@settings(max_examples=15)
@given(
    seed=SEEDS,
    lr=st.floats(0.05, 2.0),
    wd=st.floats(1e-4, 0.05),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    noise=st.sampled_from([0.0, 0.2]),
)
def test_integrator_is_torch_sgd(seed, lr, wd, momentum, noise):
    """Same start, same gradients: the batched update equals torch.optim.SGD's, step for step."""
    model = RayleighQuotient.evenly_spaced(5, 1.0, noise=noise)
    steps = 25
    ours = integrate(model, lr, wd, momentum=momentum, steps=steps, si_norm0=1.3, seed=seed)
    w = torch.tensor(initial_weights(1, model.dim, 1.3, seed), requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=lr, momentum=momentum, weight_decay=wd)
    rng = np.random.default_rng([seed, 1])  # the integrator's noise stream
    for _ in range(steps):
        _, grad = model.loss_and_grad(w.detach().numpy(), rng)
        w.grad = torch.from_numpy(grad)
        optimizer.step()
    assert_allclose(ours.final_weights, w.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_same_seed_same_bits_and_other_seed_other_run():
    model = RayleighQuotient.evenly_spaced(8, noise=0.5)
    runs = [integrate(model, [0.5, 1.0], 0.01, steps=200, seed=s) for s in (3, 3, 4)]
    for name in SERIES:
        assert np.array_equal(runs[0].series[name], runs[1].series[name])
    assert not np.array_equal(runs[0].series["si_norm"], runs[2].series["si_norm"])


def test_fixed_norm_and_fixed_elr_modes_keep_the_norm():
    model = RayleighQuotient.evenly_spaced(8, noise=0.3)
    lr = lr_for_fixed_elr([0.1, 0.5], 2.0)
    run = integrate(model, lr, 0.01, momentum=0.9, steps=300, mode="fixed_norm", si_norm0=2.0)
    assert_allclose(run.series["si_norm"], 2.0, rtol=1e-13)
    assert_allclose(run.series["elr"], np.broadcast_to([[0.1], [0.5]], (2, 300)), rtol=1e-12)


@settings(max_examples=15)
@given(seed=SEEDS, dim=st.integers(2, 20), noise=st.sampled_from([0.0, 0.1, 1.0]), lr_wd=st.floats(1e-4, 0.05))
def test_replaying_the_gradient_norms_reproduces_norm_and_elr(seed, dim, noise, lr_wd):
    """The exact maps of :mod:`theory`, fed a run's ‖∇L‖ (or ‖g̃‖), rebuild its ρ and η̃ to float precision."""
    lr = np.array([0.3, 1.0, 3.0])
    model = RayleighQuotient(np.random.default_rng(seed).uniform(0, 2, dim), noise)
    run = integrate(model, lr, lr_wd / lr, steps=400, seed=seed)
    rho, elr = run.series["si_norm"], run.series["elr"]
    assert_allclose(replay_si_norm(run.series["grad_norm"], lr, lr_wd / lr, rho[:, 0])[:, :-1], rho, rtol=1e-12)
    assert_allclose(replay_elr(run.series["eff_grad_norm"], lr, lr_wd / lr, elr[:, 0])[:, :-1], elr, rtol=1e-12)


def test_recorded_angle_is_the_theory_angle_without_momentum():
    run = integrate(RayleighQuotient.evenly_spaced(10, noise=0.2), [0.5, 2.0], [0.01, 0.002], steps=300)
    s = run.series
    expected = theory.angular_update(s["elr"], s["eff_grad_norm"], run.lr[:, None], run.wd[:, None])
    assert_allclose(s["angular_update"], expected, rtol=1e-9, atol=1e-15)


def test_the_three_regimes_side_by_side():
    """Convergent (tiny ηλ, short budget), periodic (noise-free), equilibrium (noise, ηλ small against it)."""
    steps = 6000
    quiet, noisy = RayleighQuotient.evenly_spaced(16, noise=0.0), RayleighQuotient.evenly_spaced(16, noise=0.5)
    rows = {}
    # The equilibrium run starts near its equilibrium norm, so that no start-up jump is counted.
    for label, model, lr, wd, si_norm0 in [
        ("convergent", quiet, 0.1, 1e-5, 1.0),
        ("periodic", quiet, 1.0, 0.005, 1.0),
        ("equilibrium", noisy, 0.1, 0.01, 2.0),
    ]:
        run = integrate(model, lr, wd, steps=steps, si_norm0=si_norm0)
        s = {k: v[0] for k, v in run.series.items()}
        rows[label] = summarize_run(run.steps, s, lr=lr, wd=wd, eff_sharpness=model.eff_sharpness)
        rows[label]["final_si_norm"] = s["si_norm"][-1]
        rows[label]["rms_eff_grad_norm"] = np.sqrt(np.mean(s["eff_grad_norm"][steps // 2 :] ** 2))
    assert {label: row["regime"] for label, row in rows.items()} == {k: k for k in rows}
    assert rows["periodic"]["n_destabilizations"] >= 5
    eq = rows["equilibrium"]
    assert eq["n_destabilizations"] == 0
    predicted = theory.equilibrium_si_norm(eq["rms_eff_grad_norm"], 0.1, 0.01)
    assert_allclose(eq["final_si_norm"], predicted, rtol=0.05)


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
    from simulate.sweep import simulate_grid

    summary = simulate_grid(_BreaksAt(50), [1.0], [0.005, 0.01], steps=400, out=tmp_path, progress=False)
    first, second = summary["rows"]
    assert second["regime"] == "diverged" and second["diverged_at"] == 50
    assert first["regime"] != "diverged" and first["diverged_at"] is None
    steps, series = read_series_csv(tmp_path / "series" / f"{second['run_id']}.csv")
    assert np.isnan(series["si_norm"][steps >= 50]).all() and np.isfinite(series["si_norm"][steps < 50]).all()


def test_predicted_periods_recover_pure_decay_exactly():
    """On an η̃ series made of pure decay with known resets, the period law predicts every period."""
    lr, wd, elr_reset, elr_c = 1.0, 0.01, 0.2, 0.9
    length = int(np.ceil(theory.period_length(elr_reset, elr_c, lr, wd)))
    one = elr_reset * (1 - lr * wd) ** (-2.0 * np.arange(length + 1))
    elr = np.concatenate([one[:-1]] * 4 + [one])
    events = np.arange(5) * length - 1
    events[0] = 0
    predicted = predicted_periods(elr, events[1:], lr, wd, 0.0, elr_c)
    assert_allclose(predicted, length, atol=1.0)


def test_frequency_slope_recovers_a_power_law():
    lr_wd = np.geomspace(1e-3, 2e-2, 6)
    fit = frequency_slope(lr_wd, 3.0 * lr_wd**1.0 * np.exp(0.01 * np.sin(np.arange(6))))
    assert fit["slope_ci"][0] < 1.0 < fit["slope_ci"][1] and abs(fit["slope"] - 1) < 0.02
    assert np.isnan(frequency_slope([1e-3], [1.0])["slope"])


def test_threshold_crossings_on_a_known_series():
    steps, values = [0, 10, 11, 12, 13, 14, 15], [5.0, 1.0, 1.5, 2.5, 1.9, 2.2, 9.0]
    first, second = threshold_crossings(steps, values, [16, 20], 2.0)
    assert (first["below_at"], first["below"], first["crossing_at"], first["crossing"]) == (13, 1.9, 14, 2.2)
    assert (first["last_measured_at"], first["last"], first["steps_crossing_to_event"]) == (15, 9.0, 2)
    assert second["below_at"] is None and second["crossing_at"] is None and second["last_measured_at"] == 15
    (early,) = threshold_crossings(steps, values, [13], 2.0)
    assert (early["below_at"], early["crossing_at"], early["steps_crossing_to_event"]) == (13, None, None)
    (on_the_step,) = threshold_crossings(steps, values, [14], 2.0)  # measured before the step's update: counts
    assert (on_the_step["crossing_at"], on_the_step["steps_crossing_to_event"]) == (14, 0)
    assert threshold_crossings(steps, values, [], 2.0) == []
    with pytest.raises(ValueError, match="increasing"):
        threshold_crossings([3, 1], [1.0, 2.0], [5], 2.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 200), st.floats(0.0, 5.0)), min_size=1, max_size=40, unique_by=lambda m: m[0]),
    st.lists(st.integers(0, 210), min_size=1, max_size=6, unique=True),
)
def test_threshold_crossings_bracket_the_threshold(measurements, events):
    """Below the threshold at ``below_at``, at or above it at the next measurement and at every one up to the event."""
    steps, values = map(np.array, zip(*sorted(measurements), strict=True))
    events = sorted(events)
    found = threshold_crossings(steps, values, events, 2.0)
    assert [f["event"] for f in found] == events
    for previous, event, f in zip([-1, *events], events, found, strict=False):
        before = steps <= event
        assert f["last_measured_at"] == (steps[before].max() if before.any() else None)
        window = (steps > previous) & before
        if f["below_at"] is None:
            assert np.all(values[window] >= 2.0)
            continue
        assert previous < f["below_at"] <= event and f["below"] < 2.0
        after = window & (steps > f["below_at"])
        assert np.all(values[after] >= 2.0)
        if f["crossing_at"] is None:
            assert not after.any()
        else:
            assert f["crossing_at"] == steps[after].min() and f["crossing"] >= 2.0
            assert f["steps_crossing_to_event"] == event - f["crossing_at"] >= 0


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


def test_bnwd_simulate_writes_summary_plot_and_series(tmp_path, capsys):
    out = tmp_path / "sim"
    argv = ["simulate", "--lr", "1,2", "--wd", "0.005,0.01", "--steps", "3000", "--dim", "16", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "slope of log frequency vs log ηλ" in printed
    summary = json.loads((out / "summary.json").read_text())
    keys = {
        "lr",
        "wd",
        "momentum",
        "regime",
        "n_destabilizations",
        "period_measured",
        "period_predicted",
        "relative_error",
    }
    assert len(summary["rows"]) == 4 and all(keys <= set(row) for row in summary["rows"])
    assert {"slope", "slope_ci", "n_points"} <= set(summary["frequency_slope"])
    assert (out / "period_vs_etalambda.png").stat().st_size > 10_000
    assert len(list((out / "series").glob("*.csv"))) == 4


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--lr", ""], "positive finite numbers"),
        (["--lr", "0,1"], "positive finite numbers"),
        (["--lr", "abc"], "not a comma-separated list"),
        (["--lr", "1", "--wd", "2"], "lr * wd must be < 1"),
        (["--model", "nope"], "invalid choice"),
        (["--steps", "0"], "must be >= 1"),
        (["--momentum", "1"], "momentum values in [0, 1)"),
        (["--noise", "-1"], "one non-negative number"),
        (["--noise", "1,2"], "one non-negative number"),
        (["--si-norm0", "0"], "one positive finite number"),
    ],
)
def test_bnwd_simulate_bad_input_is_one_line_exit_two(argv, fragment, tmp_path, capsys):
    assert main(["simulate", *argv, "--out", str(tmp_path / "never")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and fragment in captured.err
    assert not (tmp_path / "never").exists()


def test_period_plot_without_any_period_is_still_written(tmp_path):
    from simulate.plots import plot_period_vs_lr_wd

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


@settings(max_examples=10, deadline=None)
@given(lr_wd=st.sampled_from([0.002, 0.005, 0.01]), start=st.floats(0.2, 0.45))
def test_convergence_depth_is_the_toys_shrinking_angle(lr_wd, start):
    # the 2-D Rayleigh toy (minimum and top direction, s̃ = 1) from a small angle at η̃_s = start·η̃_c: by the
    # time η̃ reaches η̃_c the angle has shrunk by the depth
    model, lr = RayleighQuotient(np.array([0.0, 0.5]), noise=0.0), 1.0
    critical = float(theory.critical_elr(1.0, lr, lr_wd))
    w = np.array([[math.cos(1e-6), math.sin(1e-6)]]) * math.sqrt(lr / (start * critical))
    steps = int(theory.period_length(start * critical, critical, lr, lr_wd))
    for _ in range(steps):
        w = (1 - lr_wd) * w - lr * model.loss_and_grad(w, None)[1]
    shrunk = math.log(abs(math.atan2(w[0, 1], w[0, 0])) / 1e-6)
    assert shrunk == pytest.approx(float(convergence_depth(start * critical, critical, lr, lr_wd)[()]), abs=0.05)


def test_the_escape_delay_brings_the_deterministic_toys_period_law_close(tmp_path):
    # without noise the period law alone is about half the measured period; with the delay from the depth of
    # convergence (floored at float64 rounding) it is within 20 % on these configs
    from simulate.sweep import simulate_grid

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
    from simulate.sweep import simulate_grid

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
