"""Tests of the scale-invariant networks in ``empirical.nets``.

What is checked and why:

* Architecture facts from the official code: ConvNetSI with c = 32 (3 input channels, 10 classes) has exactly
  390,506 parameters, 387,936 of them in the four convs; the conv names are ``conv_layers.{0,3,7,11}.weight``;
  on 32x32 input the final feature maps are 4x4, so our global pools equal the official MaxPool4 / AvgPool4.
* The initial joint SI norm rho_0 of ConvNetSI c = 32 is ~12.6 (science.md, section 3.1): PyTorch's default conv
  init is U(-b, b) with b = 1/sqrt(fan_in), so E||W||^2 = out_channels/3 per conv and
  E rho_0^2 = (32 + 64 + 128 + 256)/3 = 160 exactly. The fluctuation is tiny: for a uniform weight
  Var(w^2)/E(w^2)^2 = 0.8, so layer l contributes a std of ||W_l||^2 * sqrt(0.8/numel_l); summing the four
  layers gives std(rho_0^2) ~ 0.41 and std(rho_0) ~ 0.016. We assert |rho_0 - sqrt(160)| < 0.1 (> 6 sigma)
  for several seeds and the seed-average of rho_0^2 within 0.6 of 160 (> 4 sigma for 10 seeds).
* Head: Frobenius norm equals ``init_scale``; the affine variant has BN gamma/beta and PyTorch's default head.
* Forward shapes for random input sizes, channel counts and batch sizes (hypothesis, derandomized by conftest).
* Scale invariance in train mode, in float64 with every BN's eps set to ``finfo(float64).tiny`` (``var + tiny``
  rounds to ``var``, so the arithmetic is that of eps = 0): scaling any single ConvNet conv, or all ResNet convs
  jointly, leaves the logits unchanged to ~1e-10 relative; scaling only the ResNet stem changes them.
* ``build_model`` dispatch and its ``ValueError`` s; every record of ``empirical.catalog.MODEL_RECORDS`` names a
  class of ``empirical.nets`` that builds for every data set's images and gives one logit per class.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bnwd.empirical.catalog import DATASET_RECORDS, MODEL_RECORDS
from bnwd.empirical.nets import MODELS, ConvNetSI, ConvNetSIAffine, ResNet18SI, ResNet18SIAffine, build_model
from bnwd.empirical.scale_invariance import exact_batchnorm_

# float64 rounding through ~20 layers stays far below this; an eps = 1e-5 BN would miss it by orders of magnitude.
SI_RTOL = 1e-10


def _convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def _joint_conv_norm(model: nn.Module) -> float:
    return math.sqrt(sum(float((m.weight.detach().double() ** 2).sum()) for m in _convs(model)))


def _exact_si(model: nn.Module) -> nn.Module:
    """float64 copy-in-place with every BN's eps set to the smallest normal float64 (numerically eps = 0)."""
    return exact_batchnorm_(model.double().train())


def _logits_with_scaled(model: nn.Module, convs: list[nn.Conv2d], scale: float, x: torch.Tensor) -> torch.Tensor:
    """Train-mode logits after multiplying the weights of ``convs`` by ``scale`` (restored afterwards)."""
    saved = [c.weight.detach().clone() for c in convs]
    try:
        with torch.no_grad():
            for c in convs:
                c.weight.mul_(scale)
            return model(x)
    finally:
        with torch.no_grad():
            for c, w in zip(convs, saved, strict=True):
                c.weight.copy_(w)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max())


# --------------------------------------------------------------------------------------------------------------
# Architecture facts of ConvNetSI (official code) and its initial SI norm
# --------------------------------------------------------------------------------------------------------------


