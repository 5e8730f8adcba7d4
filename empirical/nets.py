"""Scale-invariant (SI) networks of Lobacheva et al. (2021), "On the periodic behavior of neural network
training with batch normalization and weight decay".

Three models, following the official code (``nets/convnet_si.py`` and ``nets/resnet_si.py``):

``ConvNetSI``
    The paper's depth-3 ConvNet (Myrtle / double-descent "mcnn"). Every conv is bias-free and directly
    followed by ``BatchNorm2d(affine=False)``, so every conv weight is *individually* scale-invariant in
    train mode. The head ``Linear(8c -> K, bias=True)`` has its weight rescaled to Frobenius norm
    ``init_scale`` (10 in the paper) and is meant to be frozen by the trainer (lr 0 in a second parameter
    group, as the official code does), not by ``requires_grad``.
``ConvNetSIAffine``
    The "all parameters trained" variant (official ``ConvNetSIAf``): affine BatchNorm and the default head init.
``ResNet18SI``
    Pre-activation ResNet-18 (kuangliu / double-descent) with every BN ``affine=False``, an extra BN before
    the 1x1 shortcut conv of downsampling blocks (Li & Arora, arXiv 1910.07454) and a bias-free head of
    Frobenius norm ``init_scale``. The residual sums make some convs SI only *jointly* (all convs feeding one
    residual stream must be scaled together).
``ResNet18SIAffine``
    Its "all parameters trained" variant (official ``ResNet18SIAf``, the paper's practical setting): affine
    BatchNorm and the default head (with bias, default init).

Deviations from the official code, all of which leave the paper's 32x32 setting unchanged:

* The final pooling is *global* (adaptive pooling to 1x1) instead of ``MaxPool2d(4)`` / ``AvgPool2d(4)``.
  On 32x32 input the last feature map is 4x4, so this is the same operation; it lets other input sizes work.
* The ConvNet's ``MaxPool2d(2)`` use ``ceil_mode=True``. On even sizes (32 -> 16 -> 8 -> 4) this is identical to
  the official floor mode; on odd or tiny inputs (e.g. 7x7, or 1x1 after earlier pools) it keeps the border
  row/column instead of failing with an empty output. We chose it over "skip a pool on 1x1 input" because it
  needs no custom module and keeps the module list (and hence parameter names) identical to the official one.
* The stem and head take ``in_channels`` / ``n_classes`` (the official code hard-codes 3 input channels).
* The head is exposed as ``model.head`` (official: ``linear_layers[-1]`` / ``linear``).

Parameter names of ``ConvNetSI`` mirror the official ones: the convs are ``conv_layers.{0,3,7,11}.weight``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from bnwd.empirical.catalog import MODEL_RECORDS, ModelName

__all__ = ["MODELS", "ConvNetSI", "ConvNetSIAffine", "PreActBlockSI", "ResNet18SI", "ResNet18SIAffine", "build_model"]


def _rescale_head_(linear: nn.Linear, init_scale: float) -> None:
    """Rescale ``linear.weight`` in place to Frobenius norm ``init_scale`` (no-op when ``init_scale <= 0``).

    The paper fixes a random head of norm 10 so that the logits are large enough to train well while the head
    itself stays frozen; only the direction of the default init is kept. The bias (if any) keeps its default init.
    """
    if init_scale > 0:
        with torch.no_grad():
            linear.weight.mul_(init_scale / linear.weight.norm())


def _check_sizes(width: int, in_channels: int, n_classes: int) -> None:
    """Raise ``ValueError`` for sizes that cannot define a network (fail early with a clear message)."""
    if int(width) != width or width <= 0:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    if int(in_channels) != in_channels or in_channels <= 0:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
    if int(n_classes) != n_classes or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")


def _conv_bn_relu(c_in: int, c_out: int, *, affine: bool, pool: bool) -> list[nn.Module]:
    """One ConvNet stage: ``Conv3x3(bias=False) -> BatchNorm2d -> ReLU [-> MaxPool2d(2)]``.

    The conv has no bias because the following BN removes any per-channel constant anyway (and a bias would not
    be scale-invariant together with the weight).
    """
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(c_out, affine=affine),
        nn.ReLU(),
    ]
    if pool:
        # ceil_mode: identical to floor mode on even sizes, but never produces an empty map on odd/tiny inputs.
        layers.append(nn.MaxPool2d(2, ceil_mode=True))
    return layers


class ConvNetSI(nn.Module):
    """The paper's depth-3 scale-invariant ConvNet.

    Architecture (``c = width``, ``K = n_classes``)::

        Conv3x3(in -> c)  BN ReLU
        Conv3x3(c -> 2c)  BN ReLU MaxPool2
        Conv3x3(2c -> 4c) BN ReLU MaxPool2
        Conv3x3(4c -> 8c) BN ReLU MaxPool2
        global MaxPool -> Flatten -> Linear(8c -> K, bias=True), ||W||_F = init_scale

    All convs are bias-free and all BNs have ``affine=False``, so each conv weight is individually SI.
    With ``c = 32``, 3 input channels and 10 classes the net has 390,506 parameters, 387,936 of them in the convs.

    Parameters
    ----------
    width : int
        Base channel count ``c`` (32 in the paper).
    in_channels : int
        Input channels (3 for CIFAR).
    n_classes : int
        Number of classes ``K``.
    init_scale : float
        Frobenius norm of the head weight after init; ``<= 0`` keeps PyTorch's default init.

    Attributes
    ----------
    conv_layers : nn.Sequential
        The feature extractor; convs sit at indices 0, 3, 7, 11 (same names as the official code).
    head : nn.Linear
        The classifier ``Linear(8c -> K)``; to be frozen by the trainer (lr 0), not via ``requires_grad``.

    Notes
    -----
    Input ``x`` of shape ``(N, in_channels, H, W)`` (any ``H, W >= 1``; ``N >= 2`` in train mode once the
    feature map is 1x1, because BN needs more than one value per channel); output logits of shape ``(N, K)``.
    """

    #: Only the SI conv weights are trained at the main lr; the head (and its bias) is frozen by default.
    trains_all_parameters: bool = False
    _affine: bool = False

    def __init__(self, width: int = 32, in_channels: int = 3, n_classes: int = 10, init_scale: float = 10.0) -> None:
        super().__init__()
        _check_sizes(width, in_channels, n_classes)
        c, affine = int(width), self._affine
        layers = _conv_bn_relu(in_channels, c, affine=affine, pool=False)  # no pool after the first conv
        layers += _conv_bn_relu(c, 2 * c, affine=affine, pool=True)
        layers += _conv_bn_relu(2 * c, 4 * c, affine=affine, pool=True)
        layers += _conv_bn_relu(4 * c, 8 * c, affine=affine, pool=True)
        self.conv_layers = nn.Sequential(*layers)
        # Global max pool: the paper's MaxPool4 on the final 4x4 map of a 32x32 input, valid for any input size.
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(8 * c, int(n_classes), bias=True)
        _rescale_head_(self.head, init_scale)
        self.width, self.in_channels, self.n_classes, self.init_scale = c, int(in_channels), int(n_classes), init_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch.

        Parameters
        ----------
        x : torch.Tensor, shape (N, in_channels, H, W)

        Returns
        -------
        torch.Tensor, shape (N, n_classes)
        """
        z = self.pool(self.conv_layers(x))  # (N, 8c, 1, 1)
        return self.head(torch.flatten(z, 1))  # (N, K)


