"""Tests of the MNIST loader against the published facts and of its error paths."""

from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest

from steinlatent.datasets import get_data_dir, load_mnist, read_idx

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture(scope="module")
def train(mnist_dir):
    return load_mnist(kind="train")


@pytest.fixture(scope="module")
def test_raw(mnist_dir):
    return load_mnist(kind="test", as_float=False)


def test_train_shapes_range_and_counts(train):
    X, y = train
    assert X.shape == (60000, 784) and X.dtype == np.float32
    assert y.shape == (60000,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.bincount(y, minlength=10).tolist() == TRAIN_COUNTS
    # published mean training pixel 33.318 (= 0.1307 * 255)
    assert abs(X.mean(dtype=np.float64) * 255 - 33.318) < 1e-3


def test_test_split_raw(test_raw):
    X, y = test_raw
    assert X.shape == (10000, 784) and X.dtype == np.uint8
    assert np.bincount(y, minlength=10).tolist() == TEST_COUNTS
    assert y[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test digits
    assert X.flags.writeable  # a copy, not a read-only view of the file buffer


def test_float_is_bytes_over_255(test_raw):
    Xf, yf = load_mnist(kind="test")
    np.testing.assert_allclose(Xf, test_raw[0] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(yf, test_raw[1])


def test_both_is_train_then_test(train, test_raw):
    bunch = load_mnist(kind="both", return_X_y=False, as_float=False)
    assert bunch.data.shape == (70000, 784)
    np.testing.assert_array_equal(bunch.target[:60000], train[1])
    np.testing.assert_array_equal(bunch.data[60000:], test_raw[0])
    assert (bunch.split[:60000] == "train").all() and (bunch.split[60000:] == "test").all()
    assert bunch.images.shape == (70000, 28, 28)
    np.testing.assert_array_equal(bunch.images[5, 3], bunch.data[5, 3 * 28 : 4 * 28])


def _copy_test_split(mnist_dir, tmp_path, *, with_sums=True):
    dst = tmp_path / "mnist"
    dst.mkdir()
    for name in TEST_FILES:
        shutil.copy(mnist_dir / name, dst / name)
    if with_sums:
        lines = [
            ln
            for ln in (mnist_dir.parent / "SHA256SUMS").read_text().splitlines()
            if any(ln.endswith(f"mnist/{name}") for name in TEST_FILES)
        ]
        assert len(lines) == 2
        (tmp_path / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return dst


def test_checksum_ok_on_copy(mnist_dir, tmp_path):
    _copy_test_split(mnist_dir, tmp_path)
    X, y = load_mnist(tmp_path, kind="test", as_float=False)
    assert X.shape == (10000, 784)


def test_bad_checksum_raises(mnist_dir, tmp_path):
    dst = _copy_test_split(mnist_dir, tmp_path)
    path = dst / TEST_FILES[1]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="Checksum mismatch.*t10k-labels"):
        load_mnist(tmp_path, kind="test")


def test_no_checksum_file_warns(mnist_dir, tmp_path):
    dst = _copy_test_split(mnist_dir, tmp_path, with_sums=False)
    with pytest.warns(UserWarning, match="without checksum"):
        X, _ = load_mnist(dst, kind="test")  # the mnist folder itself is accepted too
    assert X.shape == (10000, 784)


def test_missing_file_message(tmp_path):
    (tmp_path / "mnist").mkdir()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz") as info:
        load_mnist(tmp_path)
    assert "STEINLATENT_DATA" in str(info.value) and "MNIST-dir" in str(info.value)


def test_bad_kind():
    with pytest.raises(ValueError, match="kind"):
        load_mnist(kind="validation")


def _write_idx(path, magic, shape, data):
    header = struct.pack(">I", magic) + struct.pack(f">{len(shape)}I", *shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + bytes(data))


def test_read_idx_big_endian(tmp_path):
    vals = np.arange(2 * 3 * 4, dtype=np.uint8)
    _write_idx(tmp_path / "a.gz", 0x803, (2, 3, 4), vals)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), vals.reshape(2, 3, 4))
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "a.gz", expected_magic=0x801)
    _write_idx(tmp_path / "b.gz", 0x801, (10,), range(9))  # one byte short
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "b.gz")


def test_data_dir_resolution(tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv("STEINLATENT_DATA", str(tmp_path))
    assert get_data_dir() == tmp_path.resolve()
    assert get_data_dir(other) == other.resolve()  # the argument wins
    with pytest.raises(FileNotFoundError, match="data_dir"):
        get_data_dir(tmp_path / "nope")
    monkeypatch.setenv("STEINLATENT_DATA", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="STEINLATENT_DATA"):
        get_data_dir()
