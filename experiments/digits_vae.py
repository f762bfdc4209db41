"""VAE (MLP, Bernoulli likelihood, code 8) on scikit-learn's 8x8 digits: the quick generative start.

Command:
    aejax train experiments/digits_vae.py --workdir runs/digits_vae
    aejax sweep experiments/digits_vae.py --workdir sweeps/digits_vae   # sweep(): 4 betas x 2 seeds, one program
    aejax eval runs/digits_vae --task likelihood --option num_samples=1000
    aejax eval runs/digits_vae --task generation

Expected (measured on a 2-core CPU shared with other jobs): training about 12 s (compile
included); test ELBO -23.9 nats (recon 20.0, KL 3.9), test MSE 0.0197; the likelihood task
gives NLL (IWAE, k = 1000) 23.5 nats on the 360 test images in about 5 s.
"""

from aejax.config import base_config
from aejax.sweep import product


def get_config():
    c = base_config(kind="vae", net="mlp")  # Bernoulli likelihood, beta 1: the defaults
    c.model.code_size = 8
    c.model.kl_schedule = "linear"
    c.model.kl_warmup = 500
    c.hp.learning_rate = 2e-3
    c.train.epochs = 100
    c.train.batch_size = 64
    c.train.checkpoint_every = 25
    return c


def sweep():
    """beta from 0.5 to 4 (the KL weight), two seeds each: eight runs that train as one vmapped program."""
    return product(**{"hp.beta": [0.5, 1.0, 2.0, 4.0], "seed": range(2)})
