"""empirical.monitor.Monitor inside loops bnwd did not write (float64, CPU): the exact norm recursion with the
scheduled η, closures, clipping, accumulation, skipped steps, other optimizers, buffering, bad input, and the
early warning's columns (the warning online as offline, the cosine of consecutive SI gradients)."""

from __future__ import annotations

import json
import math
import re
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from bnwd import theory
from bnwd.analysis.early_warning import MIN_HISTORY, alarm_onsets, warnings_of
from bnwd.analysis.schema import SERIES_FIELDS, SUMMARY_FIELDS, validate
from bnwd.empirical import monitor as empirical_monitor
from bnwd.empirical.config import TrainConfig
from bnwd.empirical.curvature import effective_sharpness
from bnwd.empirical.data import load_dataset
from bnwd.empirical.lightning_callback import MonitorCallback
from bnwd.empirical.monitor import SHARPNESS_TOL, Monitor
from bnwd.empirical.scale_invariance import EXACT_BN_EPS, find_si_groups

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# the examples' names, run from their files as a user would run them (not as __main__)
RESNET = SimpleNamespace(**runpy.run_path(str(EXAMPLES / "resnet_steplr.py")))
LIGHTNING = SimpleNamespace(**runpy.run_path(str(EXAMPLES / "lightning_callback.py")))


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("digits", dtype=torch.float64)
    return data.train_x[:256], data.train_y[:256]


@pytest.fixture(scope="module")
def si_groups(digits):
    """The SI groups of :func:`_model`, found once: the search takes most of a Monitor's construction."""
    return find_si_groups(_model(), digits[0][:32], digits[1][:32])


def _model(seed=0, width=2):
    torch.manual_seed(seed)
    return RESNET.SmallResNet(width=width, eps=EXACT_BN_EPS).double()


def _column(records, key):
    return np.array([r[key] for r in records])


def recursion_error(records, lr=None) -> np.ndarray:
    """|ρ⁺²/((1−ηλ)²ρ² + η²‖∇L‖²) − 1| at every step, with each record's η (or ``lr`` instead)."""
    rho, grad, wd = _column(records, "si_norm"), _column(records, "grad_norm"), _column(records, "wd")
    lr = _column(records, "lr") if lr is None else lr
    predicted = theory.si_norm_after_step(rho[:-1], grad[:-1], lr[:-1], wd[:-1])
    return np.abs(rho[1:] ** 2 / predicted**2 - 1)


def _loop(model, optimizer, data, steps, *, monitor=None, closure=False, batch=64, **log):
    """A user's loop: minibatches in order, ``steps`` optimizer steps, the monitor's log after each."""
    x_all, y_all = data
    for t in range(steps):
        start = (t * batch) % (x_all.shape[0] - batch + 1)
        x, y = x_all[start : start + batch], y_all[start : start + batch]

        def step_loss(x=x, y=y):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            return loss

        loss = optimizer.step(step_loss) if closure else (step_loss(), optimizer.step())[0]
        if monitor is not None:
            monitor.log(loss=loss.detach(), batch=(x, y), **log)


@pytest.fixture(scope="module")
def resnet_run():
    return RESNET.train(90, lr_step=30, dtype=torch.float64, eps=EXACT_BN_EPS)


def test_the_readme_example_obeys_the_norm_recursion_with_the_scheduled_lr(resnet_run):
    summary, records = resnet_run
    lr = _column(records, "lr")
    assert sorted(set(lr), reverse=True) == [1.0, 0.5, 0.25]  # StepLR halved η twice
    assert recursion_error(records).max() < 1e-10
    # the control: the first η kept (a stale copy of the learning rate) breaks it once the schedule moves
    assert recursion_error(records, np.full(lr.size, lr[0]))[30:].min() > 1e-6
    rho = _column(records, "si_norm")
    assert_allclose(_column(records, "elr"), lr / rho**2, rtol=1e-13)
    no_momentum = theory.angular_update(_column(records, "elr"), _column(records, "eff_grad_norm"), lr, 0.01)
    assert_allclose(_column(records, "angular_update"), no_momentum, rtol=1e-8)
    for record in records:
        validate(record, SERIES_FIELDS)
    validate(summary, SUMMARY_FIELDS)


