"""Sparse autoencoder on Fashion-MNIST: sigmoid codes with a KL penalty to a target rate rho = 0.05.

MLP 784-512-256-128(sigmoid codes)-256-512-784, GELU; loss = per-pixel MSE + 0.01 * sum_j KL(rho || rho_hat_j).
Top-k variant: experiments/fmnist_sparse_topk.py; L1: --set model.sparsity=l1 --set hp.sparsity_weight=1e-3.

Command:
    aejax train experiments/fmnist_sparse.py --workdir runs/fmnist_sparse
    aejax eval runs/fmnist_sparse --task sparsity

Expected (measured on a shared 2-core CPU, about 140 s): test mean activation 0.0502 (target 0.05,
0.3% off; every unit's batch-mean rate lies in [0.049, 0.052]), test MSE per pixel 0.0100. The KL
penalty is met by a dense, low code (median activation 0.04, 99th percentile 0.17): 97% of the
units never exceed 0.5 on the test split, which the sparsity task reports as dead_fraction.
"""

from aejax.config import base_config


def get_config():
    c = base_config()
    c.data.name = "fashion_mnist"
    c.data.val_size = 5000
    c.model.kind = "sparse"
    c.model.net = "mlp"
    c.model.hidden = (512, 256)
    c.model.code_size = 128
    c.model.sparsity = "kl"   # "l1" | "kl" | "topk"
    c.model.k = 16            # nonzeros per code (topk)
    c.model.aux_k = 32        # dead units the AuxK term may use (topk)
    c.model.dead_steps = 1000  # steps without firing before a unit counts as dead
    c.hp.learning_rate = 3e-3
    c.hp.sparsity_weight = 0.01
    c.hp.rho = 0.05
    c.hp.aux_weight = 1.0 / 32.0
    c.optim.schedule = "cosine"
    c.train.epochs = 20
    c.train.batch_size = 128
    c.train.checkpoint_every = 5
    c.lock()
    return c
