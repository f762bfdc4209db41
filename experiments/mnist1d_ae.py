"""Sequence autoencoder on MNIST-1D (Greydanus 2020): bidirectional GRU encoder, GRU decoder, code 8, vs PCA-8.

Command:
    aejax train experiments/mnist1d_ae.py --workdir runs/mnist1d_ae
    aejax eval runs/mnist1d_ae --task reconstruction     # test MSE beside PCA with 8 components
    aejax train mnist1d_ae:lstm --workdir runs/mnist1d_ae_lstm      # the same with LSTM cells
    aejax train mnist1d_ae:conv1d --workdir runs/mnist1d_ae_conv1d  # strided 1-D convolutions

The data are generated locally (4000 training sequences of length 40, less 400 for validation,
and 1000 test sequences), standardized with the training split's statistics and stored as
0.5 + z / 8, so the MSE is in those units (z-score MSE = 64 x). Measured numbers: docs/sequences.md.
"""

from aejax.config import base_config, with_variant

VARIANTS = {
    "": {},
    "lstm": {"model.net": "lstm"},
    "conv1d": {"model.net": "conv1d", "model.channels": (32, 64), "model.hidden": (128,), "model.kernel_size": 5,
               "train.epochs": 60},
}


def get_config(variant=None):
    c = base_config(kind="undercomplete", net="gru")
    c.data.name = "mnist1d"
    c.data.val_size = 400
    c.model.code_size = 8
    c.model.rnn_hidden = 128
    c.model.bidirectional = True
    c.hp.learning_rate = 3e-3
    c.train.epochs = 100
    c.train.batch_size = 64
    c.train.checkpoint_every = 20
    return with_variant(c, variant, VARIANTS)
