"""One-class anomaly detection on scikit-learn's wine features: one cultivar normal, the other two anomalies.

Commands:
    aejax train experiments/wine_oneclass.py --workdir runs/wine_oneclass       # cultivar 0 normal
    aejax eval runs/wine_oneclass --task anomaly
    aejax sweep experiments/wine_oneclass.py --workdir sweeps/wine_oneclass     # each cultivar in turn
    python scripts/oneclass_table.py sweeps/wine_oneclass

Features [N, 13, 1, 1], standardized on the normal training rows (about 32 of them); the test
split has 60 rows. Expected: a few seconds a run on a 2-core CPU; results in docs/evaluation.md.
"""

from aejax.config import base_config
from aejax.sweep import product


def get_config():
    c = base_config(kind="undercomplete", net="mlp")
    c.data.name = "wine"
    c.data.val_size = 18
    c.data.test_size = 60
    c.data.normal_class = 0
    c.model.hidden = (32, 16)
    c.model.code_size = 3
    c.hp.learning_rate = 3e-3
    c.train.epochs = 300
    c.train.batch_size = 16
    c.train.checkpoint_every = 150
    c.train.figures = False
    return c


def sweep():
    return product(**{"data.normal_class": [0, 1, 2]})
