"""Task options at values that differ from their defaults reach the computation, and batched scoring equals
per-example scoring: each checked against an independent scikit-learn or numpy computation."""

import dataclasses

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import OneClassSVM

from aejax.data import Dataset, Split
from aejax.evaluate.anomaly import anomaly_task
from aejax.evaluate.compression import compression_task
from aejax.evaluate.reconstruction import reconstruction_task
from aejax.evaluate.representation import representation_task
from aejax.evaluate.series import rolling_zscore_scores


@dataclasses.dataclass(frozen=True)
class Projection:
    """A stand-in autoencoder of any input shape: orthogonal projection of the flattened example onto K rows."""

    basis_KxD: np.ndarray
    input_shape: tuple
    name: str = "projection"

    @property
    def code_size(self):
        return self.basis_KxD.shape[0]

    def encode(self, params, batch):
        return np.asarray(batch["x"]).reshape(len(batch["x"]), -1) @ self.basis_KxD.T

    def reconstruct(self, params, batch):
        return (self.encode(params, batch) @ self.basis_KxD).reshape(np.shape(batch["x"]))

    def decode_logits(self, params, z):  # the compression task's decoder: sigmoid(logits) = the projection
        p = np.clip(np.asarray(z) @ self.basis_KxD, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))


def _one_class(seed=0, shape=(16, 1, 1)):
    """Normal examples near a 3-D subspace; anomalies off it. Flattened width D = prod(shape)."""
    rng = np.random.default_rng(seed)
    d = int(np.prod(shape))
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0].T
    normal = lambda n: rng.normal(size=(n, 3)) @ basis[:3] + 0.1 * rng.normal(size=(n, d))  # noqa: E731
    anomalies = normal(40) + 0.12 * rng.normal(size=(40, d - 3)) @ basis[3:]  # close: no detector is perfect
    as_x = lambda a: a.astype(np.float32).reshape(-1, *shape)  # noqa: E731
    test = Split(as_x(np.concatenate([normal(60), anomalies])), np.array([0] * 60 + [1] * 40, np.int32))
    data = Dataset("planted", Split(as_x(normal(150)), np.zeros(150, np.int32)),
                   Split(as_x(normal(30)), np.zeros(30, np.int32)), test, num_classes=2, normal_class=0)
    return data, Projection(basis[:3].astype(np.float32), shape)


def test_anomaly_knn_and_ocsvm_nu_reach_their_detectors(tmp_path):
    data, model = _one_class()
    out = anomaly_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), knn=1, ocsvm_nu=0.3)
    default = anomaly_task(model, None, data, {}, seed=0, out_dir=str(tmp_path))
    is_anomaly = data.test.y != 0
    z_tr, z_te = model.encode(None, {"x": data.train.x}), model.encode(None, {"x": data.test.x})
    nearest = np.sqrt(((z_te[:, None] - z_tr[None]) ** 2).sum(-1)).min(axis=1)
    assert out["test/code_knn_auroc"] == pytest.approx(roc_auc_score(is_anomaly, nearest), abs=1e-12)
    svm = OneClassSVM(kernel="rbf", gamma="scale", nu=0.3).fit(data.train.x.reshape(150, -1).astype(np.float64))
    expected = roc_auc_score(is_anomaly, -svm.decision_function(data.test.x.reshape(100, -1).astype(np.float64)))
    assert out["test/ocsvm_auroc"] == pytest.approx(expected, abs=1e-12)
    assert out["test/ocsvm_auroc"] != default["test/ocsvm_auroc"]  # the option is not the default in disguise


def test_anomaly_zscore_window_reaches_the_rolling_baseline(tmp_path):
    data, model = _one_class(shape=(24, 1))
    out = anomaly_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), zscore_window=5)
    default = anomaly_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), zscore_window=12)
    expected = roc_auc_score(data.test.y != 0, rolling_zscore_scores(data.test.x, 5))
    assert out["test/rolling_zscore_auroc"] == pytest.approx(expected, abs=1e-12)
    assert out["test/rolling_zscore_auroc"] != default["test/rolling_zscore_auroc"]


