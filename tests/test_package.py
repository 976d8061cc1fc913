"""The package surface: lazy subpackages, no heavy import at ``import steinlatent``, py.typed."""

from __future__ import annotations

import importlib.resources
import subprocess
import sys

import pytest

import steinlatent

SUBPACKAGES = ["baselines", "datasets", "dask", "exceptions", "experiments", "inference",
               "metrics", "plot", "scores", "selection"]


def _run(code: str) -> str:
    # A fresh interpreter: this test process has imported everything already.
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    return proc.stdout.strip()


def test_import_loads_no_heavy_dependency_and_light_subpackages_stay_light():
    code = (
        "import sys, steinlatent\n"
        "heavy = ('torch', 'dask', 'distributed', 'matplotlib')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "for name in ('metrics', 'scores', 'datasets', 'selection', 'inference', "
        "'exceptions'):\n"
        "    getattr(steinlatent, name)\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    assert _run(code).splitlines() == ["[]", "[]"]


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_subpackage_is_an_attribute(name):
    extra = {"dask": "dask", "plot": "matplotlib"}.get(name)  # optional extras
    if extra:
        pytest.importorskip(extra)
    module = getattr(steinlatent, name)
    assert module.__name__ == f"steinlatent.{name}"
    assert name in dir(steinlatent)


def test_metrics_after_plain_import_in_a_fresh_process():
    out = _run("import steinlatent; print(steinlatent.metrics.subspace_distance.__name__)")
    assert out == "subspace_distance"


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        steinlatent.nope  # noqa: B018


def test_py_typed_marker_ships_with_the_package():
    assert importlib.resources.files("steinlatent").joinpath("py.typed").is_file()
