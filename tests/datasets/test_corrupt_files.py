"""Empty, truncated or corrupt data files: a ValueError that names the file and SHA256SUMS."""

from __future__ import annotations

import gzip
import re
import struct
import warnings

import numpy as np
import pytest

from steinlatent.datasets import load_m1_patchseq, load_mnist, read_idx

# ------------------------------------------------------------------ MNIST (IDX)
IMAGES, LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"


def _idx(magic: int, shape: tuple[int, ...], data: bytes) -> bytes:
    return struct.pack(f">I{len(shape)}I", magic, *shape) + data


def _good_images(n=3) -> bytes:
    return _idx(0x803, (n, 28, 28), bytes(n * 784))


def _good_labels(n=3) -> bytes:
    return _idx(0x801, (n,), bytes(range(n)))


def _mnist_root(tmp_path, **overrides: bytes):
    """A data root with tiny MNIST files (3 images per split), gzipped unless overridden."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, raw in ((IMAGES, _good_images()), (LABELS, _good_labels()),
                      (TEST_IMAGES, _good_images()), (TEST_LABELS, _good_labels())):
        (folder / name).write_bytes(overrides.get(name, gzip.compress(raw)))
    return tmp_path


def _expect_corrupt(path, call):
    """``call`` raises a ValueError naming ``path`` and pointing to SHA256SUMS."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # non-standard sizes, no SHA256SUMS
        with pytest.raises(ValueError, match=re.escape(str(path))) as info:
            call()
    assert "SHA256SUMS" in str(info.value)
    return str(info.value)


def test_tiny_mnist_fixture_loads(tmp_path):
    root = _mnist_root(tmp_path)
    with pytest.warns(UserWarning):
        X, y = load_mnist(root, kind="train", verify=False)
    assert X.shape == (3, 784) and y.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "too short"),  # an empty .gz: not even a gzip header
        (b"<html>not found</html>", "gzip"),  # an error page saved under the file's name
        (gzip.compress(_good_images())[:40], "gzip"),  # download cut short
        (gzip.compress(_good_images()[:-100]), "data bytes follow"),
        (gzip.compress(struct.pack(">I", 0x803) + b"\0\0"), "header"),  # header cut short
    ],
    ids=["empty", "not-gzip", "truncated-gzip", "truncated-idx", "truncated-header"],
)
def test_corrupt_mnist_file_names_file_and_checksums(tmp_path, content, problem):
    root = _mnist_root(tmp_path, **{IMAGES: content})
    path = root / "mnist" / IMAGES
    message = _expect_corrupt(path, lambda: load_mnist(root, kind="train", verify=False))
    assert re.search(problem, message), message
    # read_idx itself, as the benchmarks use it
    _expect_corrupt(path, lambda: read_idx(path))


def test_corrupt_gzip_interior(tmp_path):
    # Flip bytes inside the deflate stream: zlib or the CRC check catches it.
    blob = bytearray(gzip.compress(_good_labels(200) + bytes(range(256)) * 8))
    for i in range(12, len(blob) - 8, 7):
        blob[i] ^= 0xFF
    path = tmp_path / "labels.gz"
    path.write_bytes(bytes(blob))
    _expect_corrupt(path, lambda: read_idx(path))


def test_missing_mnist_file_is_still_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="MNIST file not found"):
        load_mnist(tmp_path, kind="test")


# ------------------------------------------------------------------ M1 Patch-seq (CSV)
COUNTS = "m1_patchseq_phys_temp_exon_counts.csv.gz"
EPHYS = "m1_patchseq_phys_temp_ephys_features.csv"
META = "m1_patchseq_phys_temp_meta_data.csv"


def _m1_texts(n_cells=6, n_genes=5):
    rng = np.random.default_rng(0)
    cells = [f"c{i}" for i in range(n_cells)]
    counts = "gene," + ",".join(cells) + "\n" + "".join(
        f"g{g}," + ",".join(str(v) for v in rng.integers(0, 50, n_cells)) + "\n"
        for g in range(n_genes)
    )
    ephys = "cell id,f1,f2\n" + "".join(
        f"{c},{rng.normal():.3f},{rng.normal():.3f}\n" for c in cells
    )
    meta = "Cell\tRNA family\tRNA type\n" + "".join(f"{c}\tIT\tL2/3 IT\n" for c in cells)
    return {COUNTS: gzip.compress(counts.encode()), EPHYS: ephys.encode(), META: meta.encode()}


def _m1_root(tmp_path, **overrides: bytes):
    folder = tmp_path / "m1_patchseq"
    folder.mkdir()
    for name, raw in _m1_texts().items():
        (folder / name).write_bytes(overrides.get(name, raw))
    return tmp_path


def _load_m1(root):
    return load_m1_patchseq(root, n_genes=3, features="all", verify=False)


def test_tiny_m1_fixture_loads(tmp_path):
    pytest.importorskip("pandas")
    m1 = _load_m1(_m1_root(tmp_path))
    assert m1.X.shape == (6, 3) and m1.Y.shape == (6, 2)


@pytest.mark.parametrize(
    "name, content, problem",
    [
        (EPHYS, b"", "EmptyDataError"),
        (META, b"Cell\tRNA family\tRNA type\n", "no data below the header"),
        (EPHYS, b"cell,f1\nc0,1.0\n", "no column 'cell id'"),
        (META, b"Cell\tRNA type\nc0\tx\n", "no column 'RNA family'"),
        (COUNTS, b"", "EmptyDataError|gzip|Gzip"),
        (COUNTS, b"gene,c0\ng0,1\n", "gzip|Gzip"),  # plain CSV under a .gz name
        (COUNTS, _m1_texts()[COUNTS][:30], "EOFError|gzip|Gzip|compressed"),
        (COUNTS, gzip.compress(b"gene,c0,c1\ng0,1,x\n"), "non-numeric counts"),
    ],
    ids=["empty-ephys", "header-only-meta", "ephys-no-id-column", "meta-no-family",
         "empty-counts", "counts-not-gzip", "counts-truncated", "counts-text"],
)
def test_corrupt_m1_file_names_file_and_checksums(tmp_path, name, content, problem):
    pytest.importorskip("pandas")
    root = _m1_root(tmp_path, **{name: content})
    message = _expect_corrupt(root / "m1_patchseq" / name, lambda: _load_m1(root))
    assert re.search(problem, message), message
