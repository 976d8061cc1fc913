"""Fixtures for the data-set tests: the shared data folder, skipped when absent."""

from __future__ import annotations

import pytest

from steinlatent.datasets import get_data_dir


@pytest.fixture(scope="session")
def data_root():
    """The data root (``$STEINLATENT_DATA`` or ``../shared/data``); skip if there is none."""
    try:
        return get_data_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"data folder absent: {exc}")


@pytest.fixture(scope="session")
def mnist_dir(data_root):
    folder = data_root / "mnist"
    if not folder.is_dir():
        pytest.skip(f"MNIST folder absent: {folder}")
    return folder


@pytest.fixture(scope="session")
def m1_dir(data_root):
    folder = data_root / "m1_patchseq"
    if not folder.is_dir():
        pytest.skip(f"M1 Patch-seq folder absent: {folder}")
    return folder
