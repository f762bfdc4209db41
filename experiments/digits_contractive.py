"""Contractive autoencoder on scikit-learn's 8x8 digits: 64-128-16 encoder with sigmoid codes.

loss = per-pixel MSE + lambda ||d h / d x||_F^2 / 64 with lambda = hp.contractive_weight = 0.1;
the Jacobian is exact, by reverse mode ("auto": the 16-wide code is narrower than the 64 inputs).
Compare with --set hp.contractive_weight=0.0 (no penalty).

Command:
    aejax train experiments/digits_contractive.py --workdir runs/digits_contractive

Expected (measured on a shared 2-core CPU, about 16 s): test MSE per pixel 0.0114 and mean
||J||_F^2 = 1.43 on the test split; without the penalty (contractive_weight=0) 0.0098 and 8.75,
so the penalty contracts the encoder about 6x for 16% more reconstruction error.
"""

from aejax.config import base_config


def get_config():
    c = base_config(kind="contractive", net="mlp")  # sigmoid codes, method "auto", lambda 0.1: the defaults
    c.model.hidden = (128,)
    c.hp.learning_rate = 3e-3
    c.train.epochs = 60
    c.train.batch_size = 64
    c.train.checkpoint_every = 20
    return c
