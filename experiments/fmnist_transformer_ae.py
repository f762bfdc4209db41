"""Undercomplete transformer autoencoder on Fashion-MNIST: 7x7 patches, code 32, a short CPU run.

A ViT encoder (16 patch tokens of width 64, 1 pre-norm block, 4 heads, 2-D sine-cosine
positions) mean-pools its tokens to a 32-wide code; the decoder maps the code to 16 tokens,
runs 1 block and projects each token to a 7x7 patch of logits (MSE of their sigmoid).
`--set model.dtype=bfloat16` computes in bfloat16 with float32 parameters;
`python scripts/bench_transformer.py` compares the two side by side.

Command:
    aejax train experiments/fmnist_transformer_ae.py --workdir runs/fmnist_transformer_ae

Expected (2-core CPU shared with other jobs): 143 s for 5 epochs (about 30 ms a step); test MSE
0.01476 (PCA with 32 components: 0.01515; the 784-512-256-32 MLP reaches 0.0072 in 20 epochs).
On a GPU, try `--set model.depth=4 --set model.patch_size=4 --set train.epochs=30` (not run here).
"""

from aejax.config import base_config


def get_config():
    c = base_config(kind="undercomplete", net="transformer")
    c.data.name = "fashion_mnist"
    c.data.val_size = 5000
    c.model.code_size = 32
    c.model.patch_size = 7
    c.model.depth = 1
    c.hp.learning_rate = 2e-3
    c.train.epochs = 5
    c.train.checkpoint_every = 5
    return c
