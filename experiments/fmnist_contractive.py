"""Contractive autoencoder on Fashion-MNIST in Rifai et al.'s form: one sigmoid layer of 256 codes.

Encoder h = sigmoid(W x + b) (784 -> 256), linear decoder to logits, sigmoid output, MSE;
loss = per-pixel MSE + lambda ||d h / d x||_F^2 / 784 with lambda = hp.contractive_weight = 0.1.
With one sigmoid layer "auto" uses the closed form sum_j (h_j (1 - h_j))^2 ||W_j||^2 (exact, no
Jacobian is built). Deeper encoders: --set model.hidden="(512,)" (exact reverse mode, about 14x the
plain step) or --set model.method=hutchinson --set model.num_probes=4 (about 2x).
Compare with --set hp.contractive_weight=0.0 (no penalty).

Command:
    aejax train experiments/fmnist_contractive.py --workdir runs/fmnist_contractive

Expected (measured on a shared 2-core CPU, about 150 s): test MSE per pixel 0.0072 and mean
||J||_F^2 = 13.0 on the test split; without the penalty (contractive_weight=0) 0.0045 and 151,
so the penalty contracts the encoder about 12x.
"""

from aejax.config import base_config


def get_config():
    c = base_config(kind="contractive", net="mlp")  # sigmoid codes, method "auto", lambda 0.1: the defaults
    c.data.name = "fashion_mnist"
    c.data.val_size = 5000
    c.model.hidden = ()
    c.model.code_size = 256
    c.hp.learning_rate = 2e-3
    return c