class ConvNetSIAffine(ConvNetSI):
    """ConvNetSI with affine BatchNorm (trainable gamma/beta) and the default (unscaled) head init.

    The official ``ConvNetSIAf``, used when *all* parameters are trained with one lr and weight decay. The conv
    weights are still individually SI (each is followed by a BN), but gamma/beta and the head are not.

    Parameters
    ----------
    width, in_channels, n_classes : int
        As in :class:`ConvNetSI`.
    init_scale : float
        Accepted so that :func:`build_model` has one signature, but ignored: the head keeps PyTorch's default
        init, as in the official variant (``init_scale=-1``).

    Notes
    -----
    Input shape ``(N, in_channels, H, W)``, output shape ``(N, n_classes)``.
    """

    trains_all_parameters: bool = True
    _affine: bool = True

    def __init__(self, width: int = 32, in_channels: int = 3, n_classes: int = 10, init_scale: float = 10.0) -> None:
        super().__init__(width=width, in_channels=in_channels, n_classes=n_classes, init_scale=-1.0)
        # Record what the head really is: default init, no rescale.
        self.init_scale = -1.0


class PreActBlockSI(nn.Module):
    """Pre-activation basic block with BN (kuangliu / double-descent ``PreActBlock``, SI version).

    ``out = conv2(relu(bn2(conv1(a)))) + shortcut`` with ``a = relu(bn1(x))``. The shortcut is the identity
    ``x``, or, when the block changes stride or width, ``Conv1x1(BN(a))`` (the extra BN before downsampling of
    Li & Arora, arXiv 1910.07454). The shortcut is applied to ``a`` (not ``x``), as in the official code.

    Parameters
    ----------
    in_planes, planes : int
        Input and output channels.
    stride : int
        Stride of ``conv1`` and of the shortcut conv.
    affine : bool
        Whether the BNs have trainable gamma/beta (the convs stay jointly SI either way: a BN output does not
        scale with the weights before it).

    Notes
    -----
    Input ``(N, in_planes, H, W)``; output ``(N, planes, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1, *, affine: bool = False) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes, affine=affine)
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, affine=affine)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.BatchNorm2d(in_planes, affine=affine),
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block; see the class docstring for shapes."""
        a = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(a)
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return out + skip  # not in place, so autograd / torch.func transforms stay safe


