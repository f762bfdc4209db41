"""k-sparse autoencoder on Fashion-MNIST: top-16 of 128 linear codes, with the AuxK loss for dead units.

MLP 784-512-256-128 (keep the 16 largest codes, zero the rest) -256-512-784, GELU. A unit that
has not fired for 500 steps counts as dead; the AuxK term (weight 1/32) reconstructs the image
from the kept codes plus the 32 largest dead pre-activations, which revives dead units.

Command:
    aejax train experiments/fmnist_sparse_topk.py --workdir runs/fmnist_sparse_topk
    aejax eval runs/fmnist_sparse_topk --task sparsity

Expected (measured on a shared 2-core CPU, about 200 s): exactly 16 nonzeros in every test code
(the sparsity task's l0_min = l0_max = 16), test MSE per pixel 0.0097, dead-unit fraction over
the test split 0.031 (4 of 128 units; the training tracker reports 0 dead at the end).
"""

from aejax.config import base_config


def get_config():
    c = base_config(kind="sparse", net="mlp")
    c.data.name = "fashion_mnist"
    c.data.val_size = 5000
    c.model.hidden = (512, 256)
    c.model.code_size = 128
    c.model.sparsity = "topk"
    c.model.k = 16
    c.model.aux_k = 32
    return c
