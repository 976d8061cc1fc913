"""Data sets: the paper's simulated index model, MNIST and M1 Patch-seq loaders.

Loaders read local copies only (no downloads). The data folder is resolved by
:func:`get_data_dir`: argument, then ``$STEINLATENT_DATA``, then ``../shared/data``
beside the project root or the working directory.
"""

from ._m1 import M1_FEATURE_SETS, load_m1_patchseq
from ._mnist import load_mnist, read_idx
from ._paths import DATA_ENV_VAR, get_data_dir
from ._simulation import (
    ELEMENTARY_FUNCTIONS,
    IndexLink,
    TrueEllipticalScore,
    index_model_oracle_score,
    make_index_model,
    sample_index_model,
    true_score,
)

__all__ = [
    "make_index_model",
    "sample_index_model",
    "index_model_oracle_score",
    "true_score",
    "TrueEllipticalScore",
    "IndexLink",
    "ELEMENTARY_FUNCTIONS",
    "load_mnist",
    "read_idx",
    "load_m1_patchseq",
    "M1_FEATURE_SETS",
    "get_data_dir",
    "DATA_ENV_VAR",
]
