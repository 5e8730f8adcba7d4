"""The trainer on real scale-invariant nets (float64, CPU): theory holds step by step, resume is bit-identical."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose

from bnwd import theory
from bnwd.analysis.schema import SERIES, SERIES_FIELDS, SUMMARY_FIELDS, validate
from bnwd.empirical.curvature import effective_sharpness
from bnwd.empirical.data import load_dataset
from bnwd.empirical.monitor import SHARPNESS_TOL
from bnwd.empirical.nets import build_model
from bnwd.empirical.runs import RunSpec, build_trainer
from bnwd.empirical.scale_invariance import exact_batchnorm_
from bnwd.empirical.trainer import TrainConfig, Trainer


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", dtype=torch.float64)


def _model(data, seed=0, width=4, exact=True):
    torch.manual_seed(seed)
    model = build_model("convnet_si", width=width, in_channels=data.in_channels, n_classes=data.n_classes)
    model = model.double()
    return exact_batchnorm_(model) if exact else model


def _series(trainer, key):
    return np.array([r[key] for r in trainer.series])


def test_si_groups_are_exactly_the_pre_bn_convolutions(digits, tmp_path):
    trainer = Trainer(_model(digits), digits, TrainConfig(lr=0.1, wd=1e-3, steps=1), tmp_path)
    convs = [n for n, m in trainer.model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    assert trainer.si_groups == [[f"{name}.weight"] for name in convs]


def test_norm_recursion_predicts_every_step(digits, tmp_path):
    lr, wd = 0.5, 5e-3
    trainer = Trainer(_model(digits), digits, TrainConfig(lr=lr, wd=wd, steps=60, batch_size=64), tmp_path)
    trainer.run(progress=False)
    rho, grad = _series(trainer, "si_norm"), _series(trainer, "grad_norm")
    assert_allclose(rho[1:] ** 2, theory.si_norm_after_step(rho[:-1], grad[:-1], lr, wd) ** 2, rtol=1e-10)
    assert_allclose(_series(trainer, "elr"), lr / rho**2, rtol=1e-13)
    no_momentum = theory.angular_update(_series(trainer, "elr"), _series(trainer, "eff_grad_norm"), lr, wd)
    assert_allclose(_series(trainer, "angular_update"), no_momentum, rtol=1e-8)


def test_fixed_norm_and_fixed_elr_keep_the_norm(digits, tmp_path):
    fixed = Trainer(_model(digits), digits, TrainConfig(lr=0.5, wd=5e-3, steps=30, fix_norm=3.0), tmp_path / "a")
    fixed.run(progress=False)
    assert_allclose(_series(fixed, "si_norm"), 3.0, rtol=1e-12)
    elr = Trainer(_model(digits), digits, TrainConfig(lr=1.0, wd=5e-3, steps=30, fix_elr=0.02), tmp_path / "b")
    elr.run(progress=False)
    assert_allclose(_series(elr, "elr"), 0.02, rtol=1e-12)


def test_symmetry_on_a_real_net(digits, tmp_path):
    """(η, λ, ρ₀) → (cη, λ/c, √c·ρ₀): the same directions, the same η̃, over hundreds of steps."""
    lr, wd, c, steps = 0.3, 0.01, 4.0, 300
    runs = []
    for scale in (1.0, c):
        model = _model(digits)
        trainer = Trainer(
            model, digits, TrainConfig(lr=lr * scale, wd=wd / scale, steps=steps, momentum=0.5), tmp_path / str(scale)
        )
        with torch.no_grad():
            torch._foreach_mul_(trainer.si_params, scale**0.5)
        trainer.run(progress=False)
        runs.append(trainer)
    base, scaled = runs
    assert_allclose(_series(scaled, "elr"), _series(base, "elr"), rtol=1e-8)
    for p, q in zip(base.si_params, scaled.si_params, strict=True):
        assert_allclose((q / q.norm()).detach().numpy(), (p / p.norm()).detach().numpy(), atol=1e-9)


def test_resume_is_bit_identical(digits, tmp_path):
    def config(steps):
        return TrainConfig(
            lr=0.5, wd=0.01, steps=steps, momentum=0.9, batch_size=64, augment=True, checkpoint_every=25, seed=3
        )

    straight = Trainer(_model(digits, exact=False), digits, config(50), tmp_path / "straight")
    straight.run(progress=False)
    Trainer(_model(digits, exact=False), digits, config(25), tmp_path / "first").run(progress=False)
    shutil.copytree(tmp_path / "first", tmp_path / "resumed")
    resumed = Trainer(_model(digits, seed=99, exact=False), digits, config(50), tmp_path / "resumed")
    assert resumed.resume() and resumed.step == 25
    resumed.run(progress=False)
    assert json.dumps(resumed.series) == json.dumps(straight.series)
    for p, q in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(p, q)


def test_full_batch_gd_is_deterministic_and_uses_the_full_loss(digits, tmp_path):
    runs = []
    for name in ("a", "b"):
        config = TrainConfig(lr=0.5, wd=0.01, steps=5, full_batch=True, batch_size=128)
        trainer = Trainer(_model(digits), digits, config, tmp_path / name)
        trainer.run(progress=False)
        runs.append(trainer)
    assert json.dumps(runs[0].series) == json.dumps(runs[1].series)
    model = _model(digits)  # the first step's loss: the mean over all ghost batches of 128, in a fixed order
    with torch.no_grad():
        parts = torch.arange(digits.n_train).split(128)
        losses = [F.cross_entropy(model(digits.train_x[p]), digits.train_y[p], reduction="sum") for p in parts]
    assert runs[0].series[0]["loss"] == pytest.approx(float(sum(losses)) / digits.n_train, rel=1e-12)


def test_a_nan_loss_stops_the_run_cleanly(digits, tmp_path):
    broken = load_dataset("digits", dtype=torch.float64)
    broken.train_x[-1] = float("nan")  # in the last batch of the first epoch
    trainer = Trainer(_model(broken), broken, TrainConfig(lr=0.5, wd=0.01, steps=100, batch_size=256), tmp_path)
    summary = trainer.run(progress=False)
    per_epoch = -(-broken.n_train // 256)
    assert summary["regime"] == "diverged" and summary["diverged_at"] < per_epoch
    assert len(trainer.series) == summary["diverged_at"] + 1
    assert json.loads((tmp_path / "summary.json").read_text())["regime"] == "diverged"


def test_a_measured_run_goes_through_the_simulated_runs_analysis(digits, tmp_path):
    from bnwd.analysis.records import read_series
    from bnwd.analysis.summary import summarize_run

    trainer = Trainer(_model(digits), digits, TrainConfig(lr=1.0, wd=0.01, steps=120), tmp_path)
    trainer.run(progress=False)
    steps, series = read_series(tmp_path / "series.jsonl")
    assert set(series) == set(SERIES) and np.array_equal(steps, np.arange(120))
    assert_allclose(series["si_norm"], _series(trainer, "si_norm"))
    row = summarize_run(steps, series, lr=1.0, wd=0.01)
    assert json.dumps(row) == json.dumps(trainer.summary())  # NaN included


def test_with_momentum_the_heavy_ball_threshold_is_reported_where_the_theory_gives_one(tmp_path):
    spec = RunSpec(width=2, train_subset=64, batch_size=64, lr=0.5, wd=0.001, momentum=0.5, steps=20, eval_points=0)
    summary = build_trainer(replace(spec, sharpness_every=10, device="cpu"), tmp_path / "in").run(progress=False)
    assert summary["elr_times_sharpness_threshold"] == pytest.approx(float(theory.stability_threshold(0.5, 0.001, 0.5)))
    assert summary["elr_times_sharpness_threshold"] > 2.9  # ≈ 2(1+β), not plain GD's 2(1−ηλ)
    # ηλ above (1−√β)²: the norm decays in oscillations and no threshold is derived; s̃ is still measured
    trainer = build_trainer(replace(spec, wd=0.01, momentum=0.9, sharpness_every=10, device="cpu"), tmp_path / "out")
    summary = trainer.run(progress=False)
    measured = [r["step"] for r in trainer.series if "eff_sharpness" in r]
    assert measured[0] == 0 and np.all(np.diff(measured) <= 10)
    assert "elr_times_sharpness_threshold" not in summary
    assert "elr_times_sharpness_before_destabilization" not in summary


def test_sharpness_is_recorded_and_each_crossing_located_to_one_step(tmp_path):
    # full-batch GD on 64 digits: η̃·s̃ rises through 2(1−ηλ) before each destabilisation
    every, lr, wd = 20, 1.0, 0.03
    spec = RunSpec(
        width=4,
        train_subset=64,
        full_batch=True,
        batch_size=64,
        lr=lr,
        wd=wd,
        steps=110,
        sharpness_every=every,
        eval_points=0,
        device="cpu",
    )
    trainer = build_trainer(spec, tmp_path / "straight")
    summary = trainer.run(progress=False)
    measured = [r for r in trainer.series if "eff_sharpness" in r]
    steps = np.array([r["step"] for r in measured])
    assert steps[0] == 0 and np.all(np.diff(steps) <= every) and len(measured) < 110 / 2
    for r in measured:
        assert r["elr_times_sharpness"] == pytest.approx(r["elr"] * r["eff_sharpness"], rel=1e-12)
        assert r["eff_sharpness"] == pytest.approx(r["sharpness"] * r["si_norm"] ** 2, rel=1e-6)
    # every upward crossing between two measurements is one step wide (bisection over the kept weights)
    threshold = 2 * (1 - lr * wd)
    values = np.array([r["elr_times_sharpness"] for r in measured])
    up = np.flatnonzero((values[:-1] < threshold) & (values[1:] >= threshold))
    assert up.size and np.all(steps[up + 1] - steps[up] == 1)
    # a measurement at a past step equals one taken at that step (the shadow model holds its weights)
    probe = build_trainer(replace(spec, steps=int(steps[up[0]]), sharpness_every=0), tmp_path / "probe")
    probe.run(progress=False)
    batches = [(probe.data.train_x, probe.data.train_y)]
    at_step = effective_sharpness(probe.model, batches, probe.si_params, tol=SHARPNESS_TOL)  # at the live weights
    assert at_step.eff_sharpness == measured[up[0]]["eff_sharpness"]
    # measuring changes nothing in the training
    plain = build_trainer(replace(spec, sharpness_every=0), tmp_path / "plain")
    plain.run(progress=False)
    for key in ("loss", "si_norm", "eff_grad_norm"):
        assert [r[key] for r in plain.series] == [r[key] for r in trainer.series], key
    assert summary["elr_times_sharpness_threshold"] == threshold
    before = summary["elr_times_sharpness_before_destabilization"]
    assert [b["event"] for b in before] == summary["events"] and summary["events"]
    assert all(b["last_measured_at"] <= b["event"] for b in before)
    assert any(b["crossing_at"] is not None and b["crossing_at"] - b["below_at"] == 1 for b in before)
    written = (tmp_path / "straight" / "series.jsonl").read_text(encoding="utf-8").splitlines()
    for line in written:
        validate(json.loads(line), SERIES_FIELDS, required=("step", *SERIES))
    written = json.loads((tmp_path / "straight" / "summary.json").read_text(encoding="utf-8"))
    validate(
        written,
        SUMMARY_FIELDS,
        required=("elr_times_sharpness_threshold", "elr_times_sharpness_before_destabilization"),
    )

    # resumed from a checkpoint, the training is the same bit for bit; the schedule goes on from the last
    # measurement (with an empty ring buffer, a crossing bracketed across the resume is not bisected), and a step
    # measured by both runs has the same value: a measurement depends on its step's weights and batch alone
    middle = int(steps[up[0]]) + 1
    build_trainer(replace(spec, steps=middle, checkpoint_every=middle), tmp_path / "resumed").run(False)
    resumed = build_trainer(spec, tmp_path / "resumed")
    assert resumed.resume() and resumed.step == middle
    resumed.run(progress=False)
    assert [r["loss"] for r in resumed.series] == [r["loss"] for r in trainer.series]
    again = {r["step"]: r["eff_sharpness"] for r in resumed.series if "eff_sharpness" in r}
    common = sorted(set(again) & set(steps.tolist()))
    assert len(common) >= len(measured) // 2
    assert [again[t] for t in common] == [r["eff_sharpness"] for r in measured if r["step"] in again]


def test_batch_sharpness_on_a_schedule(tmp_path):
    spec = RunSpec(width=2, train_subset=128, batch_size=32, lr=1.0, wd=0.01, steps=25, eval_points=0, device="cpu")
    trainer = build_trainer(replace(spec, batch_sharpness_every=10), tmp_path / "b")
    trainer.run(progress=False)
    measured = [r for r in trainer.series if "eff_batch_sharpness" in r]
    assert [r["step"] for r in measured] == [0, 10, 20]
    for r in measured:
        assert r["eff_batch_sharpness_ci_low"] <= r["eff_batch_sharpness"] <= r["eff_batch_sharpness_ci_high"]
        assert r["eff_batch_sharpness"] == pytest.approx(r["batch_sharpness"] * r["si_norm"] ** 2, rel=1e-6)
        assert r["elr_times_batch_sharpness"] == pytest.approx(r["elr"] * r["eff_batch_sharpness"], rel=1e-12)
        validate(r, SERIES_FIELDS)
    plain = build_trainer(spec, tmp_path / "p")
    plain.run(progress=False)
    assert [r["loss"] for r in plain.series] == [r["loss"] for r in trainer.series]  # its draws are its own


def test_a_given_optimizer_is_used_as_it_is_and_its_settings_are_recorded(digits, tmp_path):
    model = _model(digits)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3, weight_decay=0.02)
    config = TrainConfig(lr=1.0, wd=0.01, steps=5, eval_points=0)
    summary = Trainer(model, digits, config, tmp_path, optimizer=optimizer).run(progress=False)
    written = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert (written["lr"], written["wd"], written["lr_effective"]) == (0.3, 0.02, 0.3)
    assert (summary["lr"], summary["wd"]) == (0.3, 0.02)
    with pytest.raises(ValueError, match="fix_elr"):
        Trainer(model, digits, replace(config, fix_elr=0.1), tmp_path, optimizer=optimizer)
