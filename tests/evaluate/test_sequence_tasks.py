"""Sequence data through a whole run: fit, figures, the reconstruction and anomaly tasks, the rolling z-score."""

import os

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from aejax.config import get_experiment_config
from aejax.data import load_dataset, restrict_to_class
from aejax.data.sequences import periodic_signal
from aejax.errors import ConfigError
from aejax.evaluate.anomaly import anomaly_task
from aejax.evaluate.inpainting import inpainting_task
from aejax.evaluate.reconstruction import reconstruction_task
from aejax.evaluate.run import load_run
from aejax.evaluate.series import rolling_zscore_scores
from aejax import fit  # the training loop's, with the figures (aejax.api)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_rolling_zscore_puts_a_huge_spike_first():
    rng = np.random.default_rng(0)
    windows, labels = [], []
    for i in range(40):
        window, _ = periodic_signal(48, 1, rng=rng)
        if i % 4 == 0:  # a spike of 20, about 25 standard deviations of the signal, anywhere in the window
            window[rng.integers(48)] += 20.0
        windows.append(window)
        labels.append(i % 4 == 0)
    scores = rolling_zscore_scores(np.stack(windows), 16)
    assert roc_auc_score(labels, scores) > 0.99
    with pytest.raises(ConfigError, match="zscore_window"):
        rolling_zscore_scores(np.stack(windows), 48)


@pytest.fixture(scope="module")
def series_run(tmp_path_factory):
    """A conv1d autoencoder trained for a few epochs on clean windows of `series_anomalies`."""
    workdir = str(tmp_path_factory.mktemp("series") / "run")
    data = restrict_to_class(load_dataset("series_anomalies", train_size=160, val_size=32, test_size=120, length=32), 0)
    config = get_experiment_config(os.path.join(REPO, "experiments", "series_anomaly.py"), {
        "train.epochs": 2, "train.progress": False, "train.tensorboard": False, "train.batch_size": 32,
        "model.channels": (8,), "model.hidden": (16,)})
    summary = fit(config, workdir, dataset=data)
    return workdir, data, summary, load_run(workdir, dataset=data)


def test_a_sequence_run_trains_and_draws_its_reconstructions_as_lines(series_run):
    workdir, data, summary, run = series_run
    assert np.isfinite(summary["test/mse"])
    assert os.path.isfile(os.path.join(workdir, "figures", "reconstructions.png"))
    assert run.reconstruct(data.test.x[:3]).shape == (3, 32, 1)
    results = reconstruction_task(run.model, run.params, data, run.hp, seed=0, out_dir=str(tmp_dir(workdir)))
    assert np.isclose(results["test/mse"], summary["test/mse"], rtol=1e-4)
    assert 0 < results["test/pca8_mse"] < 1


def tmp_dir(workdir):
    return os.path.join(workdir, "eval")


def test_the_anomaly_task_scores_windows_per_anomaly_kind(series_run):
    workdir, data, _, run = series_run
    results = anomaly_task(run.model, run.params, data, run.hp, seed=0, out_dir=tmp_dir(workdir), per_class=True)
    # a spike of about 5 standard deviations is never reconstructed: its windows score highest
    assert results["test/mse_auroc_class1"] > 0.95
    assert results["test/rolling_zscore_auroc_class1"] > 0.8  # spikes are what a rolling z-score finds
    for key in ("test/auroc", "test/rolling_zscore_auroc", "test/pca_auroc", "test/mse_auroc_class3"):
        assert 0.0 <= results[key] <= 1.0


def test_image_only_tasks_refuse_a_sequence_run_in_one_line(series_run):
    workdir, data, _, run = series_run
    with pytest.raises(ConfigError, match=r"needs image inputs \[H, W, C\]"):
        inpainting_task(run.model, run.params, data, run.hp, seed=0, out_dir=tmp_dir(workdir))
