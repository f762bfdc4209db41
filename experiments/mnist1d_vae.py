"""Sequence VAE on MNIST-1D (Greydanus 2020): 1-D conv encoder and decoder, Gaussian likelihood, code 8.

Command:
    aejax train experiments/mnist1d_vae.py --workdir runs/mnist1d_vae
    aejax eval runs/mnist1d_vae --task generation     # prior samples drawn as lines: figures/samples.png
    aejax train mnist1d_vae:gru --workdir runs/mnist1d_vae_gru   # GRU encoder and decoder instead

The decoder's output is the mean of a Gaussian with fixed sigma (hp.sigma, in the stored units
0.5 + z / 8 of the standardized series, whose std is 1/8); the KL weight warms up over the first
1000 steps. The GRU variant reconstructs as well but its prior samples settle into flat lines
after a few steps (the decoder's recurrence runs to a fixed point away from the codes it was
trained on); the conv decoder's samples look like MNIST-1D. Measured numbers and the samples
figure: docs/sequences.md.
"""

from aejax.config import base_config, with_variant

VARIANTS = {"": {}, "gru": {"model.net": "gru"}}


def get_config(variant=None):
    c = base_config(kind="vae", net="conv1d")
    c.data.name = "mnist1d"
    c.data.val_size = 400
    c.model.code_size = 8
    c.model.channels = (32, 64)
    c.model.hidden = (128,)
    c.model.rnn_hidden = 64  # the gru variant
    c.model.likelihood = "gaussian"
    c.model.kl_schedule = "linear"
    c.model.kl_warmup = 1000
    c.hp.sigma = 0.05
    c.hp.learning_rate = 3e-3
    c.train.epochs = 60
    c.train.batch_size = 64
    c.train.checkpoint_every = 20
    return with_variant(c, variant, VARIANTS)
