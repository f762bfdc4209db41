"""Denoising MLP autoencoder with masking corruption on Fashion-MNIST: the inpainting model.

Commands:
    aejax train experiments/fmnist_inpainting.py --workdir runs/fmnist_inpainting
    aejax eval runs/fmnist_inpainting --task inpainting

Half of the pixels are set to 0 at random in every training image (hp.noise_level = 0.5), and
the 784-512-256-64 GELU MLP reconstructs the clean image; the inpainting task then removes
square blocks instead (centre and random, 8x8 and 14x14). Expected: a few minutes on a 2-core
CPU; measured masked-region PSNR against mean filling in docs/evaluation.md.
"""

from aejax.config import base_config


def get_config():
    c = base_config(kind="denoising", net="mlp")
    c.data.name = "fashion_mnist"
    c.data.val_size = 5000
    c.model.corruption = "masking"
    c.model.hidden = (512, 256)
    c.model.code_size = 64
    c.hp.noise_level = 0.5
    c.hp.learning_rate = 1e-3
    c.train.epochs = 20
    c.train.checkpoint_every = 10
    return c
