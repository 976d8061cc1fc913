"""Doctest collection: an example that needs an extra which is not installed is
skipped with the pip command that installs it (the test command installs them all)."""

import importlib.util

import pytest
from _pytest.doctest import DoctestItem

_NEEDS = {
    "torch": ("DenoisingScore", "NeuralIndexModel", "Autoencoder", "LinearEncoderDecoder",
              "SoftmaxReadout", "torch"),
    "dask": ("dask",),
    "matplotlib": ("matplotlib", "steinlatent.plot", "scree(", "latent_scatter(",
                   "loadings_heatmap("),
    "pandas": ("pandas", "steinlatent.experiments", "loading_table("),
}


def pytest_collection_modifyitems(config, items):
    missing = {m for m in _NEEDS if importlib.util.find_spec(m) is None}
    for item in items:
        if not isinstance(item, DoctestItem) or not missing:
            continue
        source = "\n".join(e.source for e in item.dtest.examples)
        source += "\n" + (item.dtest.filename or "").replace("/", ".")
        for module in sorted(missing):
            if any(name in source for name in _NEEDS[module]):
                item.add_marker(
                    pytest.mark.skip(reason=f'needs {module}: pip install -e ".[all]"'))
                break
