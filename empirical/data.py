"""Image classification data sets as in-memory tensors, a seeded per-epoch batch order, and batched augmentation.

Every data set of :data:`~bnwd.empirical.catalog.DATASET_RECORDS` (where they come from, their shapes, sizes and
normalisation) comes back from :func:`load_dataset` as a :class:`Dataset` of normalised ``(N, C, H, W)`` images and
``int64`` labels, already on the requested device and in the requested dtype; its files are read by
:mod:`bnwd.empirical.data_files`. Nothing is downloaded at run time.

Every user-facing problem (unknown name, missing or corrupt files, inconsistent shapes) raises :class:`DataError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bnwd.empirical.catalog import DATASET_RECORDS, DatasetName, DatasetRecord
from bnwd.empirical.data_files import READERS, DataError

__all__ = [
    "AUGMENTATION",
    "SEEDED",
    "TRAIN_SIZES",
    "DataError",
    "Dataset",
    "augment",
    "epoch_batches",
    "load_dataset",
]

# The facts of the records that the trainer and a plan look up by a run's data name.
TRAIN_SIZES = {name: record.n_train for name, record in DATASET_RECORDS.items()}
"""Training samples of each data set as :func:`load_dataset` returns it (``synthetic`` at its default size): what a
plan counts epochs in before any file is read."""

SEEDED = tuple(name for name, record in DATASET_RECORDS.items() if record.seeded)
"""The data sets whose content depends on ``seed`` (a seeded split or draw); the others are files."""

AUGMENTATION = {name: (record.crop_padding, record.flip) for name, record in DATASET_RECORDS.items()}
"""``(padding, flip)`` of :func:`augment` per data set (:class:`~bnwd.empirical.catalog.DatasetRecord`)."""


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
    name: DatasetName,
    *,
    data_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    synthetic_size: tuple[int, int] | None = None,
) -> Dataset:
    """Load data set ``name`` (of :data:`~bnwd.empirical.catalog.DATASET_RECORDS`) onto ``device`` as ``dtype``
    images and int64 labels.

    ``data_dir`` overrides the file location (required for the CIFARs; refused for a data set that reads no files);
    ``seed`` fixes the ``digits`` split and the
    ``synthetic`` draw; ``synthetic_size`` is ``(n_train, n_test)`` for ``synthetic`` (None: the record's sizes).
    """
    record = DATASET_RECORDS.get(name)
    if record is None:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASET_RECORDS)}")
    if not dtype.is_floating_point:
        raise DataError(f"dtype must be a floating point dtype, got {dtype}")
    if record.files is None and data_dir is not None:  # silently ignored, it would hide a mistaken --data
        reading = ", ".join(other.name for other in DATASET_RECORDS.values() if other.files is not None)
        raise DataError(f"{name} reads no files: data_dir {data_dir} is not used (it is for {reading})")
    if record.loader == "digits":
        arrays = _load_digits(record, seed)
    elif record.loader == "synthetic":
        arrays = _synthetic(record, (record.n_train, record.n_test) if synthetic_size is None else synthetic_size, seed)
    else:
        train_x, train_y, test_x, test_y = READERS[record.loader](record, data_dir)
        arrays = _normalised(train_x, record), train_y, _normalised(test_x, record), test_y
    train_x, train_y, test_x, test_y = arrays
    return Dataset(
        name=name,
        train_x=_as_x(train_x, device, dtype),
        train_y=_as_y(train_y, device),
        test_x=_as_x(test_x, device, dtype),
        test_y=_as_y(test_y, device),
        n_classes=record.n_classes,
    )


def _as_x(x: np.ndarray | Tensor, device, dtype) -> Tensor:
    t = torch.as_tensor(x) if isinstance(x, np.ndarray) else x
    return t.to(device=device, dtype=dtype).contiguous()


def _as_y(y: np.ndarray | Tensor, device) -> Tensor:
    t = torch.as_tensor(np.asarray(y, dtype=np.int64)) if isinstance(y, np.ndarray) else y
    return t.to(device=device, dtype=torch.int64).contiguous()


def _normalised(images: np.ndarray, record: DatasetRecord) -> np.ndarray:
    """Bytes 0..255 ``(N, C, H, W)`` scaled to [0, 1] and normalised with ``record``'s mean and std, in float32."""
    mean = np.asarray(record.mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(record.std, dtype=np.float32).reshape(1, -1, 1, 1)
    return (images.astype(np.float32) / 255.0 - mean) / std


def _load_digits(record: DatasetRecord, seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)[:, None]  # (1797, 1, 8, 8), values 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=record.n_test, random_state=seed, stratify=labels
    )
    mean, std = train_x.mean(), train_x.std()
    return (train_x - mean) / std, train_y, (test_x - mean) / std, test_y


def _synthetic(record: DatasetRecord, size: tuple[int, int], seed: int):
    try:
        n_train, n_test = (int(s) for s in size)
    except (TypeError, ValueError) as exc:
        raise DataError(f"synthetic_size must be (n_train, n_test), got {size!r}") from exc
    if n_train < 1 or n_test < 0:
        raise DataError(f"synthetic_size must have n_train >= 1 and n_test >= 0, got {size!r}")
    gen = torch.Generator().manual_seed(int(seed))
    templates = torch.randn(record.n_classes, *record.image_shape, generator=gen, dtype=torch.float64)
    out = []
    for n in (n_train, n_test):
        y = torch.randint(0, record.n_classes, (n,), generator=gen)
        x = templates[y] + torch.randn(n, *record.image_shape, generator=gen, dtype=torch.float64)
        out += [x, y]
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
