"""Former name of :mod:`._kernel_functions`, kept for callers that still import it."""

from ._kernel_functions import *  # noqa: F401,F403
from ._kernel_functions import median_distance, sq_dists  # noqa: F401
