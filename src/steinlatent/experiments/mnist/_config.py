"""Settings of the MNIST study: grids, noise ladder, methods, result columns, presets."""

from __future__ import annotations

__all__ = [
    "H_GRID",
    "N_TRAIN",
    "SIGMA_LEVELS",
    "UNET_CHANNELS",
    "SCORE_EPOCHS",
    "GAUSS_SHRINKAGE",
    "PRETRAIN_IMAGES",
    "PRETRAIN_EPOCHS",
    "KDE_BANDWIDTH",
    "KDE_SEARCH_ROWS",
    "STEIN1_SCORES",
    "METHODS",
    "ENCODERS",
    "KEY_COLUMNS",
    "COLUMNS",
    "ENC_KEY",
    "ENC_COLUMNS",
    "LIN_KEY",
    "LIN_COLUMNS",
    "SCORE_COLUMNS",
    "QUICK",
    "FULL",
]

H_GRID = tuple(range(10, 19))
N_TRAIN = 10_000
#: Noise ladder of the denoising score networks, in units of the global pixel standard
#: deviation (``standardize="global"``; about 0.31 on MNIST, so 0.1 ~ 0.03 in [0, 1]
#: pixel units). The Stein encoders use the smallest level, as
#: ``DenoisingScore.evaluate`` does by default.
SIGMA_LEVELS = (3.0, 2.0, 1.0, 0.5, 0.3, 0.2, 0.1)
#: Channels of the U-Net score at 28x28, 14x14 and 7x7.
UNET_CHANNELS = (8, 16, 32)
SCORE_EPOCHS = 30
#: Shrinkage levels of the Gaussian smoothed score in the linear-decoder ablation.
GAUSS_SHRINKAGE = (0.01, 0.1, 0.5)
#: Training images and epochs of the pretrained score networks (trained once per study,
#: on images drawn with the study's seed; see ``_scores``).
PRETRAIN_IMAGES = 10_000
PRETRAIN_EPOCHS = {"mlp": 30, "unet": 8}
#: KDE score: bandwidth chosen by its held-out search on the first repetition's
#: training subset, then fixed for every repetition ("auto" searches every time).
KDE_BANDWIDTH = "first"
#: Rows of the first repetition's subset on which the KDE bandwidth is searched.
KDE_SEARCH_ROWS = 2000

#: Stein encoders: name -> score family of the first-order estimator.
STEIN1_SCORES = {"stein1": "mlp", "stein1_unet": "unet", "stein1_kde": "kde"}
#: method -> (role, decoder). "network": the paper's decoder h -> 2h -> 4h -> 784 on the
#: fixed code; "linear": PCA's orthogonal projection; every encoder is also scored with
#: a least-squares linear decoder in ``mnist-linear.csv``.
METHODS = {
    "pca": ("paper", "linear"),
    "pca_mlp": ("beyond", "network"),
    "ae": ("paper", "autoencoder"),
    "stein1": ("paper", "network"),
    "stein1_unet": ("paper", "network"),
    "stein1_kde": ("beyond", "network"),
    "stein2": ("paper", "network"),
    "semi": ("beyond", "network"),
}
#: Encoders whose basis comes from :func:`fit_encoders`.
ENCODERS = ("pca", "stein1", "stein1_unet", "stein1_kde", "stein2", "semi")

KEY_COLUMNS = ("rep", "h")
COLUMNS = KEY_COLUMNS + (
    "seed",
    "n_train",
    "n_test",
    "method",
    "role",
    "decoder",
    "sigma",
    "nrse",
    "ssim_global",
    "ssim_windowed",
    "accuracy",
    "encoder_time_s",
    "decoder_time_s",
    "readout_time_s",
    "epochs",
    "status",
    "detail",
)
ENC_KEY = ("rep",)
ENC_COLUMNS = ENC_KEY + (
    "seed",
    "n_train",
    "encoders",
    "pca_s",
    "stein1_s",
    "stein1_unet_s",
    "stein1_kde_s",
    "stein2_s",
    "semi_s",
    "kde_bandwidth",
    "n_constant_pixels",
    "status",
    "detail",
)
LIN_KEY = ("rep",)
LIN_COLUMNS = ("rep", "h", "encoder", "smoothing", "nrse", "ssim_global", "distance_to_pca")
SCORE_COLUMNS = (
    "score",
    "n_images",
    "epochs",
    "fit_time_s",
    "epochs_run",
    "final_val_loss",
    "sigma",
    "detail",
)

QUICK = {
    "n_train": 500,
    "n_test": 1000,
    "h": (10,),
    "reps": 1,
    "epochs": 2,
    "score_epochs": 2,
    "pretrain_images": 500,
}
FULL = {
    "n_train": N_TRAIN,
    "n_test": None,
    "h": H_GRID,
    "reps": 5,
    "epochs": 50,
    "score_epochs": None,  # PRETRAIN_EPOCHS per family
    "pretrain_images": PRETRAIN_IMAGES,
}
