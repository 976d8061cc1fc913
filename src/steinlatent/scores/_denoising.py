"""Neural score estimate trained by (multi-level) denoising score matching (needs torch).

The network learns the score of the data *smoothed* by Gaussian noise; the smallest
noise level is therefore part of the estimand, not a nuisance (see
:class:`DenoisingScore`). torch is imported only inside the methods, so importing
this module works without it and ``fit`` says which extra to install. The networks
(MLP and convolutional U-Net) live in :mod:`._denoising_nets`, the training loop in
:mod:`._denoising_training`.

Length: this file is over 500 lines because about a third of it is the class
docstring (estimand, units of sigma, architectures, divergence, costs); the code is one
estimator and its inference methods.
"""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._utils import block_bytes
from .._validation import check_weights
from ._base import ScoreModel
from ._denoising_nets import _ACTIVATIONS, build_network
from ._denoising_training import (
    held_out_set,
    noise_levels,
    split_rows,
    standardisation,
    torch_device,
    train_network,
)

__all__ = ["DenoisingScore"]

_TORCH_HINT = 'DenoisingScore needs PyTorch; install it with: pip install "steinlatent[torch]"'

# Rows per forward pass at inference.
_EVAL_ROWS = 4096
# Hutchinson probes of divergence() / score() (Rademacher vectors).
_PROBES = 8


def _jac_entries() -> int:
    """Tensor entries a batch of Jacobian intermediates may hold: one block's budget
    in float32 (2**23 entries = 32 MiB at scikit-learn's default working_memory)."""
    return block_bytes() // 4


def _import_torch():
    """Import torch (and torch.func) or raise an ImportError naming the extra."""
    try:
        import torch
        import torch.func  # noqa: F401
    except ImportError as exc:
        raise ImportError(_TORCH_HINT) from exc
    return torch


