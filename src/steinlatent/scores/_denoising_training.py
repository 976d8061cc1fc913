"""The training of :class:`~steinlatent.scores.DenoisingScore` (needs torch).

The network's units (:func:`standardisation`), the noise ladder, the device and the
held-out split, then the loop: denoising score matching at several noise levels, each
epoch with fresh noise for the training rows; a fixed held-out set
(:func:`held_out_set`) gives the early-stopping loss, and the best weights are kept.
torch is passed in by the caller, which imports it lazily.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._utils import progress

__all__ = ["TrainingRun", "held_out_set", "noise_levels", "split_rows", "standardisation",
           "torch_device", "train_network"]

# "auto" noise ladder, in standardised units: 10 geometric levels from 1 to 0.1.
_AUTO_LEVELS = np.geomspace(1.0, 0.1, 10)
# Target number of held-out network evaluations per epoch (early-stopping loss).
_VAL_EVALS = 4096
# Rows per forward pass when the held-out loss is evaluated.
_EVAL_ROWS = 4096


@dataclass
class TrainingRun:
    """What :func:`train_network` returns: the losses per epoch and where it stopped."""

    history: dict = field(default_factory=lambda: {"train_loss": [], "val_loss": []})
    n_epochs: int = 0
    best_epoch: int = 0
    interrupted: bool = False


def standardisation(X: np.ndarray, standardize) -> tuple[np.ndarray, np.ndarray]:
    """(location, scale) of the network's units: per feature, one common scale
    ("global"), or none (False)."""
    p = X.shape[1]
    if not standardize:
        return np.zeros(p), np.ones(p)
    location = X.mean(axis=0)
    if standardize == "global":
        scale = np.full(p, float(np.sqrt(np.mean(X.var(axis=0)))))
    else:
        scale = X.std(axis=0)
    return location, np.where(scale > 0, scale, 1.0)


def noise_levels(levels, X: np.ndarray, standardize) -> np.ndarray:
    """The noise ladder, decreasing: "auto" or the levels given (checked)."""
    if isinstance(levels, str):
        out = _AUTO_LEVELS.copy()
        if not standardize:
            # "auto" is relative to the data scale; without standardisation the
            # network works in the units of x.
            out *= float(np.sqrt(np.mean(X.var(axis=0)))) or 1.0
    else:
        out = np.asarray(levels, dtype=float).reshape(-1)
        if out.size == 0 or not np.all(np.isfinite(out)) or np.any(out <= 0):
            raise ValueError(
                "noise_levels must be 'auto', a positive float or a non-empty "
                f"sequence of positive finite floats; got {levels!r}."
            )
    return np.sort(np.unique(out))[::-1].copy()


def torch_device(torch, device: str):
    """The torch device of the ``device`` setting ("auto": CUDA when available)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        out = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device.") from exc
    if out.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    return out


