"""Convolutional autoencoder on Fashion-MNIST with a 32-wide code.

Encoder: 3x3 stride-2 convolutions (32, 64 channels) -> Dense 256 -> code 32.
Decoder: Dense 256 -> 7x7x64 -> nearest-neighbour resize + 3x3 convolution stages.

Command:
    aejax train experiments/fmnist_ae.py --workdir runs/fmnist_ae

Expected: test MSE per pixel <= 0.0070; measured 0.00613 (30 epochs, 27 s on one H100) and
0.006135 on a 2-core CPU (1589 s).
PCA on the same split: 32 components 0.0151, 64 components 0.0104. Cost on a 2-core CPU:
about 116 ms a step (im2col convolutions, see scripts/bench_conv_scan.py), ~50 s an epoch.
"""

from aejax.config import base_config


def get_config():
    c = base_config(kind="undercomplete", net="conv")  # channels (32, 64): the default
    c.data.name = "fashion_mnist"
    c.data.val_size = 5000
    c.model.hidden = (256,)
    c.model.code_size = 32
    c.hp.learning_rate = 2e-3
    c.optim.schedule = "warmup_cosine"
    c.optim.warmup = 500
    c.train.epochs = 30
    return c
