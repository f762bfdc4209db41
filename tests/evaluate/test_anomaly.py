"""Anomaly task: known answers on planted anomalies, the one-class data protocol, and its errors."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest

from aejax.config import get_experiment_config
from aejax.data import Dataset, Split, load_dataset, restrict_to_class
from aejax.errors import CheckpointError, ConfigError
from aejax.evaluate import evaluate_workdir
from aejax.evaluate.anomaly import anomaly_task, detection_metrics
from aejax.train import fit
from aejax.train.setup import setup_run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class ProjectionAE:
    """A stand-in autoencoder: orthogonal projection onto a fixed subspace (no Likelihood capability)."""

    mean: np.ndarray
    basis_KxD: np.ndarray
    input_shape: tuple = (16, 1, 1)
    name: str = "projection"

    @property
    def code_size(self):
        return self.basis_KxD.shape[0]

    def encode(self, params, batch):
        return (batch["x"].reshape(len(batch["x"]), -1) - self.mean) @ self.basis_KxD.T

    def reconstruct(self, params, batch):
        return (self.encode(params, batch) @ self.basis_KxD + self.mean).reshape(batch["x"].shape)


def _planted(seed=0):
    """Normal data near a 3-D subspace of 16-D; anomalies 5 units off it in the other directions."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(16, 16)))[0].T  # orthonormal rows
    normal = lambda n: rng.normal(size=(n, 3)) @ basis[:3] + 0.05 * rng.normal(size=(n, 16))
    anomalies = normal(40) + 5.0 * rng.normal(size=(40, 13)) @ basis[3:]
    test_x = np.concatenate([normal(60), anomalies]).astype(np.float32).reshape(-1, 16, 1, 1)
    test_y = np.array([0] * 60 + [1] * 40, np.int32)
    train = Split(normal(200).astype(np.float32).reshape(-1, 16, 1, 1), np.zeros(200, np.int32))
    val = Split(normal(30).astype(np.float32).reshape(-1, 16, 1, 1), np.zeros(30, np.int32))
    data = Dataset("planted", train, val, Split(test_x, test_y), num_classes=2, normal_class=0)
    return data, ProjectionAE(np.zeros(16, np.float32), basis[:3].astype(np.float32))


def test_detection_metrics_known_values():
    m = detection_metrics(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    assert m["auroc"] == pytest.approx(0.75)
    assert m["pr_auc"] == pytest.approx((1.0 + 2 / 3) / 2)  # precision at each anomaly's rank: 1, 2/3


def test_planted_anomalies_give_auroc_near_one_and_inverted_score_near_zero(tmp_path):
    data, model = _planted()
    res = anomaly_task(model, None, data, {}, seed=0, out_dir=str(tmp_path))
    assert res["score"] == "mse" and res["normal_class"] == 0
    assert res["test/auroc"] > 0.99 and res["test/pr_auc"] > 0.99
    for name in ("pca", "isolation_forest", "ocsvm", "mse"):
        assert res[f"test/{name}_auroc"] > 0.9, name
    # The anomalies lie off the subspace, so their codes (projections) look normal: code distance is blind.
    assert res["test/code_knn_auroc"] < 0.7
    assert set(res["detectors"]) == {"mse", "code_knn", "combined", "pca", "isolation_forest", "ocsvm"}
    errors = np.mean((model.reconstruct(None, {"x": data.test.x}) - data.test.x) ** 2, axis=(1, 2, 3))
    assert detection_metrics(-errors, data.test.y != 0)["auroc"] < 0.01
    assert os.path.isfile(tmp_path / "anomaly.png")


def test_kind_without_likelihood_cannot_score_elbo_and_runs_need_a_normal_class(tmp_path):
    data, model = _planted()
    with pytest.raises(ConfigError, match="needs a kind with a likelihood"):
        anomaly_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), score="elbo", baselines=False)
    with pytest.raises(ConfigError, match="data.normal_class"):
        anomaly_task(model, None, dataclasses.replace(data, normal_class=None), {}, seed=0, out_dir=str(tmp_path))


def test_restrict_to_class_keeps_one_class_for_training_and_the_whole_test_split():
    digits = load_dataset("digits")
    one = restrict_to_class(digits, 3)
    assert one.normal_class == 3 and set(one.train.y) == {3} and set(one.val.y) == {3}
    assert len(one.train) == int(np.sum(digits.train.y == 3)) and one.test is digits.test
    with pytest.raises(ConfigError, match="out of range.*10 classes"):
        restrict_to_class(digits, 10)
    cancer = restrict_to_class(load_dataset("breast_cancer"), 0)  # re-standardized on benign training rows
    np.testing.assert_allclose(cancer.train.x.reshape(len(cancer.train), -1).mean(axis=0), 0.5, atol=1e-5)
    assert set(np.unique(cancer.test.y)) == {0, 1}


def test_out_of_range_normal_class_in_a_config_is_a_clear_error():
    cfg = get_experiment_config(os.path.join(REPO, "experiments", "digits_ae.py"), {"data.normal_class": 12})
    with pytest.raises(ConfigError, match="normal_class=12 is out of range"):
        setup_run(cfg)


@pytest.fixture(scope="module")
def oneclass_run(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("oneclass"))
    cfg = get_experiment_config(os.path.join(REPO, "experiments", "digits_ae.py"), {
        "data.normal_class": 0, "train.epochs": 3, "train.batch_size": 32, "model.hidden": (32,),
        "model.code_size": 4, "train.progress": False, "train.figures": False, "train.tensorboard": False})
    fit(cfg, wd)
    return wd


def test_anomaly_task_through_a_workdir_writes_every_detector(oneclass_run):
    res = evaluate_workdir(oneclass_run, "anomaly")
    with open(os.path.join(oneclass_run, "eval_anomaly.json")) as f:
        saved = json.load(f)
    for name in ("", "pca_", "isolation_forest_", "ocsvm_"):
        assert 0.5 < saved[f"test/{name}auroc"] <= 1.0 and 0.0 < saved[f"test/{name}pr_auc"] <= 1.0
    assert saved["test/auroc"] == res["test/auroc"] and saved["normal_class"] == 0
    assert "## anomaly" in open(os.path.join(oneclass_run, "report.md")).read()


def test_unknown_option_and_workdir_without_checkpoint_are_clear_errors(oneclass_run, tmp_path):
    with pytest.raises(ConfigError, match="no option 'nu'"):
        evaluate_workdir(oneclass_run, "anomaly", nu=0.2)
    shutil.copy(os.path.join(oneclass_run, "config.json"), tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        evaluate_workdir(str(tmp_path), "anomaly")


def test_representation_of_a_one_class_run_is_a_clear_error(oneclass_run):
    with pytest.raises(ConfigError, match="one-class run"):
        evaluate_workdir(oneclass_run, "representation")