@settings(max_examples=12)
@given(
    lr=st.floats(0.01, 2.0),
    wd=st.floats(0.0, 0.05),
    gamma=st.floats(0.1, 1.0),
    clip=st.none() | st.floats(0.05, 5.0),
    accumulate=st.integers(1, 3),
)
def test_the_recursion_holds_under_any_schedule_clipping_and_accumulation(digits, lr, wd, gamma, clip, accumulate):
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)
    monitor = Monitor(model, optimizer, probe=(digits[0][:32], digits[1][:32]))
    x_all, y_all = digits
    for t in range(10):
        optimizer.zero_grad()
        for k in range(accumulate):  # micro-batches of 32: the step applies their summed gradient
            part = slice(32 * (t + k) % 224, 32 * (t + k) % 224 + 32)
            F.cross_entropy(model(x_all[part]), y_all[part]).backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        scheduler.step()
        monitor.log()
    records = monitor.records()
    assert recursion_error(records).max() < 1e-10
    assert_allclose(_column(records, "lr"), lr * gamma ** np.arange(10), rtol=1e-12)
    if clip is not None:
        assert np.all(_column(records, "grad_norm") <= clip * (1 + 1e-12))  # the SI part of a clipped gradient


def test_a_closure_step_buffered_transfers_and_sharpness_change_no_value(digits):
    runs = {}
    for name, kwargs, closure in (
        ("plain", {}, False),
        ("closure", {}, True),
        ("buffered", {"sync_every": 7}, False),
        ("sharpness", {"sharpness_every": 4}, False),
    ):
        model = _model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.3, weight_decay=0.01, momentum=0.5)
        monitor = Monitor(model, optimizer, probe=(digits[0][:32], digits[1][:32]), **kwargs)
        _loop(model, optimizer, digits, 20, monitor=monitor, closure=closure)
        runs[name] = monitor.records()
    keys = ("loss", "si_norm", "grad_norm", "elr", "eff_grad_norm", "angular_update", "si_norm_per_tensor", "lr")
    for name in ("closure", "buffered", "sharpness"):
        for key in keys:
            assert _column(runs[name], key).tolist() == _column(runs["plain"], key).tolist(), (name, key)
    measured = [r for r in runs["sharpness"] if "eff_sharpness" in r]
    assert measured[0]["step"] == 0 and np.all(np.diff([r["step"] for r in measured]) <= 4)
    for r in measured:
        assert r["eff_sharpness"] == pytest.approx(r["sharpness"] * r["si_norm"] ** 2, rel=1e-6)
        assert r["elr_times_sharpness"] == pytest.approx(r["elr"] * r["eff_sharpness"], rel=1e-12)


def test_sharpness_is_that_of_the_steps_batch_before_its_update(digits):
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3, weight_decay=0.01)
    monitor = Monitor(model, optimizer, probe=(digits[0][:32], digits[1][:32]), sharpness_every=1)
    _loop(model, optimizer, digits, 5, monitor=monitor)
    batch = (digits[0][-64:], digits[1][-64:])
    direct = effective_sharpness(model, [batch], monitor.si_params, tol=SHARPNESS_TOL)  # the weights before step 5
    _loop(model, optimizer, batch, 1, monitor=monitor)  # step 5 on that batch
    assert monitor.records()[5]["eff_sharpness"] == direct.eff_sharpness