def split_rows(n: int, validation_fraction: float, seed: int):
    """(held-out rows, training rows): a seeded permutation, ``validation_fraction`` of
    the rows held out (at least one when the fraction is positive)."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = 0
    if validation_fraction > 0:
        n_val = max(1, int(round(validation_fraction * n)))
        if n - n_val < 1:
            raise ValueError(
                f"validation_fraction={validation_fraction} leaves no training "
                f"samples out of {n}; lower it or pass more samples."
            )
    return perm[:n_val], perm[n_val:]


def held_out_set(torch, Z_val, log_levels, gen):
    """((noisy inputs, log sigma), noise) of the held-out rows ``Z_val`` (numpy).

    Fixed held-out noise, so the held-out loss is a deterministic function of the
    weights. About _VAL_EVALS evaluations (at least one per held-out sample, at most
    16 per sample and level): held-out sample i gets levels i, i + 1, ... (mod L) on
    successive passes, so the levels are balanced.
    """
    n_val, L = Z_val.shape[0], log_levels.shape[0]
    device = log_levels.device
    f32 = dict(device=device, dtype=torch.float32)
    k = np.arange(int(np.clip(_VAL_EVALS, n_val, 16 * n_val * L)))
    rows, lev = k % n_val, (k % n_val + k // n_val) % L
    Z = torch.as_tensor(Z_val[rows], **f32)
    log_sig = log_levels[torch.as_tensor(lev, device=device)][:, None]
    eps = torch.randn(Z.shape, generator=gen, **f32)
    return (Z + torch.exp(log_sig) * eps, log_sig), eps


def train_network(model, torch, net, Z_train, log_levels, val, gen) -> TrainingRun:
    """Train ``net`` in place with the settings of ``model`` (a ``DenoisingScore``):
    AdamW, ``max_epochs`` epochs, early stopping on the held-out loss ``val`` after
    ``patience`` epochs without an improvement of ``tol``; the best weights are loaded
    at the end and the network is frozen for inference.

    A KeyboardInterrupt stops training, keeps the best weights so far (the last
    complete epoch's without validation) and warns.
    """
    opt = torch.optim.AdamW(net.parameters(), lr=model.lr, weight_decay=model.weight_decay)
    run = TrainingRun()
    history = run.history
    best_val, best_state, wait = np.inf, None, 0
    epoch = 0
    bar = progress(show=bool(model.verbose), total=model.max_epochs, desc="DenoisingScore",
                   unit="epoch")
    try:
        for epoch in range(1, model.max_epochs + 1):
            train_loss = _train_epoch(torch, net, opt, Z_train, log_levels, gen,
                                      model.batch_size)
            history["train_loss"].append(train_loss)
            if val is not None:
                val_loss = _eval_loss(torch, net, *val)
                history["val_loss"].append(val_loss)
                if val_loss < best_val - model.tol:
                    wait = 0
                else:
                    wait += 1
                if val_loss < best_val:
                    best_val, run.best_epoch = val_loss, epoch
                    best_state = copy.deepcopy(net.state_dict())
            else:
                run.best_epoch, best_state = epoch, copy.deepcopy(net.state_dict())
            bar.update(1)
            post = {"train": f"{train_loss:.4f}"}
            if val is not None:
                post["val"] = f"{history['val_loss'][-1]:.4f}"
            bar.set_postfix(post)
            if val is not None and model.patience is not None and wait >= model.patience:
                break
    except KeyboardInterrupt:
        run.interrupted = True
        if val is not None:
            # An epoch counts once its held-out loss is known.
            del history["train_loss"][len(history["val_loss"]) :]
        epoch = len(history["train_loss"])
        if best_state is None:
            msg = (
                "DenoisingScore training was interrupted before the first epoch "
                "finished; the network is essentially untrained."
            )
        else:
            msg = (
                f"DenoisingScore training was interrupted after {epoch} epoch(s); "
                f"keeping the weights of epoch {run.best_epoch}."
            )
        warnings.warn(msg, UserWarning, stacklevel=3)
    finally:
        bar.close()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    for prm in net.parameters():
        prm.requires_grad_(False)
    run.n_epochs = epoch
    return run


def _train_epoch(torch, net, opt, Z_train, log_levels, gen, batch_size: int) -> float:
    """One pass over the training rows with fresh noise; returns the mean loss."""
    n = Z_train.shape[0]
    bs = min(batch_size, n)
    order = torch.randperm(n, generator=gen, device=Z_train.device)
    total = 0.0
    for start in range(0, n, bs):
        z = Z_train[order[start : start + bs]]
        lev = torch.randint(len(log_levels), (z.shape[0],), generator=gen, device=z.device)
        log_sig = log_levels[lev, None]
        eps = torch.randn(z.shape, generator=gen, device=z.device, dtype=z.dtype)
        noisy = z + torch.exp(log_sig) * eps
        loss = torch.mean((net(noisy, log_sig[:, 0]) - eps) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * z.shape[0]
    return total / n


def _eval_loss(torch, net, inputs, eps) -> float:
    with torch.no_grad():
        total = 0.0
        for start in range(0, eps.shape[0], _EVAL_ROWS):
            sl = slice(start, start + _EVAL_ROWS)
            noisy, log_sig = inputs
            total += float(torch.sum((net(noisy[sl], log_sig[sl, 0]) - eps[sl]) ** 2))
    return total / eps.numel()
