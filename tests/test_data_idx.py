"""The IDX reader and writer, the shipped sample, local folders, normalization and the split."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from conftest import TINY
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpcli.data.idx import IMAGES_MAGIC, LABELS_MAGIC, parse_idx, read_idx, read_split, write_idx
from mlpcli.data.load import load_dataset
from mlpcli.data.prepare import fit_normalizer, validation_split
from mlpcli.errors import DataError


def _idx(magic_type: int, dims: tuple[int, ...], body: bytes) -> bytes:
    return bytes([0, 0, magic_type, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body


def test_write_then_read_round_trips(tmp_path) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    for suffix in ("", ".gz"):
        write_idx(tmp_path / f"img{suffix}", images)
        write_idx(tmp_path / f"lab{suffix}", labels)
        np.testing.assert_array_equal(read_idx(tmp_path / f"img{suffix}", IMAGES_MAGIC), images)
        np.testing.assert_array_equal(read_idx(tmp_path / f"lab{suffix}", LABELS_MAGIC), labels)
    assert (tmp_path / "img.gz").read_bytes()[:2] == b"\x1f\x8b"


@pytest.mark.parametrize(
    ("data", "expect", "message"),
    [
        (_idx(8, (3,), b"\x00\x01\x02"), IMAGES_MAGIC, "expected magic 2051, found 2049"),
        (_idx(8, (2, 2, 2), bytes(8)), LABELS_MAGIC, "expected magic 2049, found 2051"),
        (b"\x00\x00", None, "truncated header"),
        (b"\x00\x00\x08\x03\x00\x00", None, "truncated header"),
        (_idx(8, (2, 28, 28), bytes(100)), IMAGES_MAGIC, "truncated"),
        (_idx(8, (2,), bytes(3)), LABELS_MAGIC, "1 unexpected bytes"),
        (_idx(0x0D, (2,), bytes(8)), None, "not an unsigned-byte IDX"),
        (_idx(8, (2, 2), bytes(4)), None, "2 dimensions"),
    ],
)
def test_bad_idx_content_is_named(data: bytes, expect: int | None, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        parse_idx(data, "t10k-labels-idx1-ubyte.gz", expect)
    assert str(info.value).startswith("t10k-labels-idx1-ubyte.gz: ")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "neither gzip nor IDX data"),
        (b"<!DOCTYPE html><html>Not Found</html>", "HTML page"),
        (b"hello, this is not gzip", "neither gzip nor IDX data"),
        (gzip.compress(bytes(range(256)) * 40)[:200], "truncated gzip"),
        (b"\x1f\x8b\x08\x00garbagegarbagegarbage", "corrupt gzip"),
    ],
)
def test_bad_gz_files_are_named(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path, IMAGES_MAGIC)
    assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_a_folder_or_missing_file_is_a_data_error(tmp_path) -> None:
    with pytest.raises(DataError, match="folder"):
        read_idx(tmp_path)
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "nope.gz")


def test_split_files_must_agree(tmp_path) -> None:
    write_idx(tmp_path / "i", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "l", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="3 images but l holds 4 labels"):
        read_split(tmp_path / "i", tmp_path / "l")
    write_idx(tmp_path / "l", np.array([0, 12, 1], np.uint8))
    with pytest.raises(DataError, match="label 12 at index 1 is out of range 0..9"):
        read_split(tmp_path / "i", tmp_path / "l")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([None, IMAGES_MAGIC, LABELS_MAGIC]))
def test_fuzzed_idx_bytes_raise_only_data_errors(data: bytes, expect: int | None) -> None:
    try:
        arr = parse_idx(data, "fuzz", expect)
    except DataError:
        return
    assert arr.dtype == np.uint8


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_fuzzed_files_raise_only_data_errors(tmp_path_factory, data: bytes, gz: bool) -> None:
    path = tmp_path_factory.mktemp("fuzz") / ("x.gz" if gz else "x")
    path.write_bytes(gzip.compress(data) if gz and data[:1] == b"\x00" else data)
    try:
        read_idx(path)
    except DataError:
        pass


def test_shipped_sample_loads_offline(monkeypatch) -> None:
    monkeypatch.setenv("MLPCLI_OFFLINE", "1")
    data = load_dataset("mnist-sample")
    assert data.train_x.shape == (5000, 784) and data.test_x.shape == (1000, 784)
    assert data.train_x.dtype == np.uint8 and set(np.unique(data.train_y)) == set(range(10))


def test_a_local_folder_gz_or_raw(tmp_path) -> None:
    for f in TINY.glob("*.gz"):
        raw = gzip.decompress(f.read_bytes())
        (tmp_path / f.name.removesuffix(".gz")).write_bytes(raw)
    data = load_dataset(str(tmp_path))
    assert data.train_x.shape == (300, 784) and data.test_y.shape == (100,)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte.gz"):
        load_dataset(str(tmp_path))
    with pytest.raises(DataError, match="no such folder"):
        load_dataset(str(tmp_path / "nope"))


def test_normalizations_use_training_statistics() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(500, 784), dtype=np.uint8)
    unit = x / 255.0
    np.testing.assert_allclose(fit_normalizer("scale01", x).apply(x), unit, atol=1e-6)
    np.testing.assert_allclose(fit_normalizer("none", x).apply(x), x, atol=1e-3)
    glob = fit_normalizer("standardize", x)
    z = glob.apply(x)
    assert abs(z.mean()) < 1e-3 and abs(z.std() - 1) < 1e-3
    assert glob.mean.shape == ()
    per = fit_normalizer("standardize", x, per_pixel=True)
    zp = per.apply(x)
    assert per.mean.shape == (784,)
    np.testing.assert_allclose(zp.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(zp.std(axis=0), 1, atol=1e-3)
    np.testing.assert_allclose(per.apply_unit(unit), zp, atol=1e-4)


def test_constant_pixels_do_not_blow_up_per_pixel_standardization() -> None:
    x = np.zeros((100, 4), np.uint8)
    x[0, 0] = 255
    z = fit_normalizer("standardize", x, per_pixel=True).apply(x)
    assert np.all(np.isfinite(z)) and np.abs(z).max() <= 20


@pytest.mark.parametrize("size", [100, 0.1, 1, 0])
def test_validation_split_is_stratified_exact_and_seeded(size) -> None:
    labels = np.repeat(np.arange(10), [100, 110, 90, 100, 100, 100, 95, 105, 100, 100])
    tr, va = validation_split(labels, size, np.random.default_rng(0))
    expected = int(round(size * len(labels))) if isinstance(size, float) else size
    assert len(va) == expected and len(tr) + len(va) == len(labels)
    assert not set(tr) & set(va)
    if expected >= 100:
        counts = np.bincount(labels[va], minlength=10)
        assert counts.max() - counts.min() <= 2  # proportional to class sizes
    tr2, va2 = validation_split(labels, size, np.random.default_rng(0))
    np.testing.assert_array_equal(va, va2)
    if expected:
        _, va3 = validation_split(labels, size, np.random.default_rng(1))
        assert not np.array_equal(va, va3) or expected == len(labels)


def test_validation_split_refuses_to_eat_the_training_set() -> None:
    with pytest.raises(ValueError, match="leaves no training data"):
        validation_split(np.zeros(10, np.uint8), 10, np.random.default_rng(0))