def test_steps_a_grad_scaler_skips_leave_no_record(digits):
    model = _model().float()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-3)
    scaler = torch.amp.GradScaler("cpu")
    x, y = digits[0][:64].float(), digits[1][:64]
    monitor = Monitor(model, optimizer, probe=(x, y))
    for t in range(6):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y) * (float("inf") if t == 2 else 1.0)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        monitor.log(loss=loss.detach())
    assert monitor.skipped_steps == 1
    assert _column(monitor.records(), "step").tolist() == [0, 1, 2, 3, 4]
    assert np.isfinite(_column(monitor.records(), "loss")).all()


@pytest.fixture(scope="module")
def warned_run(digits):
    """A run long enough for the early warning to switch on (width 4, lr 1, wd 0.03, 300 steps) with
    ``sync_every=1``: its monitor, the SI gradient of each step taken by hand, and per step the record's warning
    beside :attr:`Monitor.warning` as the record reached the host."""
    model = _model(width=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0, weight_decay=0.03)
    seen = []
    monitor = Monitor(
        model,
        optimizer,
        probe=(digits[0][:32], digits[1][:32]),
        sync_every=1,
        on_records=lambda records: seen.append((records[-1]["warning"], monitor.warning)),
    )
    grads = []
    optimizer.register_step_pre_hook(
        lambda *_: grads.append(torch.cat([p.grad.reshape(-1) for p in monitor.si_params]))
    )
    _loop(model, optimizer, digits, 300, monitor=monitor)
    return monitor, torch.stack(grads), seen


def test_the_records_warning_is_the_early_warning_of_their_own_elr(warned_run):
    monitor, _, seen = warned_run
    records = monitor.records()
    offline = warnings_of(*(_column(records, key) for key in ("step", "elr", "lr", "wd", "momentum")))
    assert_array_equal(_column(records, "warning"), offline["warning"])
    assert_array_equal(_column(records, "steps_to_threshold"), offline["steps_to_threshold"])
    # not vacuous: destabilisations enough for a prediction, and the warning switched on
    assert len(monitor.early_warning.peaks) > MIN_HISTORY and alarm_onsets(offline["warning"]).size
    assert len(seen) == len(records) and all(on == bool(warning) for warning, on in seen)
    for record in records:
        validate(record, SERIES_FIELDS)


def test_grad_cosine_is_the_cosine_of_consecutive_si_gradients(warned_run):
    monitor, grads, _ = warned_run
    by_hand = F.cosine_similarity(grads[1:], grads[:-1], dim=1, eps=0.0).numpy()
    recorded = _column(monitor.records(), "grad_cosine")
    assert math.isnan(recorded[0])  # no step before the first
    assert_allclose(recorded[1:], by_hand, rtol=1e-10, atol=1e-14)
    assert by_hand.min() < 0 < by_hand.max()  # both signs: the sign flip past the threshold shows


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda params: torch.optim.AdamW(params, lr=1e-3), "AdamW is not SGD"),
        (lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True), "Nesterov"),
    ],
)
def test_other_optimizers_get_what_is_well_defined_and_say_what_is_not(digits, tmp_path, make, reason):
    model = _model()
    optimizer = make(model.parameters())
    with pytest.warns(UserWarning, match=reason):
        monitor = Monitor(model, optimizer, probe=(digits[0][:32], digits[1][:32]), out=tmp_path)
    _loop(model, optimizer, digits, 5, monitor=monitor)
    records = monitor.records()
    assert {"si_norm", "grad_norm", "angular_update", "loss"} <= set(records[0])
    assert monitor.close() is None
    assert set(monitor.not_computed) == set(empirical_monitor.THEORY_QUANTITIES)
    assert reason in monitor.not_computed["elr"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "series.jsonl"]
    # what the theory does not cover is a column of NaN, not a missing one
    series = pd.read_json(tmp_path / "series.jsonl", lines=True)
    assert series[["elr", "eff_grad_norm"]].isna().all().all() and series["si_norm"].notna().all()


