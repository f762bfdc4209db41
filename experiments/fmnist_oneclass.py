"""One-class anomaly detection on Fashion-MNIST: train on one class, score the whole test split.

Commands (one class; then all ten through the sweep, as one population: one compiled training program
whose members index one copy of the training split; then the per-class table with the baselines):
    aejax train experiments/fmnist_oneclass.py --set data.normal_class=0 --workdir runs/fmnist_oneclass0
    aejax eval runs/fmnist_oneclass0 --task anomaly --option score=smoothed_mse
    aejax sweep experiments/fmnist_oneclass.py --workdir sweeps/fmnist_oneclass
    aejax eval sweeps/fmnist_oneclass --task anomaly --option score=smoothed_mse

Expected (2-core CPU): see docs/evaluation.md for the measured per-class table and times.
The training images of `data.normal_class` (about 5500) are the only ones the model sees; the
validation split keeps that class only; the test split is whole, with that class normal.
"""

from aejax.config import base_config
from aejax.sweep import product


def get_config():
    c = base_config(kind="undercomplete", net="mlp")
    c.data.name = "fashion_mnist"
    c.data.val_size = 5000
    c.data.normal_class = 0
    c.model.hidden = (512, 256)
    c.model.code_size = 32
    c.hp.learning_rate = 1e-3
    c.train.epochs = 20
    c.train.checkpoint_every = 20
    return c


def sweep():
    return product(**{"data.normal_class": list(range(10))})
