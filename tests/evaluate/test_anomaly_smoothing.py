"""The smoothed reconstruction error of the anomaly task: closed forms, a planted coherent anomaly, errors."""

import dataclasses

import numpy as np
import pytest

from aejax.data import Dataset, Split
from aejax.errors import ConfigError
from aejax.evaluate.anomaly import anomaly_task, smoothed_squared_error


def gaussian_kernel_1d(sigma, truncate=4.0):
    """The sampled, normalized Gaussian that scipy.ndimage uses (radius = round(truncate * sigma)), in float64."""
    radius = int(truncate * sigma + 0.5)
    w = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return w / w.sum()


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.0])
def test_an_impulse_keeps_the_squared_mass_of_the_2d_kernel(sigma):
    r = np.zeros((1, 31, 31, 1))
    r[0, 15, 15, 0] = 3.0
    w = gaussian_kernel_1d(sigma)
    expected = 9.0 * np.sum(w ** 2) ** 2 / (31 * 31)  # the 2-D kernel is the outer product of the 1-D one
    assert smoothed_squared_error(r, sigma)[0] == pytest.approx(expected, rel=1e-9)


def test_a_constant_residual_is_unchanged_and_sigma_zero_is_the_plain_error():
    r = np.full((2, 9, 9, 3), 0.25)
    np.testing.assert_allclose(smoothed_squared_error(r, 1.5), [0.0625, 0.0625], rtol=1e-12)
    noise = np.random.default_rng(0).normal(size=(3, 9, 9, 1))
    np.testing.assert_allclose(smoothed_squared_error(noise, 0.0), np.mean(noise.reshape(3, -1) ** 2, axis=1))


def test_each_example_in_a_mixed_batch_scores_as_it_does_alone():
    """The filter runs over H and W only: not across the batch (a large residual would leak into its
    neighbours' scores) and not across channels (each channel is filtered on its own)."""
    rng = np.random.default_rng(3)
    batch = np.stack([np.zeros((12, 10, 3)), 5.0 * rng.normal(size=(12, 10, 3)), rng.normal(size=(12, 10, 3)),
                      np.zeros((12, 10, 3))])
    batch[3, 6, 4, 1] = 4.0  # an impulse in one channel of an otherwise clean example
    together = smoothed_squared_error(batch, 1.5)
    alone = np.concatenate([smoothed_squared_error(batch[i:i + 1], 1.5) for i in range(len(batch))])
    np.testing.assert_allclose(together, alone, rtol=1e-12)
    assert together[0] == 0.0
    per_channel = np.mean([smoothed_squared_error(batch[:, :, :, c:c + 1], 1.5) for c in range(3)], axis=0)
    np.testing.assert_allclose(together, per_channel, rtol=1e-12)


def test_the_task_scores_do_not_depend_on_the_batch_size(tmp_path):
    """Batched evaluation (the autoencoder's smoothed error in batches, PCA's on the whole split) equals
    per-example scoring: batch_size 1 and 1000 give the same scores."""
    data, model = _coherent_anomalies(seed=2)
    one = anomaly_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), score="smoothed_mse", batch_size=1)
    big = anomaly_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), score="smoothed_mse",
                       batch_size=1000)
    for key in ("test/smoothed_mse_auroc", "test/mse_auroc", "test/pca_smoothed_auroc", "test/code_knn_auroc"):
        assert one[key] == pytest.approx(big[key], abs=1e-12), key
    residual = data.test.x - model.base
    from aejax.evaluate.anomaly import reconstruction_errors

    np.testing.assert_allclose(reconstruction_errors(model, None, data.test.x, batch_size=7, smooth_sigma=1.0),
                               [smoothed_squared_error(residual[i:i + 1], 1.0)[0] for i in range(len(residual))],
                               rtol=1e-6)


@dataclasses.dataclass(frozen=True)
class MeanImageAE:
    """A stand-in autoencoder that reconstructs every image as one fixed image."""

    base: np.ndarray
    input_shape: tuple = (16, 16, 1)
    code_size: int = 2
    name: str = "mean-image"

    def encode(self, params, batch):
        return np.zeros((len(batch["x"]), 2), np.float32)

    def reconstruct(self, params, batch):
        return np.broadcast_to(self.base, batch["x"].shape)


def _coherent_anomalies(seed=0):
    """Normal images: base + white noise (std 0.1). Anomalies: base + an 8x8 blob of +0.09 + weaker noise (std 0.09),
    so their plain squared error is *smaller* than the normal images' while their error is spatially coherent."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.3, 0.7, size=(16, 16, 1)).astype(np.float32)
    normal = lambda n: base + 0.1 * rng.normal(size=(n, 16, 16, 1))
    blob = np.zeros((16, 16, 1))
    blob[4:12, 4:12] = 0.09
    anomalies = base + blob + 0.09 * rng.normal(size=(40, 16, 16, 1))
    test = Split(np.concatenate([normal(60), anomalies]).astype(np.float32), np.array([0] * 60 + [1] * 40, np.int32))
    data = Dataset("coherent", Split(normal(100).astype(np.float32), np.zeros(100, np.int32)),
                   Split(normal(20).astype(np.float32), np.zeros(20, np.int32)), test, num_classes=2, normal_class=0)
    return data, MeanImageAE(base)


def test_a_coherent_anomaly_is_found_by_the_smoothed_error_and_missed_by_the_plain_one(tmp_path):
    data, model = _coherent_anomalies()
    out = anomaly_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), score="smoothed_mse", baselines=False)
    assert out["score"] == "smoothed_mse"
    assert out["test/auroc"] == out["test/smoothed_mse_auroc"] > 0.97
    assert out["test/mse_auroc"] < 0.6  # the per-pixel error ranks the anomalies no higher than chance


def test_pca_gets_the_same_filter_as_a_baseline(tmp_path):
    data, model = _coherent_anomalies(seed=1)
    out = anomaly_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), score="smoothed_mse")
    assert {"test/pca_auroc", "test/pca_smoothed_auroc"} <= set(out)
    assert out["test/pca_smoothed_auroc"] > out["test/pca_auroc"]


def test_smoothing_needs_images_and_a_positive_sigma(tmp_path):
    data, model = _coherent_anomalies()
    tabular = dataclasses.replace(data, test=Split(data.test.x.reshape(-1, 256, 1, 1), data.test.y))
    with pytest.raises(ConfigError, match=r"score='smoothed_mse' filters the residual over the image plane"):
        anomaly_task(model, None, tabular, {}, seed=0, out_dir=str(tmp_path), score="smoothed_mse", baselines=False)
    with pytest.raises(ConfigError, match="smooth_sigma must be > 0 pixels, got 0.0"):
        anomaly_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), smooth_sigma=0.0, baselines=False)