def test_adamw_records_its_beta1_as_momentum_and_says_its_weight_decay_is_decoupled(digits, si_groups, tmp_path):
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.999), weight_decay=0.05)
    with pytest.warns(UserWarning, match="AdamW is not SGD"):
        monitor = Monitor(model, optimizer, probe=(digits[0][:32], digits[1][:32]), si_groups=si_groups, out=tmp_path)
    _loop(model, optimizer, digits, 3, monitor=monitor)
    monitor.close()
    series = pd.read_json(tmp_path / "series.jsonl", lines=True)
    assert series["momentum"].tolist() == [0.8] * 3 and series["wd"].tolist() == [0.05] * 3
    read_from = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))["hyperparameters_read_from"]
    assert read_from["momentum"].startswith("betas[0]") and "decoupled" in read_from["wd"]


def test_close_writes_config_records_and_summary_and_refuses_a_second_close(digits, si_groups, tmp_path):
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, weight_decay=0.01)
    monitor = Monitor(
        model, optimizer, probe=(digits[0][:32], digits[1][:32]), si_groups=si_groups, out=tmp_path / "run"
    )
    _loop(model, optimizer, digits, 12, monitor=monitor)
    assert not (tmp_path / "run").exists()  # fewer records than a chunk: nothing streamed yet
    summary = monitor.close()
    written = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert json.dumps(written["events"]) == json.dumps(summary["events"])
    config = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert (config["optimizer"], config["lr"], config["wd"], config["lr_varies"]) == ("SGD", 0.5, 0.01, False)
    assert len((tmp_path / "run" / "series.jsonl").read_text(encoding="utf-8").splitlines()) == 12
    with pytest.raises(RuntimeError, match="closed already"):
        monitor.close()
    with pytest.raises(RuntimeError, match="after close"):
        monitor.log(loss=1.0)
    optimizer.step()  # detached: a step after close() records nothing
    assert len(monitor.records()) == 12


def test_without_the_loss_there_is_no_summary_and_it_says_why(digits, si_groups, tmp_path):
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, weight_decay=0.01)
    monitor = Monitor(model, optimizer, probe=(digits[0][:32], digits[1][:32]), si_groups=si_groups, out=tmp_path)
    _loop(model, optimizer, digits, 3)
    assert monitor.close() is None
    assert "no loss given to log() at 3 steps" in monitor.not_computed["summary"]


def test_under_ddp_only_rank_zero_writes(digits, si_groups, tmp_path, monkeypatch):
    monkeypatch.setattr(empirical_monitor, "_distributed_rank", lambda: 1)
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, weight_decay=0.01)
    monitor = Monitor(
        model, optimizer, probe=(digits[0][:32], digits[1][:32]), si_groups=si_groups, out=tmp_path / "rank1"
    )
    _loop(model, optimizer, digits, 3, monitor=monitor)
    assert monitor.close() is not None and not (tmp_path / "rank1").exists()


def _split_groups(model):
    convs = [p for n, p in model.named_parameters() if n.startswith("stem")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("stem")]
    return torch.optim.SGD([{"params": convs, "lr": 0.1}, {"params": rest, "lr": 0.2}], lr=0.1, weight_decay=1e-3)


