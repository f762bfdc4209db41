"""Representation task: a probe on linearly separable codes, the 2-D map and its trustworthiness."""

import dataclasses
import os

import numpy as np
import pytest

from aejax.data import Dataset, Split
from aejax.errors import ConfigError
from aejax.evaluate.representation import map_2d, probe_scores, representation_task


@dataclasses.dataclass(frozen=True)
class LinearEncoder:
    """A stand-in: codes = flattened x @ W."""

    w_DxK: np.ndarray
    name: str = "linear"

    @property
    def code_size(self):
        return self.w_DxK.shape[1]

    def encode(self, params, batch):
        return batch["x"].reshape(len(batch["x"]), -1) @ self.w_DxK


def _clusters(n, d, rng, num_classes=3, spread=0.3):
    """Three classes at far-apart centres in d dimensions (linearly separable)."""
    centres = 4.0 * np.eye(num_classes, d)
    y = np.arange(n) % num_classes
    x = centres[y] + spread * rng.normal(size=(n, d))
    return x.astype(np.float32).reshape(n, d, 1, 1), y.astype(np.int32)


def _dataset(d=12, seed=0):
    rng = np.random.default_rng(seed)
    return Dataset("clusters", Split(*_clusters(150, d, rng)), Split(*_clusters(30, d, rng)),
                   Split(*_clusters(90, d, rng)), num_classes=3)


def test_probe_on_linearly_separable_codes_is_near_perfect(tmp_path):
    data = _dataset()
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))[0]
    model = LinearEncoder((np.eye(12, 4) @ rotation).astype(np.float32))  # keeps the class centres apart
    res = representation_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), map_examples=90)
    assert res["test/codes_probe_accuracy"] >= 0.98 and res["test/codes_knn_accuracy"] >= 0.98
    for name in ("pca", "raw"):
        assert 0.9 <= res[f"test/{name}_probe_accuracy"] <= 1.0
    assert res["map"] == "PCA of the codes" and res["code_size"] == 4
    assert 0.0 <= res["test/trustworthiness"] <= 1.0
    assert os.path.isfile(tmp_path / "representation_map.png")


def test_labels_stay_with_their_examples_when_max_train_subsamples(tmp_path):
    """Fewer probe examples than the training split: the subsample's labels must be its own (labels taken
    in another order, e.g. the first max_train, put every probe at chance)."""
    data = _dataset()
    model = LinearEncoder((np.eye(12, 4)).astype(np.float32))
    res = representation_task(model, None, data, {}, seed=3, out_dir=str(tmp_path), max_train=40, map_examples=90)
    assert res["train_examples"] == 40 < len(data.train)
    for name in ("codes", "pca", "raw"):
        assert res[f"test/{name}_probe_accuracy"] >= 0.95 and res[f"test/{name}_knn_accuracy"] >= 0.95, name
    other = representation_task(model, None, data, {}, seed=4, out_dir=str(tmp_path), max_train=40, map_examples=90)
    assert other["train_examples"] == 40 and other["test/codes_probe_accuracy"] >= 0.95  # another subsample


def test_probe_on_codes_that_carry_no_label_is_at_chance():
    rng = np.random.default_rng(0)
    z_tr, z_te = rng.normal(size=(300, 4)), rng.normal(size=(300, 4))
    scores = probe_scores(z_tr, np.arange(300) % 3, z_te, np.arange(300) % 3)
    assert scores["probe_accuracy"] < 0.45 and scores["knn_accuracy"] < 0.45


def test_two_dimensional_codes_are_the_map_and_an_identity_map_is_fully_trustworthy(tmp_path):
    data = _dataset(d=2)
    res = representation_task(LinearEncoder(np.eye(2, dtype=np.float32)), None, data, {}, seed=0,
                              out_dir=str(tmp_path), map_examples=90)
    assert res["map"] == "codes"
    assert res["test/trustworthiness"] == pytest.approx(1.0)
    z = np.random.default_rng(0).normal(size=(20, 5))
    np.testing.assert_allclose(np.abs(np.corrcoef(map_2d(z)[0][:, 0], z @ np.linalg.svd(z - z.mean(0))[2][0])[0, 1]),
                               1.0, atol=1e-6)


def test_one_class_training_split_and_bad_options_are_clear_errors(tmp_path):
    data = _dataset()
    one = dataclasses.replace(data, train=Split(data.train.x[data.train.y == 0], data.train.y[data.train.y == 0]))
    model = LinearEncoder(np.ones((12, 2), np.float32))
    with pytest.raises(ConfigError, match="one-class run"):
        representation_task(model, None, one, {}, seed=0, out_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="knn >= 1"):
        representation_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), knn=0)
