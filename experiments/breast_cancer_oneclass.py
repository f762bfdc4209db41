"""One-class anomaly detection on scikit-learn's breast cancer features: benign is normal, malignant the anomaly.

Commands:
    aejax train experiments/breast_cancer_oneclass.py --workdir runs/breast_cancer_oneclass
    aejax eval runs/breast_cancer_oneclass --task anomaly

The model trains on the benign training rows only (data.normal_class=0; features [N, 30, 1, 1],
standardized on those rows); the test split (170 rows, 63 malignant) is scored whole, beside
PCA reconstruction error, Isolation Forest and a one-class SVM. Expected: a few seconds on a
2-core CPU; measured AUROCs in docs/evaluation.md.
"""

from aejax.config import base_config


def get_config():
    c = base_config(kind="undercomplete", net="mlp")
    c.data.name = "breast_cancer"
    c.data.val_size = 40
    c.data.test_size = 170
    c.data.normal_class = 0
    c.model.hidden = (64, 32)
    c.model.code_size = 4
    c.hp.learning_rate = 3e-3
    c.train.epochs = 200
    c.train.batch_size = 32
    c.train.checkpoint_every = 100
    c.train.figures = False
    return c