def test_convnet_si_parameter_counts_and_names():
    model = ConvNetSI(width=32, in_channels=3, n_classes=10)
    assert sum(p.numel() for p in model.parameters()) == 390_506
    assert sum(c.weight.numel() for c in _convs(model)) == 387_936
    names = [n for n, _ in model.named_parameters()]
    assert names == [
        "conv_layers.0.weight",
        "conv_layers.3.weight",
        "conv_layers.7.weight",
        "conv_layers.11.weight",
        "head.weight",
        "head.bias",
    ]
    assert all(c.bias is None for c in _convs(model))
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [b.num_features for b in bns] == [32, 64, 128, 256]
    assert not any(b.affine for b in bns)
    # Frozen by the trainer via lr 0, not by requires_grad (as in the official code).
    assert all(p.requires_grad for p in model.parameters())
    assert ConvNetSI.trains_all_parameters is False


def test_convnet_si_initial_norm_seed0():
    torch.manual_seed(0)
    rho0 = _joint_conv_norm(ConvNetSI(width=32))
    assert abs(rho0 - math.sqrt(160.0)) < 0.1, rho0


def test_convnet_si_initial_norm_over_seeds():
    sq = []
    for seed in range(10):
        torch.manual_seed(seed)
        rho0 = _joint_conv_norm(ConvNetSI(width=32))
        assert abs(rho0 - math.sqrt(160.0)) < 0.1, (seed, rho0)
        sq.append(rho0**2)
    assert abs(sum(sq) / len(sq) - 160.0) < 0.6


def test_final_feature_maps_are_4x4_on_32x32():
    """On the paper's input the global pools coincide with the official MaxPool2d(4) / AvgPool2d(4)."""
    x = torch.randn(2, 3, 32, 32)
    conv = ConvNetSI(width=4)
    assert conv.conv_layers(x).shape == (2, 32, 4, 4)
    res = ResNet18SI(width=4)
    out = res.layer4(res.layer3(res.layer2(res.layer1(res.conv1(x)))))
    assert out.shape == (2, 32, 4, 4)


# --------------------------------------------------------------------------------------------------------------
# Heads
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("init_scale", [10.0, 1.0, 3.5])
@pytest.mark.parametrize("cls", [ConvNetSI, ResNet18SI])
def test_head_norm_equals_init_scale(cls, init_scale):
    torch.manual_seed(0)
    model = cls(width=4, in_channels=2, n_classes=7, init_scale=init_scale)
    assert isinstance(model.head, nn.Linear)
    assert model.head.weight.shape == (7, 32)
    assert float(model.head.weight.detach().norm()) == pytest.approx(init_scale, rel=1e-6)


def test_head_biases():
    torch.manual_seed(0)
    conv = ConvNetSI(width=4)
    # The ConvNet head keeps a bias with its (nonzero) default init; the ResNet head has none.
    assert conv.head.bias is not None and float(conv.head.bias.detach().abs().sum()) > 0
    assert ResNet18SI(width=4).head.bias is None


def test_nonpositive_init_scale_keeps_default_init():
    torch.manual_seed(0)
    a = ConvNetSI(width=4, init_scale=-1.0)
    torch.manual_seed(0)
    b = ConvNetSI(width=4, init_scale=10.0)
    # Same RNG draws, so the rescaled head is the default head times init_scale / ||W||.
    ratio = b.head.weight / a.head.weight
    assert torch.allclose(ratio, torch.full_like(ratio, 10.0 / float(a.head.weight.detach().norm())), rtol=1e-5)
    assert torch.equal(a.head.bias, b.head.bias)


def test_affine_variant():
    torch.manual_seed(0)
    model = ConvNetSIAffine(width=32, init_scale=10.0)
    assert ConvNetSIAffine.trains_all_parameters is True
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(b.affine and b.weight is not None and b.bias is not None for b in bns)
    n_affine = 2 * (32 + 64 + 128 + 256)
    assert sum(p.numel() for p in model.parameters()) == 390_506 + n_affine
    # Default nn.Linear init: U(+-1/sqrt(fan_in)), so E||W||^2 = K/3 and ||W|| ~ sqrt(10/3) ~ 1.83, not 10.
    assert abs(float(model.head.weight.detach().norm()) - math.sqrt(10 / 3)) < 0.2
    assert model.head.bias is not None


