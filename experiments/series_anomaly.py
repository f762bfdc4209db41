"""Time-series anomaly detection: a 1-D conv autoencoder on clean windows of a periodic signal.

Command:
    aejax train experiments/series_anomaly.py --workdir runs/series_anomaly
    aejax eval runs/series_anomaly --task anomaly --option per_class=True

`series_anomalies` cuts one periodic signal (two sines and noise) into windows of 64 steps; the
autoencoder trains on clean windows only (data.normal_class=0), and a quarter of the 360 test
windows carry one planted spike, level shift or frequency change (labels 1, 2, 3). The anomaly
task scores each test window by its reconstruction error and reports ROC-AUC overall and per
anomaly kind, beside PCA, Isolation Forest, a one-class SVM and a rolling z-score. Measured
numbers: docs/sequences.md.
"""

from aejax.config import base_config


def get_config():
    c = base_config(kind="undercomplete", net="conv1d")
    c.data.name = "series_anomalies"
    c.data.normal_class = 0
    c.model.code_size = 8
    c.model.channels = (16, 32)
    c.model.hidden = (64,)
    c.model.kernel_size = 5
    c.hp.learning_rate = 3e-3
    c.train.epochs = 30
    c.train.batch_size = 64
    c.train.checkpoint_every = 10
    return c
