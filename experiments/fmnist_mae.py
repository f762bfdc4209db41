"""Masked autoencoder (He et al. 2021) on Fashion-MNIST, sized for a 2-core CPU; with a GPU variant.

28x28 images cut into 7x7 patches (16 patches); 75% of them are masked per example (4 visible);
a ViT encoder (width 64, 2 blocks, 4 heads) sees only the visible patches, a light decoder
(width 32, 1 block) with a learned mask token predicts all of them; the loss is the squared
error on the masked patches (pixels in [0, 1], no per-patch normalization, so the masked-patch
PSNR is in pixel units). AdamW (weight decay 0.05, b2 0.95), one warm-up epoch then cosine.

Commands:
    aejax train experiments/fmnist_mae.py --workdir runs/fmnist_mae
    aejax eval runs/fmnist_mae --task mae

Expected (2-core CPU shared with other jobs): 525 s for 40 epochs (about 12 s an epoch, 16 ms a
step); test/recon (masked-patch MSE, random masks) 0.0287, test/mse 0.0214 (the whole image with
the visible patches kept). The mae task (206 s): masked-patch PSNR 15.42 dB for random masks
(training-mean filling 10.62 dB, visible-mean filling 9.00 dB), centre block 10.27 dB (9.86 /
7.53), random block 11.39 dB (10.21 / 8.78); linear probe 81.8% (raw pixels 80.1%, PCA-64 82.5%).

Variant `gpu` (`aejax train fmnist_mae:gpu`), a larger setting for one GPU (not run here: this
machine has none): 4x4 patches (49 patches, 12 visible), encoder width 192, 6 blocks, 6 heads,
decoder width 128, 2 blocks, per-patch normalized targets (He et al.'s better-features setting;
the PSNR task then maps predictions back with the hidden patches' own statistics, so report
its linear probe, not its PSNR), batch 256, 100 epochs, 5 warm-up epochs.
"""

from aejax.config import base_config, with_variant

VARIANTS = {
    "gpu": {"model.patch_size": 4, "model.width": 192, "model.depth": 6, "model.heads": 6,
            "model.decoder_width": 128, "model.decoder_depth": 2, "model.decoder_heads": 4,
            "model.norm_pix_loss": True, "train.batch_size": 256, "train.epochs": 100,
            "train.checkpoint_every": 10, "optim.warmup": "5 epochs", "hp.learning_rate": 1.5e-3},
}


def get_config(variant=None):
    c = base_config(kind="mae", net="transformer")  # mask ratio 0.75, width 64, 2 blocks, 4 heads: the defaults
    c.data.name = "fashion_mnist"
    c.data.val_size = 5000
    c.model.patch_size = 7
    c.optim.name = "adamw"
    c.optim.weight_decay = 0.05
    c.optim.b2 = 0.95
    c.optim.schedule = "warmup_cosine"
    c.optim.warmup = "1 epoch"  # 429 steps of 128 (a shorter run clips it, saying so)
    c.train.epochs = 40
    c.train.checkpoint_every = 10
    return with_variant(c, variant, VARIANTS)