# --------------------------------------------------------------------------------------------------------------
# Forward shapes
# --------------------------------------------------------------------------------------------------------------


@settings(max_examples=30)
@given(
    name=st.sampled_from(sorted(MODELS)),
    height=st.integers(8, 40),
    width_px=st.integers(8, 40),
    channels=st.integers(1, 3),
    batch=st.integers(2, 5),
    n_classes=st.integers(2, 12),
    net_width=st.integers(2, 6),
)
def test_forward_shapes(name, height, width_px, channels, batch, n_classes, net_width):
    torch.manual_seed(0)
    model = build_model(name, width=net_width, in_channels=channels, n_classes=n_classes)
    x = torch.randn(batch, channels, height, width_px)
    out = model.train()(x)
    assert out.shape == (batch, n_classes)
    assert torch.isfinite(out).all()
    assert model.eval()(x).shape == (batch, n_classes)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 9])
def test_convnet_tiny_inputs(size):
    """ceil_mode pools never produce an empty map (floor mode would fail on 7x7: 7 -> 3 -> 1 -> 0)."""
    model = ConvNetSI(width=4, in_channels=1, n_classes=3)
    assert model(torch.randn(3, 1, size, size)).shape == (3, 3)


# --------------------------------------------------------------------------------------------------------------
# Scale invariance (train mode, float64, eps ~ 0)
# --------------------------------------------------------------------------------------------------------------


@settings(max_examples=30)
@given(
    cls=st.sampled_from([ConvNetSI, ConvNetSIAffine]),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.05, 20.0),
    size=st.integers(8, 20),
)
def test_convnet_each_conv_is_scale_invariant(cls, seed, scale, size):
    torch.manual_seed(seed)
    model = _exact_si(cls(width=4, in_channels=2, n_classes=5))
    x = torch.randn(6, 2, size, size, dtype=torch.float64)
    ref = model(x)
    convs = _convs(model)
    assert len(convs) == 4
    for conv in convs:  # every conv is followed directly by a BN, so each is SI on its own
        assert _rel_err(_logits_with_scaled(model, [conv], scale, x), ref) < SI_RTOL
    assert _rel_err(_logits_with_scaled(model, convs, scale, x), ref) < SI_RTOL


def test_convnet_default_eps_breaks_si_only_slightly():
    """Sanity check of the test's premise: with eps = 1e-5 the invariance holds only approximately."""
    torch.manual_seed(0)
    model = ConvNetSI(width=4).double().train()
    x = torch.randn(6, 3, 16, 16, dtype=torch.float64)
    err = _rel_err(_logits_with_scaled(model, _convs(model), 0.05, x), model(x))
    assert SI_RTOL < err < 0.5


@settings(max_examples=15)
@given(
    cls=st.sampled_from([ResNet18SI, ResNet18SIAffine]),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.1, 10.0).filter(lambda s: abs(s - 1) > 0.05),
)
def test_resnet_joint_scale_invariance(cls, seed, scale):
    torch.manual_seed(seed)
    model = _exact_si(cls(width=4, in_channels=3, n_classes=5))
    with torch.no_grad():  # gamma/beta away from their (1, 0) init, so the affine maps take part
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.affine):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    ref = model(x)
    convs = _convs(model)
    assert len(convs) == 1 + 16 + 3  # stem, 2 per block, 3 shortcut convs
    # All conv weights jointly: invariant.
    assert _rel_err(_logits_with_scaled(model, convs, scale, x), ref) < SI_RTOL
    # The first conv of each block feeds bn2 directly, so it is SI on its own.
    for block in [b for layer in (model.layer1, model.layer2, model.layer3, model.layer4) for b in layer]:
        assert _rel_err(_logits_with_scaled(model, [block.conv1], scale, x), ref) < SI_RTOL
    # The stem alone enters a residual sum with unscaled branches: not SI on its own.
    assert _rel_err(_logits_with_scaled(model, [model.conv1], scale, x), ref) > 1e-4


