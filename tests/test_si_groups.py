"""Tests of :func:`empirical.scale_invariance.find_si_groups` on random architectures whose SI groups are known."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bnwd.empirical.scale_invariance import find_si_groups, si_parameters

# --------------------------------------------------------------------------------------------------- architectures


class MLP(nn.Module):
    """``[Linear → BatchNorm1d → ReLU] * depth → Linear head``."""

    def __init__(self, d_in, widths, affine, bias, n_cls):
        super().__init__()
        layers, d = [], d_in
        for w, a, b in zip(widths, affine, bias, strict=True):
            layers += [nn.Linear(d, w, bias=b), nn.BatchNorm1d(w, affine=a), nn.ReLU()]
            d = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d, n_cls)

    def forward(self, x):
        return self.head(self.body(x))


def mlp_expected(widths, affine):
    """Each hidden Linear weight is SI alone. Its bias (if any) is cancelled by BN's mean subtraction, so the loss
    does not depend on it: {weight, bias} is jointly SI, but not minimal, and the bias is never reported. The affine
    (γ, β) of a BN followed by ReLU → Linear → BN are jointly SI (ReLU is positively homogeneous, the next BN removes
    the scale); those of the last BN feed the head and are not SI; the head is not SI."""
    groups = []
    for i in range(len(widths)):
        groups.append([f"body.{3 * i}.weight"])
        if affine[i] and i < len(widths) - 1:
            groups.append([f"body.{3 * i + 1}.weight", f"body.{3 * i + 1}.bias"])
    return groups


class ConvNet(nn.Module):
    """``[Conv2d(bias=False) → BatchNorm2d(affine=False) → ReLU] * depth → global average pool → Linear``."""

    def __init__(self, channels, kernels, n_cls):
        super().__init__()
        layers, c = [], 3
        for co, k in zip(channels, kernels, strict=True):
            layers += [nn.Conv2d(c, co, k, padding=k // 2, bias=False), nn.BatchNorm2d(co, affine=False), nn.ReLU()]
            c = co
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, n_cls)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


class PreActBlock(nn.Module):
    """Pre-activation block ``out = conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut(x)``; the shortcut is the
    identity, or ``Sequential(BN, conv1x1)`` when the block downsamples or changes the width."""

    def __init__(self, c_in, c_out, stride, affine):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in, affine=affine)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, affine=affine)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.down = stride != 1 or c_in != c_out
        if self.down:
            self.shortcut = nn.Sequential(
                nn.BatchNorm2d(c_in, affine=affine), nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
            )

    def forward(self, x):
        out = self.conv2(torch.relu(self.bn2(self.conv1(torch.relu(self.bn1(x))))))
        return out + (self.shortcut(x) if self.down else x)


class PreActResNet(nn.Module):
    """``stem conv → blocks → BN → ReLU → global average pool → Linear``; ``plan`` lists ``(c_out, stride)``."""

    def __init__(self, width, plan, n_cls=3, affine=False):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
        blocks, c = [], width
        for c_out, stride in plan:
            blocks.append(PreActBlock(c, c_out, stride, affine))
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(c, affine=affine)
        self.head = nn.Linear(c, n_cls)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.blocks(self.stem(x)))).mean(dim=(2, 3)))


def resnet_expected(model: PreActResNet):
    """SI groups of a pre-activation ResNet whose BNs have no affine parameters.

    Every ``conv1`` is followed by ``bn2``: individually SI. The residual stream is only ever read through BNs
    (``bn1`` of the next block, the shortcut's BN of a downsampling block, the final ``bn``), so scaling everything that
    writes into one stream segment scales the whole segment and leaves the loss unchanged. A segment starts at the
    stem, or at a downsampling block, whose output ``conv2(...) + conv1x1(BN(x))`` does not contain the old stream
    (the shortcut BN normalizes it away), so the old segment ends there. Hence the groups: {stem, conv2 of the
    identity blocks up to the first downsampling block}, then for each downsampling block {its conv2, its shortcut
    conv, conv2 of the following identity blocks}. No subset of a segment is SI (the sum ``c·x + f(x)`` of a
    scaled and an unscaled branch is not a multiple of the unscaled sum), and the head is not SI."""
    groups, stream = [], ["stem.weight"]
    for i, blk in enumerate(model.blocks):
        groups.append([f"blocks.{i}.conv1.weight"])
        if blk.down:
            groups.append(stream)
            stream = [f"blocks.{i}.conv2.weight", f"blocks.{i}.shortcut.1.weight"]
        else:
            stream.append(f"blocks.{i}.conv2.weight")
    groups.append(stream)
    order = {n: k for k, (n, _) in enumerate(model.named_parameters())}
    return sorted(groups, key=lambda g: order[g[0]])


def resnet18(width=8, n_cls=10, affine=False):
    plan = [(width, 1), (width, 1), (2 * width, 2), (2 * width, 1)]
    plan += [(4 * width, 2), (4 * width, 1), (8 * width, 2), (8 * width, 1)]
    return PreActResNet(width, plan, n_cls, affine)


def batch(shape, n_cls, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randint(0, n_cls, (shape[0],), generator=g)


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, model.training


def assert_unchanged(model, snap):
    state, training = snap
    assert model.training == training
    now = model.state_dict()
    assert now.keys() == state.keys()
    for k, v in state.items():
        assert now[k].dtype == v.dtype and torch.equal(now[k], v), k


# ----------------------------------------------------------------------------------------------------------- tests


@settings(max_examples=25)
@given(
    depth=st.integers(1, 3),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_random_mlps(depth, data, seed):
    widths = data.draw(st.lists(st.integers(2, 6), min_size=depth, max_size=depth))
    affine = data.draw(st.lists(st.booleans(), min_size=depth, max_size=depth))
    bias = data.draw(st.lists(st.booleans(), min_size=depth, max_size=depth))
    d_in, n_cls = data.draw(st.integers(2, 5)), data.draw(st.integers(2, 4))
    torch.manual_seed(seed)
    model = MLP(d_in, widths, affine, bias, n_cls)
    x, y = batch((8, d_in), n_cls, seed)
    snap = snapshot(model)
    groups = find_si_groups(model, x, y)
    assert groups == mlp_expected(widths, affine)
    assert_unchanged(model, snap)


@settings(max_examples=12)
@given(
    channels=st.lists(st.integers(2, 4), min_size=1, max_size=3),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_random_convnets(channels, data, seed):
    kernels = data.draw(st.lists(st.sampled_from([1, 3]), min_size=len(channels), max_size=len(channels)))
    torch.manual_seed(seed)
    model = ConvNet(channels, kernels, 3)
    x, y = batch((4, 3, 6, 6), 3, seed)
    snap = snapshot(model)
    groups = find_si_groups(model, x, y)
    assert groups == [[f"body.{3 * i}.weight"] for i in range(len(channels))]
    assert_unchanged(model, snap)


@settings(max_examples=15)
@given(
    n_before=st.integers(0, 2),
    downsample=st.booleans(),
    n_after=st.integers(0, 2),
    width=st.integers(2, 4),
    seed=st.integers(0, 2**16),
)
def test_random_preact_resnets(n_before, downsample, n_after, width, seed):
    plan = [(width, 1)] * n_before + ([(width + 2, 2)] if downsample else []) + [(width + 2 * downsample, 1)] * n_after
    torch.manual_seed(seed)
    model = PreActResNet(width, plan)
    x, y = batch((4, 3, 6, 6), 3, seed)
    snap = snapshot(model)
    groups = find_si_groups(model, x, y)
    assert groups == resnet_expected(model)
    assert_unchanged(model, snap)


def test_preact_resnet_with_downsampling_block_groups_spelled_out():
    torch.manual_seed(0)
    model = PreActResNet(3, [(3, 1), (5, 2), (5, 1)])
    x, y = batch((4, 3, 8, 8), 3, 1)
    assert find_si_groups(model, x, y) == [
        ["stem.weight", "blocks.0.conv2.weight"],  # stream before the downsampling block
        ["blocks.0.conv1.weight"],
        ["blocks.1.conv1.weight"],
        ["blocks.1.conv2.weight", "blocks.1.shortcut.1.weight", "blocks.2.conv2.weight"],  # stream after it
        ["blocks.2.conv1.weight"],
    ]


def test_resnet18_width8():
    torch.manual_seed(0)
    model = resnet18(width=8)
    x, y = batch((8, 3, 16, 16), 10, 0)
    snap = snapshot(model)
    groups = find_si_groups(model, x, y)
    assert groups == resnet_expected(model)
    assert len(groups) == 8 + 4  # 8 conv1 singletons, 4 stream segments
    assert_unchanged(model, snap)
    params = si_parameters(model, groups)
    assert len(params) == 1 + 2 * 8 + 3  # stem, conv1 and conv2 of every block, 3 shortcut convs
    named = [n for n, _ in model.named_parameters()]
    ids = {id(p) for p in params}
    assert [n for n, p in model.named_parameters() if id(p) in ids] == [n for n in named if any(n in g for g in groups)]


def test_affine_resnet18_keeps_the_conv_groups():
    """With affine BNs there are more SI sets (a BN's (γ, β) feeding a conv through ReLU is SI when that conv feeds
    a BN; where minimal sets overlap, the detector prefers the groups with the most weights), but the conv groups
    of the affine-free net are still found."""
    torch.manual_seed(0)
    model = resnet18(width=8, affine=True)
    x, y = batch((8, 3, 16, 16), 10, 0)
    groups = find_si_groups(model, x, y)
    for g in resnet_expected(model):
        assert g in groups
    flat = [n for g in groups for n in g]
    assert len(flat) == len(set(flat))
    assert "head.weight" not in flat and "bn.weight" not in flat


def test_affine_resnet_groups_are_confirmed_and_disjoint():
    """With affine BNs, minimal SI sets overlap (a BN's (γ, β) in front of a conv can stand in for that conv); the
    detector then reports a subset of confirmed, disjoint groups, which still contains every conv1 singleton."""
    torch.manual_seed(0)
    model = PreActResNet(3, [(3, 1), (5, 2)], affine=True)
    x, y = batch((4, 3, 6, 6), 3, 2)
    groups = find_si_groups(model, x, y)
    flat = [n for g in groups for n in g]
    assert len(flat) == len(set(flat))
    for i in range(2):
        assert [f"blocks.{i}.conv1.weight"] in groups
    # every reported group is SI for the original (float32, eps=1e-5) model up to BN's eps
    xb = x.double()
    net = copy.deepcopy(model).double()
    base = torch.nn.functional.cross_entropy(net(xb), y).item()
    for g in groups:
        scaled = copy.deepcopy(net)
        with torch.no_grad():
            for n, p in scaled.named_parameters():
                if n in g:
                    p.mul_(2.0)
        assert torch.nn.functional.cross_entropy(scaled(xb), y).item() == pytest.approx(base, rel=1e-3)


def test_linear_with_bias_before_bn_reports_only_the_weight():
    """{weight, bias} of a Linear followed by BN is jointly SI, but the bias is cancelled by the mean subtraction
    (the loss does not depend on it), so the minimal group is {weight} and the bias is not reported."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5, affine=False), nn.ReLU(), nn.Linear(5, 3))
    x, y = batch((6, 4), 3, 0)
    assert find_si_groups(model, x, y) == [["0.weight"]]


def test_unused_and_frozen_parameters_are_not_reported():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 5, bias=False)
            self.bn = nn.BatchNorm1d(5)
            self.unused = nn.Parameter(torch.randn(3, 3))
            self.zero = nn.Parameter(torch.zeros(5))  # multiplies a zero tensor: zero gradient everywhere
            self.head = nn.Linear(5, 3)
            self.head.requires_grad_(False)

        def forward(self, x):
            h = torch.relu(self.bn(self.lin(x)))
            return self.head(h) + (0 * h * self.zero).sum()

    torch.manual_seed(0)
    model = Net()
    x, y = batch((6, 4), 3, 0)
    assert find_si_groups(model, x, y) == [["lin.weight"]]


def test_no_bn_gives_no_groups():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(4, 6, bias=False), nn.ReLU(), nn.Linear(6, 6, bias=False), nn.ReLU(), nn.Linear(6, 3)
    )
    x, y = batch((8, 4), 3, 0)
    assert find_si_groups(model, x, y) == []
    convnet = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3))
    x, y = batch((4, 3, 4, 4), 3, 0)
    assert find_si_groups(convnet, x, y) == []


def test_eval_mode_model_and_dropout():
    """The training loss is analysed even if the caller's model is in eval mode; dropout masks are shared."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(4, 6, bias=False), nn.BatchNorm1d(6, affine=False), nn.Dropout(0.3), nn.Linear(6, 3)
    )
    model.eval()
    x, y = batch((8, 4), 3, 0)
    snap = snapshot(model)
    assert find_si_groups(model, x, y) == [["0.weight"]]
    assert_unchanged(model, snap)


def test_errors():
    x, y = batch((4, 3), 2, 0)
    with pytest.raises(ValueError, match="no parameters"):
        find_si_groups(nn.ReLU(), x, y)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="size >= 2"):
        find_si_groups(model, x[:1], y[:1])
    with pytest.raises(KeyError):
        si_parameters(model, [["nope"]])


def test_all_frozen_gives_no_groups():
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4), nn.Linear(4, 2)).requires_grad_(False)
    x, y = batch((4, 3), 2, 0)
    assert find_si_groups(model, x, y) == []
