"""Adversarial autoencoder on Fashion-MNIST: MLP 784-512-256-K, deterministic encoder.

Two settings:
  * default: a 2-D code matched to a mixture of 10 Gaussians on a circle, with the label
    in the discriminator (Makhzani et al. 2015, section 2.3), so each class takes one
    component and the code map shows class clusters;
  * the Gaussian-prior AAE whose test codes should match N(0, I)'s first two moments:
        --set model.prior=gaussian --set model.label_prior=False --set model.code_size=8

Commands:
    aejax train experiments/fmnist_aae.py --workdir runs/fmnist_aae
    aejax eval runs/fmnist_aae --task generation
    aejax train experiments/fmnist_aae.py --workdir runs/fmnist_aae_gauss \
        --set model.prior=gaussian --set model.label_prior=False --set model.code_size=8
    aejax eval runs/fmnist_aae_gauss --task generation

Expected: see docs/generative.md for the measured numbers (a step is three updates, about
2-3x the cost of a plain autoencoder step on a 2-core CPU).
"""

from aejax.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"
    c.data.val_size = 5000
    c.model.kind = "aae"
    c.model.net = "mlp"
    c.model.hidden = (512, 256)
    c.model.code_size = 2
    c.model.likelihood = "bernoulli"
    c.model.encoder_kind = "deterministic"
    c.model.prior = "mixture"
    c.model.label_prior = True
    c.model.disc_hidden = (256, 256)
    c.model.disc_activation = "relu"
    c.model.mixture_radius = 4.0
    c.model.mixture_std = 0.5
    c.hp.learning_rate = 1e-3
    c.hp.disc_learning_rate = 1e-3
    c.hp.gen_learning_rate = 1e-3
    c.hp.disc_r1 = 1.0
    c.train.epochs = 20
    c.train.batch_size = 128
    c.train.checkpoint_every = 5
    c.lock()
    return c