def test_resnet_structure():
    model = ResNet18SI(width=32)
    # ~2.79M parameters for c = 32 (science.md, official code).
    assert sum(p.numel() for p in model.parameters()) == 2_792_800
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert not any(b.affine for b in bns)
    assert len(bns) == 16 + 3 + 1  # two per block, one per downsampling shortcut, the final one
    for layer in (model.layer2, model.layer3, model.layer4):
        sc = layer[0].shortcut
        assert isinstance(sc[0], nn.BatchNorm2d) and isinstance(sc[1], nn.Conv2d)
        assert sc[1].kernel_size == (1, 1) and sc[1].stride == (2, 2)
    assert model.layer1[0].shortcut is None
    assert ResNet18SI.trains_all_parameters is False


def test_resnet_affine_variant():
    torch.manual_seed(0)
    model = ResNet18SIAffine(width=32, init_scale=10.0)
    assert ResNet18SIAffine.trains_all_parameters is True and model.init_scale == -1.0
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 20 and all(b.affine for b in bns)
    n_affine = 2 * sum(b.num_features for b in bns)
    assert sum(p.numel() for p in model.parameters()) == 2_792_800 + n_affine + 10  # + the head's bias
    # Default nn.Linear init (U(±1/sqrt(256))): ||W|| ≈ sqrt(10/3), not the SI variant's 10.
    assert abs(float(model.head.weight.detach().norm()) - math.sqrt(10 / 3)) < 0.2


def test_resnet_initial_norm_width64():
    """science.md: rho_0 ~ 40 for ResNet18SI with k = 64 (sum of out_channels/3 over all convs = 1600)."""
    torch.manual_seed(0)
    assert abs(_joint_conv_norm(ResNet18SI(width=64)) - 40.0) < 0.2


# --------------------------------------------------------------------------------------------------------------
# build_model
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_build_model_dispatch(name):
    model = build_model(name, width=4, in_channels=1, n_classes=3, init_scale=2.0)
    assert type(model) is MODELS[name]
    assert model.head.out_features == 3
    if not MODELS[name].trains_all_parameters:  # the affine variants keep the default head
        assert float(model.head.weight.detach().norm()) == pytest.approx(2.0, rel=1e-6)


@pytest.mark.parametrize("model_record", MODEL_RECORDS.values(), ids=MODEL_RECORDS)
def test_every_model_record_builds_for_every_data_set(model_record):
    """The records are the registry: each names its class, which maps each data set's images to its classes."""
    assert list(MODELS) == list(MODEL_RECORDS) and MODELS[model_record.name].__name__ == model_record.class_name
    for data in DATASET_RECORDS.values():
        channels = data.image_shape[0]
        model = build_model(model_record.name, width=2, in_channels=channels, n_classes=data.n_classes).train()
        assert model(torch.randn(2, *data.image_shape)).shape == (2, data.n_classes), data.name


def test_build_model_unknown_name_lists_known():
    with pytest.raises(ValueError, match="convnet_si") as info:
        build_model("vgg16", width=4, in_channels=3, n_classes=10)
    for name in MODELS:
        assert name in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0, "in_channels": 3, "n_classes": 10},
        {"width": -2, "in_channels": 3, "n_classes": 10},
        {"width": 4, "in_channels": 0, "n_classes": 10},
        {"width": 4, "in_channels": -1, "n_classes": 10},
        {"width": 4, "in_channels": 3, "n_classes": 1},
        {"width": 4, "in_channels": 3, "n_classes": 0},
    ],
)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_build_model_bad_sizes(name, kwargs):
    with pytest.raises(ValueError):
        build_model(name, **kwargs)