@pytest.mark.parametrize(
    "build, fragment",
    [
        (lambda m, d: (torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).double(), None, d), "no scale"),
        (lambda m, d: (m, None, (d[0][:32].repeat(1, 3, 1, 1), d[1][:32])), "probe does not fit"),
        (lambda m, d: (m, None, (d[0][:1], d[1][:1])), "at least 2 samples"),
        (lambda m, d: (m, None, d[0][:32]), "pair (inputs, targets)"),
        (lambda m, d: (m, torch.optim.SGD(m.head.parameters(), lr=0.1), d), "do not hold the scale-invariant"),
        (lambda m, d: (m, _split_groups(m), d), "different (lr, weight_decay"),
        (lambda m, d: (m.eval(), None, d), "eval mode"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error_and_nothing_written(digits, tmp_path, build, fragment):
    model, optimizer, probe = build(_model(), (digits[0][:32], digits[1][:32]))
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=re.escape(fragment)):
        Monitor(model, optimizer, probe=probe, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def _refusal(make) -> str | None:
    try:
        make()
    except ValueError as error:
        return str(error)
    return None


@settings(max_examples=40, deadline=None)
@given(
    lr=st.floats(0.0, 1e100) | st.sampled_from([math.inf, math.nan]),  # bounded: ηλ stays finite
    wd=st.floats(0.0, 1e100) | st.sampled_from([math.inf, math.nan]),
    momentum=st.floats(min_value=0.0, max_value=2.0) | st.just(math.nan),
)
def test_sgd_settings_are_refused_at_construction_in_the_clis_words(digits, si_groups, lr, wd, momentum):
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd, momentum=momentum)
    refused = _refusal(lambda: Monitor(model, optimizer, probe=(digits[0][:32], digits[1][:32]), si_groups=si_groups))
    assert refused == _refusal(lambda: TrainConfig(lr=lr, wd=wd, momentum=momentum))


@pytest.mark.parametrize(
    "options, refusal",
    [({"lr": math.inf}, "lr must be finite and > 0; got inf"), ({"weight_decay": math.inf}, "wd must be finite")],
)
def test_other_optimizers_settings_are_refused_where_they_make_no_sense(digits, si_groups, options, refusal):
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), **options)
    with pytest.raises(ValueError, match=re.escape(refusal)):
        Monitor(model, optimizer, probe=(digits[0][:32], digits[1][:32]), si_groups=si_groups)


def test_a_schedule_that_sets_lr_zero_leaves_elr_nan_there(digits, si_groups):
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: float(step != 1))
    monitor = Monitor(model, optimizer, probe=(digits[0][:32], digits[1][:32]), si_groups=si_groups)
    for _ in range(3):
        _loop(model, optimizer, digits, 1, monitor=monitor)
        schedule.step()
    records = monitor.records()
    assert _column(records, "lr").tolist() == [0.5, 0.0, 0.5]
    assert np.isnan(_column(records, "elr")).tolist() == [False, True, False]
    assert np.isfinite(_column(records, "eff_grad_norm")).all()


def test_a_schedule_past_lr_wd_1_loses_no_record_and_the_summary_says_why_it_is_absent(digits, si_groups, tmp_path):
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, weight_decay=0.5)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 5.0 if 10 <= step < 15 else 1.0)
    monitor = Monitor(model, optimizer, probe=(digits[0][:32], digits[1][:32]), si_groups=si_groups, out=tmp_path)
    for _ in range(15):
        _loop(model, optimizer, digits, 1, monitor=monitor)
        schedule.step()
    assert monitor.summary() is None  # ηλ = 1.25 at the last step
    assert monitor.not_computed == {"summary": "η, λ, β of the last step: lr * wd must be < 1 (0 <= ηλ < 1); got 1.25"}
    for _ in range(5):
        _loop(model, optimizer, digits, 1, monitor=monitor)
        schedule.step()
    assert monitor.close() is not None and not monitor.not_computed  # back to ηλ = 0.25
    assert len(pd.read_json(tmp_path / "series.jsonl", lines=True)) == 20


def test_an_error_in_close_raises_after_the_records_and_config_are_written(digits, si_groups, tmp_path, monkeypatch):
    def failing_summary(*args):
        raise RuntimeError("the summary failed")

    monkeypatch.setattr(empirical_monitor, "summarize_records", failing_summary)
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, weight_decay=0.01)
    monitor = Monitor(model, optimizer, probe=(digits[0][:32], digits[1][:32]), si_groups=si_groups, out=tmp_path)
    _loop(model, optimizer, digits, 5, monitor=monitor)
    with pytest.raises(RuntimeError, match="the summary failed"):
        monitor.close()
    assert len(pd.read_json(tmp_path / "series.jsonl", lines=True)) == 5
    assert json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))["lr"] == 0.5
    assert not (tmp_path / "summary.json").exists()


