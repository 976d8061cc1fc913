"""The paper's MNIST baselines: autoencoder, decoder on a fixed linear code, softmax read-out.

All three follow the paper's Section 5 (MNIST): Adam with torch's default settings,
batch 128, 50 epochs, squared-error losses, ReLU multilayer perceptrons whose widths are
multiples of the latent size h (encoder p -> 4h -> 2h -> h, decoder h -> 2h -> 4h -> p).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._torch_utils import (
    as_tensor,
    import_torch,
    init_module,
    mlp,
    predict_batched,
    resolve_batch_size,
    resolve_device,
    seeds_from,
    train_minibatch,
)

__all__ = ["Autoencoder", "LinearEncoderDecoder", "SoftmaxReadout"]

_TRAINING_CONSTRAINTS: dict = {
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "device": [str],
}


def _check_clip(clip):
    """Return ``clip`` as a (low, high) float pair or None; the error names ``clip``."""
    if clip is None:
        return None
    try:
        low, high = (float(v) for v in clip)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"clip must be None or a pair (low, high); got {clip!r}.") from exc
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"clip must be a finite pair with low < high; got {clip!r}.")
    return low, high


def _decoder_sizes(h: int, p: int) -> list[int]:
    return [h, 2 * h, 4 * h, p]


def _device_of(module):
    return next(module.parameters()).device


class _DecoderMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """``inverse_transform`` and ``reconstruct`` shared by the two code -> X decoders."""

    @property
    def _n_features_out(self):
        return self.n_components_

    def inverse_transform(self, Z) -> np.ndarray:
        """Decode codes ``Z`` (n, h) to (n, p), clipped to ``clip`` when it is set."""
        check_is_fitted(self)
        Z = check_array(Z, dtype=np.float64, input_name="Z")
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"Z has {Z.shape[1]} columns but the decoder expects "
                f"{self.n_components_} (n_components_)."
            )
        out = predict_batched(self.decoder_, Z, _device_of(self.decoder_))
        clip = _check_clip(self.clip)
        if clip is not None:
            np.clip(out, clip[0], clip[1], out=out)
        return out

    def reconstruct(self, X) -> np.ndarray:
        """``inverse_transform(transform(X))``: the reconstruction of ``X``."""
        return self.inverse_transform(self.transform(X))


class Autoencoder(_DecoderMixin, BaseEstimator):
    """The paper's fully connected autoencoder with an h-dimensional code.

    Encoder p -> 4h -> 2h -> h and decoder h -> 2h -> 4h -> p, linear layers with
    biases and a ReLU between consecutive layers (none after the code layer, none
    after the output layer), trained end to end by Adam on the squared
    reconstruction error.

    .. math:: \\min_{\\theta,\\phi} \\frac{1}{np} \\sum_i \\| x_i - g_\\phi(e_\\theta(x_i)) \\|^2

    Parameters
    ----------
    n_components : int
        h, the code (latent) dimension.
    max_epochs : int, default=50
    batch_size : int, default=128
    lr : float, default=1e-3
        Adam's learning rate (other Adam settings are torch's defaults).
    clip : None or (low, high), default=None
        Clip the outputs of :meth:`inverse_transform` and :meth:`reconstruct` to
        this range. The paper clips to (0, 1) for MNIST pixels. Training itself is
        never clipped (a clipped output would have no gradient).
    random_state : None, int or RandomState, default=None
        Seeds the initialisation and the batch order (global torch RNG untouched).
    verbose : bool, default=False
        Show a tqdm progress bar over epochs.
    device : str, default="cpu"

    Attributes
    ----------
    encoder_, decoder_ : torch.nn.Sequential
        The trained halves (float32).
    n_components_ : int
    loss_curve_ : list of float
        Mean squared error per finished epoch (measured during the epoch).
    n_epochs_ : int
        Epochs completed (fewer than ``max_epochs`` only after a KeyboardInterrupt).
    n_features_in_ : int

    Notes
    -----
    The loss is the mean over samples and pixels; the paper's summed squared error
    differs by a constant factor, which Adam's updates are nearly invariant to.
    Inputs are not rescaled: MNIST pixels are expected in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.baselines import Autoencoder
    >>> X = np.random.default_rng(0).uniform(size=(256, 20))
    >>> ae = Autoencoder(3, max_epochs=2, clip=(0, 1), random_state=0).fit(X)
    >>> ae.transform(X).shape, ae.reconstruct(X).shape
    ((256, 3), (256, 20))
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "clip": [None, tuple, list],
        **_TRAINING_CONSTRAINTS,
    }

    def __init__(
        self,
        n_components,
        *,
        max_epochs=50,
        batch_size=128,
        lr=1e-3,
        clip=None,
        random_state=None,
        verbose=False,
        device="cpu",
    ):
        self.n_components = n_components
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.clip = clip
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    def fit(self, X, y=None):
        """Train encoder and decoder on ``X`` of shape (n_samples, n_features)."""
        self._validate_params()
        _check_clip(self.clip)
        X = validate_data(self, X, dtype=np.float64)
        p = X.shape[1]
        h = self.n_components
        torch = import_torch()
        device = resolve_device(self.device)
        init_seed, shuffle_rng = seeds_from(self.random_state)

        def build():
            return torch.nn.ModuleDict(
                {"encoder": mlp([p, 4 * h, 2 * h, h]), "decoder": mlp(_decoder_sizes(h, p))}
            )

        net = init_module(build, init_seed, device)

        def loss_fn(module, xb):
            return torch.nn.functional.mse_loss(module["decoder"](module["encoder"](xb)), xb)

        result = train_minibatch(
            net,
            loss_fn,
            [as_tensor(X, device)],
            batch_size=resolve_batch_size(self.batch_size, X.shape[0]),
            max_epochs=self.max_epochs,
            lr=self.lr,
            shuffle_rng=shuffle_rng,
            verbose=self.verbose,
            desc=type(self).__name__,
        )
        self.encoder_ = net["encoder"]
        self.decoder_ = net["decoder"]
        self.n_components_ = h
        self.loss_curve_ = result.loss_curve
        self.n_epochs_ = result.n_epochs
        return self

    def transform(self, X) -> np.ndarray:
        """The codes e(X), shape (n_samples, n_components)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return predict_batched(self.encoder_, X, _device_of(self.encoder_))


class LinearEncoderDecoder(_DecoderMixin, BaseEstimator):
    """A fixed linear encoder z = (x - mean) W^T with the autoencoder's decoder trained on it.

    The paper decodes its Stein (and optionally PCA) embeddings with "the same
    network as the AE decoder, trained on the fixed embedding": h -> 2h -> 4h -> p,
    ReLU between the linear layers, Adam on the squared reconstruction error. Only
    the decoder is trained; ``components`` stays fixed.

    Parameters
    ----------
    components : array-like of shape (n_components, n_features)
        W, the encoder's rows (for example ``PCA().components_`` or a Stein
        estimate ``B_hat.T``). Used as given: rows need not be orthonormal.
    mean : None, "fit" or array-like of shape (n_features,), default=None
        Subtracted from ``X`` before projecting. None: no centring, the paper's
        z = B^T x. "fit": the training mean. An array: used as given.
    max_epochs : int, default=50
    batch_size : int, default=128
    lr : float, default=1e-3
    clip : None or (low, high), default=None
        Clip decoded outputs (the paper: (0, 1) for MNIST); training is unclipped.
    random_state : None, int or RandomState, default=None
    verbose : bool, default=False
    device : str, default="cpu"

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Validated float64 copy of ``components``.
    mean_ : ndarray of shape (n_features,)
        The vector subtracted before projecting (zeros when ``mean=None``).
    decoder_ : torch.nn.Sequential
    n_components_ : int
    loss_curve_ : list of float
    n_epochs_ : int
    n_features_in_ : int

    Notes
    -----
    The codes are not standardised before decoding (the paper does not say it
    does): with orthonormal rows they have the scale of the data's projections.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from steinlatent.baselines import LinearEncoderDecoder
    >>> X = np.random.default_rng(0).uniform(size=(256, 20))
    >>> W = PCA(3).fit(X).components_
    >>> dec = LinearEncoderDecoder(W, mean="fit", max_epochs=2, random_state=0).fit(X)
    >>> dec.reconstruct(X).shape
    (256, 20)
    """

    _parameter_constraints: dict = {
        "components": ["array-like"],
        "mean": [None, StrOptions({"fit"}), "array-like"],
        "clip": [None, tuple, list],
        **_TRAINING_CONSTRAINTS,
    }

    def __init__(
        self,
        components,
        *,
        mean=None,
        max_epochs=50,
        batch_size=128,
        lr=1e-3,
        clip=None,
        random_state=None,
        verbose=False,
        device="cpu",
    ):
        self.components = components
        self.mean = mean
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.clip = clip
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    def fit(self, X, y=None):
        """Train the decoder to map the fixed codes of ``X`` back to ``X``."""
        self._validate_params()
        _check_clip(self.clip)
        X = validate_data(self, X, dtype=np.float64)
        n, p = X.shape
        W = check_array(self.components, dtype=np.float64, input_name="components")
        if W.shape[1] != p:
            raise ValueError(
                f"components has shape {W.shape} but X has {p} features; components "
                "must have shape (n_components, n_features)."
            )
        if isinstance(self.mean, str):
            mean = X.mean(axis=0)
        elif self.mean is None:
            mean = np.zeros(p)
        else:
            mean = check_array(
                self.mean, dtype=np.float64, ensure_2d=False, input_name="mean"
            ).reshape(-1)
            if mean.shape[0] != p:
                raise ValueError(f"mean has {mean.shape[0]} entries but X has {p} features.")
        self.components_ = W.copy()
        self.mean_ = mean
        h = W.shape[0]
        self.n_components_ = h

        torch = import_torch()
        device = resolve_device(self.device)
        init_seed, shuffle_rng = seeds_from(self.random_state)
        decoder = init_module(lambda: mlp(_decoder_sizes(h, p)), init_seed, device)
        Z = (X - mean) @ W.T

        def loss_fn(module, zb, xb):
            return torch.nn.functional.mse_loss(module(zb), xb)

        result = train_minibatch(
            decoder,
            loss_fn,
            [as_tensor(Z, device), as_tensor(X, device)],
            batch_size=resolve_batch_size(self.batch_size, n),
            max_epochs=self.max_epochs,
            lr=self.lr,
            shuffle_rng=shuffle_rng,
            verbose=self.verbose,
            desc=type(self).__name__,
        )
        self.decoder_ = decoder
        self.loss_curve_ = result.loss_curve
        self.n_epochs_ = result.n_epochs
        return self

    def transform(self, X) -> np.ndarray:
        """The fixed linear codes ``(X - mean_) @ components_.T``, shape (n, h)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return (X - self.mean_) @ self.components_.T

    def predict(self, X) -> np.ndarray:
        """Same as :meth:`reconstruct`: decode the codes of ``X``."""
        return self.reconstruct(X)


