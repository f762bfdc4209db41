"""Denoising MLP autoencoder trained to fill square holes on Fashion-MNIST: the inpainting model.

Commands:
    aejax train experiments/fmnist_inpainting.py --workdir runs/fmnist_inpainting
    aejax eval runs/fmnist_inpainting --task inpainting
    aejax eval runs/fmnist_inpainting --task inpainting --option mask=random

Every training image loses one square hole (`block` corruption): its side is drawn from 1 to
hp.noise_level x 28 = 14 pixels and its position at random, and the 784-512-256-64 GELU MLP
reconstructs the clean image. Holes are what the inpainting task removes (centre and random
squares, 8x8 and 14x14), so the model learns to fill a solid region from its context. The
variant `fmnist_inpainting:pixels` trains on pixel-wise masking instead (half of the pixels set
to 0 at random), which fills scattered holes well but leaves a solid centre hole dark.
Measured masked-region PSNR against mean filling in docs/evaluation.md.
"""

from aejax.config import base_config, with_variant

VARIANTS = {
    "pixels": {"model.corruption": "masking", "hp.noise_level": 0.5},
}


def get_config(variant=None):
    c = base_config(kind="denoising", net="mlp")
    c.data.name = "fashion_mnist"
    c.data.val_size = 5000
    c.model.corruption = "block"
    c.model.hidden = (512, 256)
    c.model.code_size = 64
    c.hp.noise_level = 0.5
    c.hp.learning_rate = 1e-3
    c.train.epochs = 20
    c.train.checkpoint_every = 10
    return with_variant(c, variant, VARIANTS)
