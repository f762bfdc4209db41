"""Undercomplete MLP autoencoder on scikit-learn's 8x8 digits: the quick start.

Command:
    aejax train experiments/digits_ae.py --workdir runs/digits_ae

Expected: about 10 s on a 2-core CPU (compile included); test MSE per pixel about 0.0055
(64 pixels through a 16-wide code; PCA with 16 components on the same split: 0.0113).
"""

from aejax.config import base_config


def get_config():
    c = base_config(kind="undercomplete", net="mlp")  # hidden (256, 128), code 16, MSE: the defaults
    c.hp.learning_rate = 3e-3
    c.train.epochs = 60
    c.train.batch_size = 64
    return c
