"""One-class anomaly detection on scikit-learn's digits: train on one digit, score the whole test split.

Commands (one class; then all ten as one population, one compiled training program):
    aejax train experiments/digits_oneclass.py --set data.normal_class=3 --workdir runs/digits_oneclass3
    aejax eval runs/digits_oneclass3 --task anomaly
    aejax sweep experiments/digits_oneclass.py --workdir sweeps/digits_oneclass

Each class has about 125 training and 45 validation digits, so the batch is small (16); members of
different sizes share one program (each one's cosine decay over its own steps travels as arrays in its
optimizer state). Expected: the ten classes in well under a minute on a 2-core CPU.
"""

from aejax.config import base_config
from aejax.sweep import product


def get_config():
    c = base_config(kind="undercomplete", net="mlp")
    c.data.normal_class = 0
    c.model.hidden = (64, 32)
    c.model.code_size = 8
    c.hp.learning_rate = 3e-3
    c.train.batch_size = 16
    c.train.epochs = 20
    c.train.checkpoint_every = 20
    return c


def sweep():
    return product(**{"data.normal_class": list(range(10))})
