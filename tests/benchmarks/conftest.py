"""The zoo lives in benchmarks/ (not an installed package): put that folder on sys.path."""

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))


@pytest.fixture
def registry():
    """The method registry, restored after the test (tests register candidates)."""
    from zoo.methods import METHODS

    saved = dict(METHODS)
    yield METHODS
    METHODS.clear()
    METHODS.update(saved)
