"""Convolutional denoising autoencoder on Fashion-MNIST, Gaussian noise sigma = 0.2 clipped to [0, 1].

Encoder: 3x3 stride-2 convolutions (32, 64 channels) -> code 512 (linear).
Decoder: Dense -> 7x7x64 -> nearest-neighbour resize + 3x3 convolution stages -> logits.
The loss compares the reconstruction of the corrupted image with the clean one.

Command (conv-heavy: run it on a GPU; on a 2-core CPU a jitted step takes 130-370 ms, but
`aejax train`'s scanned epoch runs conv steps about 30x slower than that on XLA:CPU):
    aejax train experiments/fmnist_denoising.py --workdir runs/fmnist_denoising
    aejax eval runs/fmnist_denoising --task denoising

Expected: test PSNR >= 22 dB at sigma = 0.2 (the noisy input: 15.9 dB; a 784-512-256-K GELU MLP
denoiser: 20.6-21.2 dB). Measured on CPU with `python scripts/denoising_cpu_check.py 5` (the same
model, optimizer, hp and data order, fewer epochs, a loop of jitted steps): 5 epochs reach test
PSNR 22.1 dB, SSIM 0.80 (noisy input 15.9 dB, SSIM 0.54) in about 6 minutes; 2 epochs (with
optim.warmup_steps=200) 21.0 dB. The full 30 epochs are for a GPU.
"""

from aejax.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"
    c.data.val_size = 5000
    c.model.kind = "denoising"
    c.model.net = "conv"
    c.model.channels = (32, 64)
    c.model.hidden = ()
    c.model.code_size = 512
    c.model.corruption = "gaussian"  # "gaussian" | "masking" | "salt_and_pepper"
    c.hp.learning_rate = 2e-3
    c.hp.noise_level = 0.2           # sigma for gaussian; the fraction for masking / salt_and_pepper
    c.optim.schedule = "warmup_cosine"
    c.optim.warmup_steps = 500
    c.train.epochs = 30
    c.train.batch_size = 128
    c.train.checkpoint_every = 5
    c.lock()
    return c