class DenoisingScore(ScoreModel):
    """Score of the data smoothed by N(0, sigma^2 I), learnt by denoising score matching.

    An MLP f(z, log sigma) with smooth activations is trained on noisy copies
    z~ = z + sigma * eps, eps ~ N(0, I), of the (standardised) samples z, with sigma
    drawn uniformly from the ladder ``noise_levels_``. The score is parametrised as
    s_sigma(z~) = f(z~, log sigma) / sigma (paper's sign, s = -grad log p), and the loss
    is the NCSN one (Song & Ermon 2019), the DSM loss weighted by sigma^2:

    .. math::

        \\ell(\\theta) = \\mathbb{E}\\,\\sigma^2
            \\Big\\| s_\\sigma(\\tilde z) - \\frac{\\tilde z - z}{\\sigma^2} \\Big\\|^2
            = \\mathbb{E}\\, \\| f(\\tilde z, \\log\\sigma) - \\varepsilon \\|^2 ,

    reported per coordinate (``history_``), so 1 is the loss of f = 0. Its minimiser is
    s_sigma = -grad log p_sigma with p_sigma = p * N(0, sigma^2 I) (Vincent 2011).
    All levels share one network, which is told sigma through log(sigma); the larger
    levels help the network learn the smallest one, and ``evaluate(X, sigma=...)``
    reads the score at any level of the ladder from the same fit.

    **Architectures.** ``architecture="mlp"`` (default): an MLP on the row and
    log(sigma) concatenated. ``architecture="unet"``: a small convolutional U-Net for
    images of shape ``image_shape`` (rows are flattened images), in the spirit of the
    NCSN that Tian et al. used for MNIST: residual blocks with GroupNorm and SiLU at
    ``len(channels)`` resolutions (each halving the previous), skip connections, and
    log(sigma) fed through an embedding added to every block. Both networks act on
    each row separately, so every method is pointwise in the rows of X.

    **The estimand.** ``score(X)`` returns the score of the data convolved with
    Gaussian noise at the *smallest* level sigma_min = ``sigma_``; it is a deliberately
    smoothed score (``smoothed = True``). With y = x and the exact score, Stein's lemma
    gives E[s(x) x^T] = I, so the unsupervised estimator needs this smoothing: for
    x ~ N(0, Sigma), s_sigma(x) = (Sigma + sigma^2 I)^{-1} x and
    E[s_sigma(x) x^T] = (Sigma + sigma^2 I)^{-1} Sigma, whose leading directions are the
    principal components of Sigma. For supervised use a small sigma_min keeps the
    bias, O(sigma^2) in the score, small; the variance of the training target grows
    like 1 / sigma^2, so a smaller sigma_min needs more data and epochs.

    **Units of sigma.** With ``standardize=True`` the network sees z = (x - m) / d,
    d the per-feature standard deviations (``location_``, ``scale_``), and the noise
    levels are in those units: in the units of x the smoothing is
    N(0, sigma^2 diag(d^2)), i.e. sigma is a fraction of each feature's spread, and the
    Gaussian example above becomes (Sigma + sigma^2 diag(d^2))^{-1} (x - mu).
    ``standardize="global"`` divides by one number d (the root mean feature variance),
    so the smoothing stays isotropic, N(0, sigma^2 d^2 I), and the PCA statement above
    holds exactly; use it for images and other data with common units (per-feature
    scaling would blow up nearly constant pixels, such as MNIST's borders). Scores and
    Jacobians are converted back by the chain rule, s_x(x) = D^{-1} s_z(z) and
    grad s_x(x) = D^{-1} grad s_z(z) D^{-1}, D = diag(d). Features with zero spread
    keep d = 1.

    Parameters
    ----------
    noise_levels : "auto", float > 0 or sequence of floats > 0, default="auto"
        Noise standard deviations, in standardised units when ``standardize`` is on
        (in the units of x otherwise). "auto": 10 geometric levels from 1.0 down to
        0.1; these are fractions of the feature spread, so with ``standardize=False``
        they are multiplied by the root mean feature variance of X. The smallest level
        defines the estimand.
    architecture : {"mlp", "unet"}, default="mlp"
        The network f (see above). "unet" needs ``image_shape``.
    hidden : tuple of int, default=(256, 256)
        Widths of the hidden layers ("mlp" only).
    image_shape : tuple of two ints or None, default=None
        (height, width) of one image, with height * width = n_features ("unet" only).
    channels : tuple of int, default=(16, 32, 64)
        Channels of the U-Net at each resolution, finest first ("unet" only).
    activation : {"silu", "softplus", "tanh"}, default="silu"
        Smooth activations only: with ReLU the Jacobian (needed for second-order
        estimators) is piecewise constant ("mlp"; the U-Net always uses SiLU).
    max_epochs : int, default=200
        Passes over the training part of X; every epoch draws fresh noise.
    batch_size : int, default=256
    lr : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW).
    validation_fraction : float in [0, 1), default=0.1
        Fraction of samples held out for early stopping; their noise (one level per
        sample, cycling through the ladder) is drawn once, so the held-out loss is a
        fixed function of the weights. 0 trains on everything for ``max_epochs``
        epochs and keeps the last weights.
    patience : int or None, default=20
        Stop when the held-out loss has not improved by more than ``tol`` for this
        many epochs, and restore the best weights. None: never stop early (the best
        weights are still restored).
    tol : float, default=1e-4
        Minimal improvement of the held-out loss (per-coordinate units) that resets
        ``patience``.
    standardize : bool or "global", default=True
        True: centre and scale each feature; "global": centre, then divide by one
        common scale; False: use x as it is.
    eval_dtype : {"float32", "float64"}, default="float32"
        Precision of inference (``score``, Jacobians). Training is always float32;
        outputs are always float64 numpy arrays. "float64" evaluates a double copy
        of the trained network (useful for finite-difference checks).
    device : str, default="cpu"
        torch device for training and inference: "cpu", "cuda", "cuda:1", or "auto"
        (CUDA when available, else the CPU). The fitted model stays on that device.
    n_probes : int or None, default=8
        Rademacher probes of Hutchinson's estimator in
        :meth:`~steinlatent.scores.ScoreModel.divergence` (and hence
        :meth:`~steinlatent.scores.ScoreModel.score`); None computes the exact trace
        (n_features backward passes).
    random_state : int, RandomState instance or None, default=None
        Seeds the train/validation split (numpy), the initial weights and the noise
        (torch). Results are reproducible for a fixed seed, device and thread count.
    verbose : bool, default=False
        Show a tqdm progress bar over epochs with the losses.

    Attributes
    ----------
    network_ : torch.nn.Module
        The trained network f(z, log sigma), rows (..., n_features) -> (..., n_features).
    device_ : str
        The torch device used (``device`` with "auto" resolved).
    noise_levels_ : ndarray of shape (n_levels,)
        The noise ladder, decreasing, in network units.
    sigma_ : float
        The smallest level (network units): the smoothing that defines the estimand.
    location_, scale_ : ndarray of shape (n_features,)
        Standardisation z = (x - location_) / scale_ (zeros and ones when off).
    n_epochs_ : int
        Epochs completed.
    best_epoch_ : int
        Epoch (1-based) whose weights were kept; 0 if none completed.
    history_ : dict
        ``"train_loss"`` and ``"val_loss"``: per-epoch lists (the latter empty without
        validation).
    interrupted_ : bool
        True when training was stopped by KeyboardInterrupt.
    n_features_in_ : int

    Notes
    -----
    ``second_order_sum(X, w)`` returns
    :math:`S^\\top \\operatorname{diag}(w) S - \\operatorname{sym}(\\sum_i w_i \\nabla s(x_i))`,
    :math:`\\operatorname{sym}(A) = (A + A^\\top) / 2`. The weighted Jacobian sum is the
    Jacobian, at v = 0, of :math:`v \\mapsto \\sum_i w_i\\, s(x_i + v)`, computed by one
    reverse-mode pass per output coordinate over a batch of rows, so no per-sample
    p x p matrix is stored. The
    symmetrisation is needed because a denoising network is not constrained to be a
    gradient field: its Jacobian is only approximately symmetric, whereas the true
    :math:`T = \\nabla^2 p / p` is symmetric; the symmetric part is the nearest symmetric
    matrix
    (Frobenius norm). ``score_jacobian`` returns the raw, unsymmetrised Jacobian.

    ``divergence`` (hence ``score``) uses Hutchinson's estimator,
    :math:`\\operatorname{tr} J = \\mathbb{E}[v^\\top J v]`, with
    ``n_probes`` Rademacher vectors v per row (one reverse-mode pass each, seeded from
    the fit, so repeated calls agree); ``n_probes=None`` gives the exact trace.
    ``score(X)`` is minus the Hyvarinen objective, the mean of
    :math:`\\lVert s \\rVert^2 / 2 - \\operatorname{tr} \\nabla s` for :math:`s_\\sigma`
    on the rows of X: higher is better.

    Cost: ``jacobian`` and ``second_order_sum`` need n_features backward passes per
    sample. At MNIST size (n = 10000, p = 784, hidden=(256, 256)) one
    ``second_order_sum`` over X cost about as much as 100 training epochs on one CPU
    thread. A U-Net epoch costs about 30 times an MLP epoch on the CPU
    (benchmarks/bench_denoising_score.py); prefer a GPU (``device="auto"``), and the
    first-order estimator, for images.

    References
    ----------
    P. Vincent, "A connection between score matching and denoising autoencoders",
    Neural Computation 23 (2011). Y. Song and S. Ermon, "Generative modeling by
    estimating gradients of the data distribution", NeurIPS (2019).

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.scores import DenoisingScore
    >>> X = np.random.default_rng(0).normal(size=(300, 2))
    >>> model = DenoisingScore(hidden=(16,), max_epochs=3, random_state=0).fit(X)
    >>> model.evaluate(X[:5]).shape
    (5, 2)
    >>> model.jacobian(X[:5]).shape
    (5, 2, 2)
    >>> model.evaluate(X[:5], sigma=0.5).shape  # another level of the noise ladder
    (5, 2)

    A convolutional score for 8 x 8 images (rows are flattened images):

    >>> images = np.random.default_rng(0).uniform(size=(50, 64))
    >>> unet = DenoisingScore(
    ...     architecture="unet", image_shape=(8, 8), channels=(4, 8), max_epochs=1,
    ...     random_state=0,
    ... ).fit(images)
    >>> unet.evaluate(images[:3]).shape
    (3, 64)
    >>> isinstance(unet.score(images[:3]), float)  # minus the Hyvarinen objective
    True
    """

    smoothed = True

    _parameter_constraints: dict = {
        "noise_levels": [
            StrOptions({"auto"}),
            Interval(Real, 0, None, closed="neither"),
            "array-like",
        ],
        "architecture": [StrOptions({"mlp", "unet"})],
        "hidden": [list, tuple],
        "image_shape": [None, list, tuple],
        "channels": [list, tuple],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "patience": [None, Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "standardize": ["boolean", StrOptions({"global"})],
        "eval_dtype": [StrOptions({"float32", "float64"})],
        "device": [str],
        "n_probes": [None, Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        noise_levels="auto",
        *,
        architecture="mlp",
        hidden=(256, 256),
        image_shape=None,
        channels=(16, 32, 64),
        activation="silu",
        max_epochs=200,
        batch_size=256,
        lr=1e-3,
        weight_decay=0.0,
        validation_fraction=0.1,
        patience=20,
        tol=1e-4,
        standardize=True,
        eval_dtype="float32",
        device="cpu",
        n_probes=_PROBES,
        random_state=None,
        verbose=False,
    ):
        self.noise_levels = noise_levels
        self.architecture = architecture
        self.hidden = hidden
        self.image_shape = image_shape
        self.channels = channels
        self.activation = activation
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.tol = tol
        self.standardize = standardize
        self.eval_dtype = eval_dtype
        self.device = device
        self.n_probes = n_probes
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ checks

    def _check_hidden(self):
        hidden = tuple(self.hidden)
        if len(hidden) == 0 or not all(
            isinstance(h, Integral) and not isinstance(h, bool) and h >= 1 for h in hidden
        ):
            raise ValueError(
                f"hidden must be a non-empty tuple of positive ints (layer widths); got "
                f"{self.hidden!r}."
            )
        return tuple(int(h) for h in hidden)

    def _check_image(self, n_features):
        """(image_shape, channels) for the U-Net; (None, channels) for the MLP."""
        channels = tuple(self.channels)
        if len(channels) == 0 or not all(
            isinstance(c, Integral) and not isinstance(c, bool) and c >= 1 for c in channels
        ):
            raise ValueError(
                f"channels must be a non-empty tuple of positive ints; got {self.channels!r}."
            )
        if self.architecture != "unet":
            return None, channels
        shape = self.image_shape
        if shape is None:
            raise ValueError(
                'architecture="unet" needs image_shape=(height, width), e.g. (28, 28) for MNIST.'
            )
        shape = tuple(shape)
        if len(shape) != 2 or not all(isinstance(v, Integral) and v >= 1 for v in shape):
            raise ValueError(f"image_shape must be two positive ints; got {self.image_shape!r}.")
        if shape[0] * shape[1] != n_features:
            raise ValueError(
                f"image_shape={shape} holds {shape[0] * shape[1]} pixels but X has "
                f"{n_features} features; pass the shape of one image."
            )
        return tuple(int(v) for v in shape), tuple(int(c) for c in channels)

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None):
        """Train the network on samples ``X`` of shape (n_samples, n_features).

        A KeyboardInterrupt stops training, keeps the best weights so far (the last
        complete epoch's without validation) and warns; the model is then usable.
        """
        self._validate_params()
        hidden = self._check_hidden()
        X = self._validate_X(X, reset=True)
        torch = _import_torch()
        device = torch_device(torch, self.device)
        n, p = X.shape
        image_shape, channels = self._check_image(p)

        # Standardisation (chain rule back in score / score_jacobian).
        location, scale = standardisation(X, self.standardize)
        levels = noise_levels(self.noise_levels, X, self.standardize)
        Z = (X - location) / scale

        # Seeds: numpy for the split, torch (local RNG state) for weights and noise.
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        val_idx, train_idx = split_rows(n, self.validation_fraction, seed)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build_network(
                self.architecture,
                p,
                hidden=hidden,
                activation=self.activation,
                image_shape=image_shape,
                channels=channels,
            )
        net = net.to(device=device, dtype=torch.float32)
        gen = torch.Generator(device=device)
        gen.manual_seed(seed)

        f32 = dict(device=device, dtype=torch.float32)
        Z_train = torch.as_tensor(Z[train_idx], **f32)
        log_levels = torch.log(torch.as_tensor(levels.copy(), **f32))
        val = held_out_set(torch, Z[val_idx], log_levels, gen) if len(val_idx) else None
        run = train_network(self, torch, net, Z_train, log_levels, val, gen)

        self.network_ = net
        self.noise_levels_ = levels
        self.sigma_ = float(levels[-1])
        self.device_ = str(device)
        self._probe_seed = seed
        self.location_ = location
        self.scale_ = scale
        self.interrupted_ = run.interrupted
        self.n_epochs_ = run.n_epochs
        self.best_epoch_ = run.best_epoch
        self.history_ = run.history
        return self

    # ------------------------------------------------------------------ inference

    def _inference(self, X, sigma=None):
        """Validated X in network units, torch, the evaluation net, tensor options,
        log(sigma) as a tensor and sigma (network units; default ``sigma_``)."""
        check_is_fitted(self, "network_")
        X = self._validate_X(X, reset=False)
        sigma = self._check_sigma(sigma)
        torch = _import_torch()
        net = self.network_
        dtype = torch.float32
        if self.eval_dtype == "float64":
            net = copy.deepcopy(net).double()
            dtype = torch.float64
        device = next(net.parameters()).device
        log_sig = torch.log(torch.tensor(sigma, dtype=dtype, device=device))
        Z = (X - self.location_) / self.scale_
        return torch, net, Z, dict(dtype=dtype, device=device), log_sig, sigma

    def _check_sigma(self, sigma) -> float:
        if sigma is None:
            return self.sigma_
        if (
            isinstance(sigma, bool)
            or not isinstance(sigma, Real)
            or not np.isfinite(sigma)
            or sigma <= 0
        ):
            raise ValueError(f"sigma must be a positive finite float or None; got {sigma!r}.")
        return float(sigma)

    def _width(self) -> int:
        """Rough number of activations one row holds in the network (memory budgets)."""
        if self.architecture == "unet":
            return 4 * self.n_features_in_ * max(self._check_image(self.n_features_in_)[1])
        return max(self.n_features_in_ + 1, *self._check_hidden())

    def _eval_rows(self) -> int:
        return int(np.clip(4 * _jac_entries() // self._width(), 1, _EVAL_ROWS))

    def evaluate(self, X, sigma: float | None = None) -> np.ndarray:
        """Return the smoothed score s_sigma(X) = -grad log p_sigma(X), shape (n, p).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        sigma : float or None, default=None
            Noise level at which to read the noise-conditional network, in the units
            of ``noise_levels_`` (standardised units when ``standardize`` is on).
            None: the smallest level ``sigma_``, the estimand. Levels on the training
            ladder are the ones the network was trained at; others interpolate.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            s_sigma at each row; p_sigma is the data density convolved with
            N(0, sigma^2 D^2) (see the class notes on units).
        """
        torch, net, Z, opts, log_sig, sigma = self._inference(X, sigma)
        out = np.empty_like(Z)
        step = self._eval_rows()
        with torch.no_grad():
            for start in range(0, Z.shape[0], step):
                sl = slice(start, start + step)
                z = torch.as_tensor(Z[sl], **opts)
                out[sl] = net(z, log_sig).cpu().numpy()
        return out / (sigma * self.scale_)

    def divergence(self, X) -> np.ndarray:
        """Return tr grad s_sigma(X) at the smallest level, shape (n_samples,).

        Hutchinson's estimator with ``n_probes`` Rademacher vectors v per row,
        tr J = E[v^T J v], each term one reverse-mode pass (torch autograd). The probes
        are seeded from the fit's seed, so repeated calls give the same numbers; the
        estimate is unbiased, with a variance that falls like 1 / n_probes.
        ``n_probes=None`` gives the exact trace (n_features passes).
        """
        torch, net, Z, opts, log_sig, sigma = self._inference(X)
        n, p = Z.shape
        inv2 = 1.0 / self.scale_**2
        gen = torch.Generator(device=opts["device"])
        gen.manual_seed(int(self._probe_seed))
        exact = self.n_probes is None
        probes = p if exact else int(self.n_probes)
        out = np.zeros(n)
        step = max(1, self._eval_rows() // 4)
        w = torch.as_tensor(inv2, **opts)
        for start in range(0, n, step):
            sl = slice(start, start + step)
            z = torch.as_tensor(Z[sl], **opts).requires_grad_(True)
            with torch.enable_grad():
                f = net(z, log_sig)
                acc = torch.zeros(z.shape[0], **opts)
                for k in range(probes):
                    if exact:
                        v = torch.zeros_like(z)
                        v[:, k] = 1.0
                    else:
                        v = torch.randint(0, 2, z.shape, generator=gen, device=z.device)
                        v = v.to(z.dtype) * 2 - 1
                    (g,) = torch.autograd.grad(f, z, grad_outputs=v, retain_graph=True)
                    # d s_a / d x_b = (d f_a / d z_b) / (sigma d_a d_b): trace weights 1 / d^2.
                    acc += torch.sum(g * v * w, dim=1)
            out[sl] = acc.detach().cpu().numpy() / (1 if exact else probes)
        return out / sigma

    def jacobian(self, X) -> np.ndarray:
        """Return grad s_sigma(X), shape (n, p, p); [i, a, b] = d s_a / d x_b at x_i.

        Computed by ``torch.func.vmap(jacrev(...))`` in row batches; not symmetrised.
        """
        torch, net, Z, opts, log_sig, _ = self._inference(X)
        n, p = Z.shape

        def f_one(z):
            return net(z, log_sig)

        jac = torch.func.vmap(torch.func.jacrev(f_one))
        rows = max(1, _jac_entries() // (p * self._width()))
        out = np.empty((n, p, p))
        for start in range(0, n, rows):
            sl = slice(start, start + rows)
            out[sl] = jac(torch.as_tensor(Z[sl], **opts)).cpu().numpy()
        # s_x = D^{-1} s_z / sigma and z = D^{-1}(x - m): J_x = D^{-1} J_f D^{-1} / sigma.
        inv = 1.0 / self.scale_
        return out * (inv[:, None] * inv[None, :] / self.sigma_)

    def second_order_sum(self, X, w) -> np.ndarray:
        """Return S^T diag(w) S - sym(sum_i w_i grad s(x_i)), a symmetric (p, p) matrix.

        A 2-D ``w`` of shape (n, k) gives the k matrices, shape (k, p, p).

        Row batches; each batch's weighted Jacobian sum is the Jacobian of
        v -> sum_i w_i s(x_i + v) at v = 0, so no per-sample p x p matrix is held.
        """
        w_arr = np.asarray(w)
        if w_arr.ndim == 2:  # one (p, p) matrix per column of W
            return np.stack([self.second_order_sum(X, w_arr[:, j]) for j in range(w_arr.shape[1])])
        torch, net, Z, opts, log_sig, _ = self._inference(X)
        n, p = Z.shape
        w = check_weights(w, n)
        rows = min(n, 1024)
        chunk = max(1, min(p, _jac_entries() // (rows * self._width())))
        sss = np.zeros((p, p))
        jsum = np.zeros((p, p))
        for start in range(0, n, rows):
            sl = slice(start, start + rows)
            z = torch.as_tensor(Z[sl], **opts)
            wt = torch.as_tensor(w[sl], **opts)

            def weighted_f(v, z=z, wt=wt):
                return wt @ net(z + v, log_sig)

            with torch.no_grad():
                f = net(z, log_sig).cpu().numpy().astype(float)
            sss += (f * w[sl, None]).T @ f
            v0 = torch.zeros(p, **opts)
            jsum += torch.func.jacrev(weighted_f, chunk_size=chunk)(v0).cpu().numpy()
        # Network units -> x units: s = D^{-1} f / sigma, grad s = D^{-1} grad f D^{-1} / sigma.
        inv = 1.0 / self.scale_
        outer = inv[:, None] * inv[None, :]
        jsum = 0.5 * (jsum + jsum.T)
        out = (sss / self.sigma_**2 - jsum / self.sigma_) * outer
        return 0.5 * (out + out.T)
