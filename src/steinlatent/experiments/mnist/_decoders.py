"""Decoders and read-outs of one (repetition, h): the test metrics of every method.

``pca`` decodes linearly (the paper); ``pca_mlp`` (beyond the paper) gives the PCA code
the same network decoder as the Stein codes, so that encoder and decoder effects can be
told apart; ``ae`` is the paper's autoencoder; the Stein encoders use
:class:`~steinlatent.baselines.LinearEncoderDecoder` (decoder h -> 2h -> 4h -> 784
trained on the fixed code). Outputs are clipped to [0, 1]. Accuracy:
:class:`~steinlatent.baselines.SoftmaxReadout` (squared loss on one-hot labels) trained on
the training codes, scored on the test codes.
"""

from __future__ import annotations

import time

import numpy as np

from .._common import timed
from ._config import METHODS

__all__ = ["evaluate_reconstruction", "decode_methods"]


def evaluate_reconstruction(
    X_rec, X, Z_train=None, y_train=None, Z_test=None, y_test=None, *, epochs=50, random_state=0
) -> dict:
    """Test metrics of one method: NRSE, both SSIMs and (with codes) read-out accuracy.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).uniform(size=(3, 784))
    >>> evaluate_reconstruction(X, X)["nrse"]
    0.0
    """
    from ...baselines import SoftmaxReadout
    from .._image_metrics import nrse, ssim_global, ssim_windowed

    out = {
        "nrse": nrse(X_rec, X),
        "ssim_global": ssim_global(X_rec, X),
        "ssim_windowed": ssim_windowed(X_rec, X),
    }
    if Z_train is not None:
        clf = SoftmaxReadout(10, max_epochs=epochs, random_state=random_state)
        _, out["readout_time_s"] = timed(clf.fit, Z_train, y_train)
        out["accuracy"] = float(np.mean(clf.predict(Z_test) == y_test))
    return out


def decode_methods(methods, h, bases, enc_time, data, *, epochs, seed, base_row) -> list[dict]:
    """One result row per method for code size ``h`` (a failed method is a row too).

    ``bases`` and ``enc_time`` come from the repetition's encoder fit; ``data`` is
    (X_train, y_train, X_test, y_test).
    """
    from ...baselines import Autoencoder, LinearEncoderDecoder

    Xtr, ytr, Xte, yte = data
    mean = bases["mean"]
    rows = []
    acc_pca = None
    for method in methods:
        role, decoder = METHODS[method]
        row = {**base_row, "method": method, "role": role, "decoder": decoder, "epochs": epochs}
        row["sigma"] = enc_time.get(f"{method}_sigma", "")
        enc = "pca" if method.startswith("pca") else method
        try:
            if method == "ae":
                ae, t_dec = timed(
                    Autoencoder(h, max_epochs=epochs, clip=(0, 1), random_state=seed).fit, Xtr
                )
                rec, Ztr, Zte = ae.reconstruct(Xte), ae.transform(Xtr), ae.transform(Xte)
                t_enc = 0.0  # trained jointly with the decoder
            else:
                if enc not in bases:
                    raise KeyError(f"encoder {enc!r} was not fitted (score model missing?)")
                W = bases[enc][:h]
                Ztr, Zte = (Xtr - mean) @ W.T, (Xte - mean) @ W.T
                t_enc = enc_time.get(f"{enc}_s", np.nan)
                if decoder == "linear":  # PCA's own decoder: orthogonal projection
                    t0 = time.perf_counter()
                    rec = np.clip(mean + Zte @ W, 0.0, 1.0)
                    t_dec = time.perf_counter() - t0
                else:
                    dec = LinearEncoderDecoder(
                        W, mean=mean, max_epochs=epochs, clip=(0, 1), random_state=seed
                    )
                    _, t_dec = timed(dec.fit, Xtr)
                    rec = dec.reconstruct(Xte)
            if method == "pca_mlp" and acc_pca is not None:
                m = evaluate_reconstruction(rec, Xte)
                m.update(acc_pca)  # same code as pca: same read-out
                row["detail"] = "accuracy: the pca read-out (same code)"
            else:
                m = evaluate_reconstruction(
                    rec, Xte, Ztr, ytr, Zte, yte, epochs=epochs, random_state=seed
                )
                if method == "pca":
                    acc_pca = {k: m[k] for k in ("accuracy", "readout_time_s")}
            row.update(m, encoder_time_s=t_enc, decoder_time_s=t_dec, status="ok")
            row.setdefault("detail", "")
        except Exception as exc:  # a failed method is a result row, not a crash
            row.update(status=f"error: {type(exc).__name__}: {str(exc)[:200]}", detail="")
        rows.append(row)
    return rows
