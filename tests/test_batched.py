"""Runs trained together (empirical.batched): the grouped forward is the members' forwards, and a member's records,
evaluations and summary are those of its separate run, to float rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bnwd.empirical.batched import grouped_model, train_together
from bnwd.empirical.nets import MODELS, build_model
from bnwd.empirical.runs import RunSpec, build_trainer, read_run, together_groups, train_run, train_runs

BASE = RunSpec(
    lr=1.0, wd=0.01, steps=50, width=4, train_subset=256, batch_size=64, eval_points=3, device="cpu", dtype="float64"
)
MEMBERS = [
    BASE,
    BASE.replace(lr=0.5, wd=0.03, seed=1),
    BASE.replace(lr=0.1, momentum=0.9, seed=2, augment=True),
    BASE.replace(lr=0.1, fix_norm=0.0, seed=3),
]
# float64: the members' numbers agree with their separate runs to this relative error over 50 steps (grouped kernels
# sum in another order, ~1e-16; these members amplify it to at most ~1e-11). A chaotic member amplifies it ×10 every
# few steps (the norm fixed at ρ₀ with η = 1: 1e-16 at step 2, 1e-9 at 21, O(1) by 45): no fixed horizon holds there.
RTOL = 1e-9


def _members(name: str, k: int, seed: int) -> list[nn.Module]:
    models = []
    for i in range(k):
        torch.manual_seed(seed + i)
        model = build_model(name, width=2, in_channels=2, n_classes=3).double()
        with torch.no_grad():  # affine BN away from its (1, 0) init, so that a mixed-up γ/β shows
            for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.affine):
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.5, 0.5)
        models.append(model)
    return models


@settings(max_examples=12)
@given(name=st.sampled_from(sorted(MODELS)), k=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_grouped_forward_is_each_members_forward(name, k, seed):
    members = _members(name, k, seed)
    separate = _members(name, k, seed)  # the same weights, run one by one
    grouped = grouped_model(members).train()
    torch.manual_seed(seed)
    x = torch.randn(5, k, 2, 12, 12, dtype=torch.float64)
    logits = grouped(x.reshape(5, k * 2, 12, 12)).reshape(5, k, 3)
    for i, model in enumerate(separate):
        torch.testing.assert_close(logits[:, i], model.train()(x[:, i]), rtol=1e-12, atol=1e-12)
        # train mode moved each member's BN running statistics as its own forward moved them
        for (name_a, a), (_, b) in zip(members[i].named_buffers(), model.named_buffers(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name_a)
    grouped.eval()
    eval_logits = grouped(x.reshape(5, k * 2, 12, 12)).reshape(5, k, 3)
    for i, model in enumerate(separate):
        torch.testing.assert_close(eval_logits[:, i], model.eval()(x[:, i]), rtol=1e-12, atol=1e-12)


def test_grouped_gradients_reach_only_their_member():
    members = _members("convnet_si", 3, 0)
    x = torch.randn(4, 6, 8, 8, dtype=torch.float64)
    out = grouped_model(members).train()(x).reshape(4, 3, 3)
    out[:, 1].sum().backward()
    assert all(p.grad is None or not p.grad.any() for i in (0, 2) for p in members[i].parameters())
    assert any(p.grad is not None and p.grad.any() for p in members[1].parameters())


def test_members_that_cannot_be_grouped_are_refused():
    with pytest.raises(ValueError, match="different classes"):
        grouped_model([build_model("convnet_si", width=2, in_channels=1, n_classes=3),
                       build_model("resnet18_si", width=2, in_channels=1, n_classes=3)])  # fmt: skip
    with pytest.raises(ValueError, match="differ in weight"):
        grouped_model([build_model("convnet_si", width=w, in_channels=1, n_classes=3) for w in (2, 4)])
    odd = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.GroupNorm(1, 2))
    with pytest.raises(ValueError, match=r"GroupNorm\).*cannot be grouped"):
        grouped_model([odd, odd])


def _compare(separate, together) -> None:
    """Every number of every record, evaluation and summary scalar of two runs, to :data:`RTOL`."""
    assert len(separate.records) == len(together.records)
    for a, b in zip(separate.records, together.records, strict=True):
        assert a.keys() == b.keys()
        for key, value in a.items():
            assert b[key] == pytest.approx(value, rel=RTOL, abs=1e-12, nan_ok=True), (a["step"], key)
    for a, b in zip(separate.evals, together.evals, strict=True):
        assert b == pytest.approx(a, rel=RTOL, abs=1e-12)
    assert separate.summary["events"] == together.summary["events"]


def test_members_equal_their_separate_runs(tmp_path):
    """η, λ, β, seeds, augmentation and a fixed norm differ between the members: each is its own run."""
    for i, spec in enumerate(MEMBERS):
        train_run(spec, tmp_path / f"separate{i}")
    train_runs([(spec, tmp_path / f"together{i}") for i, spec in enumerate(MEMBERS)], together=len(MEMBERS))
    for i in range(len(MEMBERS)):
        _compare(read_run(tmp_path / f"separate{i}"), read_run(tmp_path / f"together{i}"))


def test_a_diverging_member_leaves_the_others_alone(tmp_path):
    calm = BASE.replace(steps=30)
    train_run(calm, tmp_path / "calm")
    trainers = [build_trainer(calm, tmp_path / "calm_together"), build_trainer(calm.replace(seed=1), tmp_path / "nan")]
    trainers[1].data.train_x[100] = float("nan")  # the NaN loss of a broken sample, in the second member's data only
    summaries = train_together(trainers, progress=False)
    assert summaries[1]["regime"] == "diverged" and summaries[0]["regime"] != "diverged"
    _compare(read_run(tmp_path / "calm"), read_run(tmp_path / "calm_together"))


def test_members_at_different_steps_catch_up_and_join(tmp_path):
    """A member resumed from a later checkpoint waits while the others catch up; all end as separate runs."""
    ahead, behind = BASE.replace(checkpoint_every=20, seed=4), BASE.replace(lr=0.5, seed=5)

    def interrupt(step: int) -> None:
        if step == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # the run stopped at step 25, its last checkpoint at step 20
        build_trainer(ahead, tmp_path / "ahead").run(progress=False, after_step=interrupt)
    trainers = [build_trainer(ahead, tmp_path / "ahead"), build_trainer(behind, tmp_path / "behind")]
    assert trainers[0].resume() and trainers[0].step == 20 and trainers[1].step == 0
    train_together(trainers, progress=False)
    for spec, name in ((ahead, "ahead"), (behind, "behind")):
        train_run(spec, tmp_path / f"{name}_alone")
        _compare(read_run(tmp_path / f"{name}_alone"), read_run(tmp_path / name))


def test_runs_that_differ_in_shape_are_not_grouped(tmp_path):
    specs = [BASE, BASE.replace(lr=0.5), BASE.replace(batch_size=32), BASE.replace(width=2), BASE.replace(wd=0.1)]
    assert together_groups(specs, 8) == [[0, 1, 4], [2], [3]]
    assert together_groups(specs, 2) == [[0, 1], [4], [2], [3]]
    with pytest.raises(ValueError, match="group size"):
        together_groups(specs, 0)
    trainers = [build_trainer(BASE, tmp_path / "a"), build_trainer(BASE.replace(batch_size=32), tmp_path / "b")]
    with pytest.raises(ValueError, match="batch_size"):
        train_together(trainers, progress=False)
    with pytest.raises(ValueError, match="same folder"):
        train_together([build_trainer(BASE, tmp_path / "c"), build_trainer(BASE, tmp_path / "c")], progress=False)


def test_float32_members_agree_until_the_rounding_has_grown(tmp_path):
    """In float32 the grouped kernels' rounding (~1e-7) is amplified fast by these small nets at η ~ 1 (the loss
    of the second member differs by ~1e-2 at step 15, ~1 at step 45): the first 10 steps agree to 1e-4."""
    specs = [BASE.replace(dtype="float32", steps=10), BASE.replace(dtype="float32", steps=10, lr=0.5, seed=1)]
    for i, spec in enumerate(specs):
        train_run(spec, tmp_path / f"separate{i}")
    train_runs([(spec, tmp_path / f"together{i}") for i, spec in enumerate(specs)])
    for i in range(len(specs)):
        a, b = read_run(tmp_path / f"separate{i}"), read_run(tmp_path / f"together{i}")
        for key in ("si_norm", "loss", "grad_norm", "angular_update", "elr"):
            np.testing.assert_allclose(b.series[key], a.series[key], rtol=1e-4, err_msg=key)


def test_a_group_too_large_for_the_device_is_one_clear_error(tmp_path, monkeypatch):
    import bnwd.empirical.batched as batched

    def out_of_memory(*_):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has 1.00 GiB free")

    monkeypatch.setattr(batched, "_grouped_loss_and_grads", out_of_memory)
    trainers = [build_trainer(BASE, tmp_path / "a"), build_trainer(BASE.replace(seed=1), tmp_path / "b")]
    with pytest.raises(
        ValueError, match=r"2 runs trained together do not fit .*Tried to allocate 20.00 GiB.*--together"
    ):
        train_together(trainers, progress=False)


def test_long_runs_together_have_the_periods_of_separate_runs(tmp_path):
    """Past the horizon where rounding has grown (float32, 600 steps, ~15 periods a run), a member's trajectory is
    another one of the same dynamics: its mean period equals the separate run's within their standard errors."""
    periodic = {"dtype": "float32", "steps": 600, "eval_points": 0, "width": 8, "train_subset": None, "batch_size": 128}
    specs = [BASE.replace(**periodic, wd=0.03), BASE.replace(**periodic, wd=0.015, lr=2.0, seed=1)]
    for i, spec in enumerate(specs):
        train_run(spec, tmp_path / f"separate{i}")
    train_runs([(spec, tmp_path / f"together{i}") for i, spec in enumerate(specs)])
    for i in range(len(specs)):
        a, b = read_run(tmp_path / f"separate{i}").summary, read_run(tmp_path / f"together{i}").summary
        assert len(a["periods"]) >= 10 and len(b["periods"]) >= 10
        error = np.hypot(a["period_std"] / np.sqrt(len(a["periods"])), b["period_std"] / np.sqrt(len(b["periods"])))
        assert abs(a["period_measured"] - b["period_measured"]) <= 3 * error, (
            a["period_measured"],
            b["period_measured"],
        )
        assert a["events"] != b["events"]  # not the same steps: the statement is statistical