def test_asking_for_the_summary_before_every_loss_is_given_keeps_the_theorys_columns(digits, si_groups):
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, weight_decay=0.01)
    monitor = Monitor(model, optimizer, probe=(digits[0][:32], digits[1][:32]), si_groups=si_groups)
    _loop(model, optimizer, digits, 2)  # no log(): no loss
    assert monitor.summary() is None
    _loop(model, optimizer, digits, 2, monitor=monitor)
    assert np.isfinite(_column(monitor.records(), "elr")).all()


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")  # lightning 2.6's use of torch's pytree
def test_the_lightning_example_logs_the_monitors_series_and_obeys_the_recursion(tmp_path):
    callback = LIGHTNING.train(40, out=str(tmp_path), precision="64-true", eps=EXACT_BN_EPS)
    records = callback.monitor.records()
    assert len(records) == 40 and recursion_error(records).max() < 1e-10
    logged = pd.read_csv(tmp_path / "metrics.csv")
    assert logged["step"].tolist() == list(range(40))
    for key in ("si_norm", "elr", "grad_norm", "angular_update", "loss", "warning", "steps_to_threshold"):
        assert_allclose(logged[f"bnwd/{key}"], _column(records, key), rtol=1e-15)
    validate(callback.summary, SUMMARY_FIELDS)
    assert (
        json.loads((tmp_path / "bnwd" / "summary.json").read_text(encoding="utf-8"))["regime"]
        == callback.summary["regime"]
    )


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")  # lightning 2.6's use of torch's pytree
def test_the_lightning_callback_logs_every_number_of_a_record_the_warning_and_nan_included(digits):
    """What reaches the loggers of one record: its floats (NaN kept) and the int ``warning``; not the step (it is
    the logging step), nor the per-tensor list. A 40-step fit never switches the warning on: a record here does."""
    logged = []
    logger = SimpleNamespace(log_metrics=lambda metrics, step: logged.append((step, metrics)))
    model = _model()
    trainer = SimpleNamespace(optimizers=[torch.optim.SGD(model.parameters(), lr=0.5, weight_decay=0.01)])
    trainer.loggers = [logger]
    callback = MonitorCallback()
    callback.on_train_batch_start(trainer, model, (digits[0][:32], digits[1][:32]), 0)
    record = {"step": 7, "elr": 0.25, "warning": 1, "steps_to_threshold": math.nan, "si_norm_per_tensor": [1.0, 2.0]}
    callback.monitor.on_records([record])
    assert len(logged) == 1 and logged[0][0] == 7
    metrics = logged[0][1]
    assert set(metrics) == {"bnwd/elr", "bnwd/warning", "bnwd/steps_to_threshold"}
    assert (
        metrics["bnwd/warning"] == 1 and metrics["bnwd/elr"] == 0.25 and math.isnan(metrics["bnwd/steps_to_threshold"])
    )


def test_a_step_without_a_gradient_on_the_si_weights_has_no_gradient_cosine(digits, si_groups):
    """A step whose SI gradient is all zero (a loop that zeroed it: a clip to 0, a frozen phase) has ‖∇L‖ = 0 and no
    angle with its neighbours: grad_cosine is NaN there and at the step after, not a division error."""
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-3)
    monitor = Monitor(model, optimizer, probe=(digits[0][:32], digits[1][:32]), si_groups=si_groups, sync_every=1)
    x, y = digits[0][:64], digits[1][:64]
    for step in range(4):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if step == 2:
            for p in monitor.si_params:
                p.grad.zero_()
        optimizer.step()
        monitor.log(loss=loss.detach())
    cosine = _column(monitor.records(), "grad_cosine")
    assert np.isnan(cosine[[0, 2, 3]]).all() and -1 <= cosine[1] <= 1
