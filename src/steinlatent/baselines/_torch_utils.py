"""Shared machinery of the torch baselines: lazy import, seeding, device, training loop.

Torch is an optional dependency (``pip install "steinlatent[torch]"``): nothing here
imports it at module import time, so ``steinlatent.baselines`` can be imported without it.

Reproducibility. A ``random_state`` (None, int or ``RandomState``) is turned into one
numpy ``RandomState``. From it we draw (i) an integer seed for the weight initialisation,
which runs under :func:`torch.random.fork_rng` so torch's global generator is neither
used nor advanced, and (ii) the per-epoch permutations of the mini-batches. Weights are
always initialised on the CPU and then moved, so a seed gives the same initial network on
every device. Training is in float32; on a GPU, reductions may be non-deterministic.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from .._utils import progress

__all__ = [
    "import_torch",
    "resolve_device",
    "seeds_from",
    "init_module",
    "as_tensor",
    "train_minibatch",
    "predict_batched",
    "resolve_batch_size",
    "mlp",
    "TrainResult",
]

_INSTALL_HINT = 'pip install "steinlatent[torch]"'

# Forward passes at prediction time use row blocks of this size (bounded memory).
_PREDICT_ROWS = 8192


def import_torch():
    """Return the ``torch`` module, or raise an ImportError that names the extra."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise ImportError(
            "The neural baselines (NeuralIndexModel, Autoencoder, LinearEncoderDecoder, "
            f"SoftmaxReadout) need PyTorch. Install it with: {_INSTALL_HINT}"
        ) from exc
    return torch


def resolve_device(device: Any):
    """Return a ``torch.device``; the error names the ``device`` argument."""
    torch = import_torch()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:0'."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    return dev


def seeds_from(random_state) -> tuple[int, np.random.RandomState]:
    """Return (seed for the weight initialisation, numpy RNG for shuffling)."""
    rng = check_random_state(random_state)
    init_seed = int(rng.randint(0, 2**31 - 1))
    # A separate stream for shuffling, so changing max_epochs never changes the init.
    shuffle_rng = np.random.RandomState(int(rng.randint(0, 2**31 - 1)))
    return init_seed, shuffle_rng


def init_module(builder: Callable[[], Any], seed: int, device):
    """Build a module with torch's default initialisation seeded by ``seed``.

    The global torch RNG is forked, so calling this leaves it exactly as it was.
    """
    torch = import_torch()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = builder()
    return module.to(device=device, dtype=torch.float32)


def mlp(sizes: Sequence[int], *, bias: bool = True):
    """Linear layers of the given widths with ReLU between them (none after the last)."""
    torch = import_torch()
    layers: list = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(torch.nn.Linear(a, b, bias=bias))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def as_tensor(X: np.ndarray, device):
    """Float32 contiguous tensor on ``device``."""
    torch = import_torch()
    return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=device)


def resolve_batch_size(batch_size, n_samples: int) -> int:
    """Integer batch size from an int (capped at n) or a fraction of n.

    A float ``f`` in (0, 1) gives ``round(f * n)`` rounded half up, at least 1 (so
    the paper's 0.5% of n is 45 at n = 9000, 2 at n = 300 and 1 for n < 300).
    """
    if isinstance(batch_size, Integral):
        return int(min(int(batch_size), n_samples))
    # Rounding to 9 decimals first removes representation error (0.005 * 300 is not
    # exactly 1.5 in binary), so the half-up rule applies to the intended product.
    size = math.floor(round(float(batch_size) * n_samples, 9) + 0.5)
    return int(min(max(1, size), n_samples))


@dataclass
class TrainResult:
    """What the training loop reports: one mean loss per finished epoch."""

    loss_curve: list[float] = field(default_factory=list)
    n_epochs: int = 0
    interrupted: bool = False


def train_minibatch(
    module,
    loss_fn: Callable[..., Any],
    tensors: Sequence[Any],
    *,
    batch_size: int,
    max_epochs: int,
    lr: float,
    shuffle_rng: np.random.RandomState,
    verbose: bool = False,
    desc: str = "training",
) -> TrainResult:
    """Adam (default betas and eps) on mini-batches of ``tensors`` for ``max_epochs``.

    ``loss_fn(module, *batch)`` returns the mean loss of a batch. Every epoch visits all
    rows once in a fresh random order; the last batch may be smaller. The loss curve
    holds the sample-weighted mean batch loss of each epoch (measured during the
    epoch, as the weights move).

    Pressing Ctrl-C (KeyboardInterrupt) stops training: the weights reached so far are
    kept, a warning says after how many whole epochs, and ``interrupted`` is True.
    """
    torch = import_torch()
    n = int(tensors[0].shape[0])
    device = tensors[0].device
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    result = TrainResult()
    bar = progress(show=verbose, total=max_epochs, desc=desc, unit="epoch", leave=False)
    module.train()
    try:
        for _ in range(max_epochs):
            perm = torch.as_tensor(shuffle_rng.permutation(n), device=device)
            # Accumulate on the device: a float() per step would force a GPU sync.
            total = torch.zeros((), device=device)
            for start in range(0, n, batch_size):
                idx = perm[start : start + batch_size]
                batch = [t.index_select(0, idx) for t in tensors]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(module, *batch)
                loss.backward()
                optimizer.step()
                total += loss.detach() * idx.shape[0]
            epoch_loss = float(total) / n
            if not math.isfinite(epoch_loss):
                raise FloatingPointError(
                    f"{desc}: the training loss became {epoch_loss} in epoch "
                    f"{result.n_epochs + 1}; lower lr or rescale the inputs."
                )
            result.loss_curve.append(epoch_loss)
            result.n_epochs += 1
            bar.update(1)
            bar.set_postfix(loss=f"{epoch_loss:.4g}")
    except KeyboardInterrupt:
        result.interrupted = True
        warnings.warn(
            f"{desc} interrupted after {result.n_epochs} of {max_epochs} epochs; "
            "keeping the weights reached so far.",
            RuntimeWarning,
            stacklevel=3,
        )
    finally:
        bar.close()
        module.eval()
    return result


def predict_batched(fn: Callable[[Any], Any], X: np.ndarray, device) -> np.ndarray:
    """Apply a tensor function to row blocks of ``X`` without gradients; float64 out."""
    torch = import_torch()
    out = []
    with torch.no_grad():
        for start in range(0, X.shape[0], _PREDICT_ROWS):
            block = as_tensor(X[start : start + _PREDICT_ROWS], device)
            out.append(fn(block).cpu().numpy().astype(np.float64))
    if not out:
        raise ValueError("Found an empty input: at least one sample is required.")
    return np.concatenate(out, axis=0)