class ResNet18SI(nn.Module):
    """Scale-invariant pre-activation ResNet-18.

    Architecture (``c = width``)::

        Conv3x3(in -> c)
        layer1: 2 x PreActBlockSI(c),  stride 1
        layer2: 2 x PreActBlockSI(2c), stride 2 (first block)
        layer3: 2 x PreActBlockSI(4c), stride 2
        layer4: 2 x PreActBlockSI(8c), stride 2
        BN -> ReLU -> global AvgPool -> Linear(8c -> K, bias=False), ||W||_F = init_scale

    Every BN has ``affine=False`` and every conv is bias-free, so the output is invariant to scaling *all* conv
    weights jointly (train mode). Individual convs whose output enters a residual sum (the stem, ``conv2`` and
    the shortcut convs) are SI only together with the others feeding the same residual stream.

    Parameters
    ----------
    width : int
        Base channel count ``c`` (the official parser default is 64).
    in_channels : int
        Input channels.
    n_classes : int
        Number of classes ``K``.
    init_scale : float
        Frobenius norm of the head weight after init; ``<= 0`` keeps PyTorch's default init.

    Attributes
    ----------
    head : nn.Linear
        ``Linear(8c -> K, bias=False)``; to be frozen by the trainer (lr 0).

    Notes
    -----
    Input ``(N, in_channels, H, W)``, any ``H, W >= 1`` (the three stride-2 stages map 8 -> 4 -> 2 -> 1; the
    paper's 32x32 input ends at 4x4 where global average pooling equals the official ``AvgPool2d(4)``); ``N >= 2``
    in train mode. Output ``(N, n_classes)``.
    """

    trains_all_parameters: bool = False
    _affine: bool = False

    def __init__(self, width: int = 64, in_channels: int = 3, n_classes: int = 10, init_scale: float = 10.0) -> None:
        super().__init__()
        _check_sizes(width, in_channels, n_classes)
        c, affine = int(width), self._affine
        self.conv1 = nn.Conv2d(in_channels, c, kernel_size=3, stride=1, padding=1, bias=False)
        planes_in = c
        for i, (mult, stride) in enumerate([(1, 1), (2, 2), (4, 2), (8, 2)], start=1):
            # Only the first block of a stage downsamples / widens; it is the one that gets the BN+1x1 shortcut.
            blocks = [
                PreActBlockSI(planes_in, mult * c, stride, affine=affine),
                PreActBlockSI(mult * c, mult * c, 1, affine=affine),
            ]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            planes_in = mult * c
        self.bn = nn.BatchNorm2d(8 * c, affine=affine)
        self.pool = nn.AdaptiveAvgPool2d(1)
        # the affine variant's head is trained: the default nn.Linear, bias included (official ResNet18SIAf)
        self.head = nn.Linear(8 * c, int(n_classes), bias=affine)
        init_scale = -1.0 if affine else init_scale
        _rescale_head_(self.head, init_scale)
        self.width, self.in_channels, self.n_classes, self.init_scale = c, int(in_channels), int(n_classes), init_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch.

        Parameters
        ----------
        x : torch.Tensor, shape (N, in_channels, H, W)

        Returns
        -------
        torch.Tensor, shape (N, n_classes)
        """
        out = self.conv1(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))  # (N, 8c, H/8, W/8)
        out = F.relu(self.bn(out))
        return self.head(torch.flatten(self.pool(out), 1))


class ResNet18SIAffine(ResNet18SI):
    """ResNet18SI with affine BatchNorm (trainable gamma/beta) and the default head (with bias, unscaled init).

    The official ``ResNet18SIAf``, the net of the paper's practical setting (every parameter trained with one lr and
    weight decay, momentum, augmentation). The convs stay jointly SI; gamma/beta and the head are not.

    Parameters
    ----------
    width, in_channels, n_classes : int
        As in :class:`ResNet18SI`.
    init_scale : float
        Accepted so that :func:`build_model` has one signature, but ignored (recorded as -1, the official value).

    Notes
    -----
    Input shape ``(N, in_channels, H, W)``, output shape ``(N, n_classes)``.
    """

    trains_all_parameters: bool = True
    _affine: bool = True


MODELS: dict[ModelName, type[nn.Module]] = {
    name: globals()[record.class_name] for name, record in MODEL_RECORDS.items()
}
"""The class of each net of :data:`~bnwd.empirical.catalog.MODEL_RECORDS`, by name (the records name the classes of
this module, so that knowing the names needs no torch)."""


def build_model(
    name: ModelName, *, width: int, in_channels: int, n_classes: int, init_scale: float = 10.0
) -> nn.Module:
    """Construct a model from :data:`MODELS` by name.

    Parameters
    ----------
    name : ModelName
        A net of :data:`~bnwd.empirical.catalog.MODEL_RECORDS`.
    width : int
        Base channel count (> 0).
    in_channels : int
        Input channels (> 0).
    n_classes : int
        Number of classes (>= 2).
    init_scale : float
        Frobenius norm of the head weight (ignored by the affine variants).

    Returns
    -------
    nn.Module
        Mapping ``(N, in_channels, H, W)`` to logits ``(N, n_classes)``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones) or invalid sizes.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}")
    _check_sizes(width, in_channels, n_classes)
    return MODELS[name](width=width, in_channels=in_channels, n_classes=n_classes, init_scale=init_scale)