class SoftmaxReadout(ClassifierMixin, BaseEstimator):
    """Linear softmax classifier trained with the SQUARED loss against one-hot labels.

    The paper's read-out for judging an embedding (Section 5 of the paper): one linear layer
    z -> K class scores, softmax, and the loss

    .. math:: \\frac{1}{n} \\sum_i \\| \\operatorname{softmax}(W z_i + b) - e_{y_i} \\|^2,

    minimised by Adam. This is unusual: cross-entropy is the standard loss for a
    softmax layer. The squared loss is bounded and its gradient vanishes for
    confidently wrong predictions, so it trains more slowly; we keep it to
    reproduce the paper.

    Parameters
    ----------
    n_classes : None or int, default=None
        None: the classes are the distinct labels seen in ``fit``. An int K: the
        classes are 0, ..., K-1 and ``y`` must hold integers in that range (useful
        when a training subset misses a class).
    max_epochs : int, default=50
    batch_size : int, default=128
    lr : float, default=1e-3
    random_state : None, int or RandomState, default=None
    verbose : bool, default=False
    device : str, default="cpu"

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    network_ : torch.nn.Linear
    loss_curve_ : list of float
    n_epochs_ : int
    n_features_in_ : int

    Notes
    -----
    The embeddings are used as given (no standardisation).

    Examples
    --------
    >>> import numpy as np
    >>> from steinlatent.baselines import SoftmaxReadout
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, size=300)
    >>> Z = 4.0 * np.eye(3)[y] + rng.normal(size=(300, 3))
    >>> clf = SoftmaxReadout(max_epochs=20, random_state=0).fit(Z, y)
    >>> clf.predict_proba(Z).shape
    (300, 3)
    """

    _parameter_constraints: dict = {
        "n_classes": [None, Interval(Integral, 1, None, closed="left")],
        **_TRAINING_CONSTRAINTS,
    }

    def __init__(
        self,
        n_classes=None,
        *,
        max_epochs=50,
        batch_size=128,
        lr=1e-3,
        random_state=None,
        verbose=False,
        device="cpu",
    ):
        self.n_classes = n_classes
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    def fit(self, Z, y):
        """Train on embeddings ``Z`` (n, d) and labels ``y`` (n,)."""
        self._validate_params()
        Z, y = validate_data(self, Z, y, dtype=np.float64)
        check_classification_targets(y)
        if self.n_classes is None:
            self.classes_, codes = np.unique(y, return_inverse=True)
        else:
            self.classes_ = np.arange(self.n_classes)
            valid = np.isin(y, self.classes_)
            if not valid.all():
                bad = np.unique(y[~valid])[:5].tolist()
                raise ValueError(
                    f"n_classes={self.n_classes} requires labels in 0..{self.n_classes - 1}; "
                    f"y contains {bad}."
                )
            codes = np.asarray(y).astype(np.int64)
        K = len(self.classes_)
        onehot = np.eye(K)[codes]

        torch = import_torch()
        device = resolve_device(self.device)
        init_seed, shuffle_rng = seeds_from(self.random_state)
        net = init_module(lambda: torch.nn.Linear(Z.shape[1], K), init_seed, device)

        def loss_fn(module, zb, tb):
            prob = torch.softmax(module(zb), dim=1)
            return ((prob - tb) ** 2).sum(dim=1).mean()

        result = train_minibatch(
            net,
            loss_fn,
            [as_tensor(Z, device), as_tensor(onehot, device)],
            batch_size=resolve_batch_size(self.batch_size, Z.shape[0]),
            max_epochs=self.max_epochs,
            lr=self.lr,
            shuffle_rng=shuffle_rng,
            verbose=self.verbose,
            desc=type(self).__name__,
        )
        self.network_ = net
        self.loss_curve_ = result.loss_curve
        self.n_epochs_ = result.n_epochs
        return self

    def predict_proba(self, Z) -> np.ndarray:
        """Class probabilities softmax(W z + b), shape (n, n_classes); rows sum to 1."""
        check_is_fitted(self)
        Z = validate_data(self, Z, reset=False, dtype=np.float64)
        torch = import_torch()
        net = self.network_
        prob = predict_batched(lambda t: torch.softmax(net(t), dim=1), Z, _device_of(net))
        # Renormalise in float64: the float32 softmax sums to 1 only to ~1e-7.
        return prob / prob.sum(axis=1, keepdims=True)

    def predict(self, Z) -> np.ndarray:
        """The most probable class of each row."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(Z), axis=1)]