def _labelled(seed=0, n_train=120, d=10):
    rng = np.random.default_rng(seed)

    def split(n):
        y = np.arange(n) % 3
        x = 1.2 * np.eye(3, d)[y] + 0.6 * rng.normal(size=(n, d))  # overlapping classes: k matters
        return Split(x.astype(np.float32).reshape(n, d, 1, 1), y.astype(np.int32))

    return Dataset("labelled", split(n_train), split(30), split(90), num_classes=3)


def test_representation_knn_and_trust_neighbors_reach_sklearn(tmp_path):
    data = _labelled()
    basis = np.linalg.qr(np.random.default_rng(1).normal(size=(10, 10)))[0][:4].astype(np.float32)
    model = Projection(basis, (10, 1, 1))
    out = representation_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), knn=1, trust_neighbors=3,
                              map_examples=90)
    z_tr, z_te = model.encode(None, {"x": data.train.x}), model.encode(None, {"x": data.test.x})
    assert out["test/codes_knn_accuracy"] == pytest.approx(
        KNeighborsClassifier(n_neighbors=1).fit(z_tr, data.train.y).score(z_te, data.test.y))
    flat_te = data.test.x.reshape(90, -1)
    from aejax.evaluate.representation import map_2d

    assert out["test/trustworthiness"] == pytest.approx(trustworthiness(flat_te, map_2d(z_te)[0], n_neighbors=3))


def test_batched_scores_equal_per_example_scores(tmp_path):
    """The reconstruction and compression tasks give the same numbers in batches of 7 as in one batch."""
    data = _labelled()
    model = Projection(np.linalg.qr(np.random.default_rng(2).normal(size=(10, 10)))[0][:3].astype(np.float32),
                       (10, 1, 1))
    one = reconstruction_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), batch_size=1000)
    many = reconstruction_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), batch_size=7)
    assert many["test/mse"] == pytest.approx(one["test/mse"], rel=1e-6)
    flat = data.test.x.reshape(90, -1)
    assert one["test/mse"] == pytest.approx(np.mean((model.reconstruct(None, {"x": flat}) - flat) ** 2), rel=1e-6)
    c_one = compression_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), bits=(), batch_size=1000)
    c_many = compression_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), bits=(), batch_size=7)
    assert c_many["test/mse"] == pytest.approx(c_one["test/mse"], rel=1e-6)


def test_compression_max_train_fits_pca_on_that_many_examples(tmp_path):
    data = _labelled(n_train=120)
    model = Projection(np.eye(3, 10, dtype=np.float32), (10, 1, 1))
    out = compression_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), bits=(), max_train=20)
    full = compression_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), bits=())
    train, test = data.train.x.reshape(120, -1)[:20], data.test.x.reshape(90, -1)
    pca = PCA(n_components=3, svd_solver="full").fit(train)
    expected = np.mean((pca.inverse_transform(pca.transform(test)) - test) ** 2)
    assert out["test/pca_mse"] == pytest.approx(expected, rel=1e-5)
    assert out["test/pca_mse"] != full["test/pca_mse"]


def test_a_zscore_window_over_half_the_length_is_a_clear_error(tmp_path):
    """T = 24 with the default window 16 used to crash inside numpy (a broadcast error): the points between
    T - window and window have a full window neither before nor after them."""
    from aejax.errors import ConfigError

    data, model = _one_class(shape=(24, 1))
    with pytest.raises(ConfigError, match=r"2 <= zscore_window <= T / 2 .*zscore_window=16"):
        anomaly_task(model, None, data, {}, seed=0, out_dir=str(tmp_path))
    assert rolling_zscore_scores(data.test.x, 12).shape == (100,)  # exactly half the length is fine
