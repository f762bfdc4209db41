"""784-512-256-32 GELU MLP autoencoder on Fashion-MNIST: the reference the conv model must beat.

Command:
    aejax train experiments/fmnist_mlp_ae.py --workdir runs/fmnist_mlp_ae

Expected: about 75 s on a 2-core CPU; test MSE per pixel 0.00776 (PCA with 32 components on the
same split: 0.0151). Also the model `aejax bench` times.

Variant `tuned` (`aejax train fmnist_mlp_ae:tuned`): the winner of a halving search over learning rate,
AdamW weight decay and Adam's b2 (`python scripts/bench_search.py showcase`, docs/search.md), 30 epochs:
test MSE 0.00703.
"""

from aejax.config import base_config, with_variant

VARIANTS = {
    "tuned": {"optim.name": "adamw", "hp.learning_rate": 0.001825962398638959,
              "optim.weight_decay": 0.0007840083182234861, "optim.b2": 0.9613665747717023, "train.epochs": 30},
}


def get_config(variant=None):
    c = base_config(kind="undercomplete", net="mlp")
    c.data.name = "fashion_mnist"
    c.data.val_size = 5000
    c.model.hidden = (512, 256)
    c.model.code_size = 32
    return with_variant(c, variant, VARIANTS)
