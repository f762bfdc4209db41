"""Compression task: PCA at full width is exact, uniform quantization, a PCA-equivalent model matches PCA."""

import dataclasses

import jax
import numpy as np
import pytest

from aejax.errors import ConfigError
from aejax.data import Dataset, Split
from aejax.evaluate.reconstruction import pca_reconstruction_mse
from aejax.evaluate.compression import compression_task, pca_curve, psnr_from_mse, quantize


def _low_rank_images(n, rng, basis, noise=0.02):
    """Images 4x4 in (0.1, 0.9): mean 0.5 plus a rank-3 signal plus a little noise."""
    x = 0.5 + 0.1 * rng.normal(size=(n, 3)) @ basis + noise * rng.normal(size=(n, 16))
    return np.clip(x, 0.1, 0.9).astype(np.float32).reshape(n, 4, 4, 1)


def _dataset(seed=0):
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(16, 3)))[0].T
    split = lambda n: Split(_low_rank_images(n, rng, basis), np.zeros(n, np.int32))
    return Dataset("lowrank", split(400), split(50), split(200), num_classes=1)


@dataclasses.dataclass(frozen=True)
class PCAModel:
    """A stand-in deterministic kind whose decoder is PCA's: sigmoid(decode_logits(encode(x))) = PCA recon."""

    mean: np.ndarray
    v_KxD: np.ndarray
    input_shape: tuple = (4, 4, 1)
    name: str = "pca_model"

    @property
    def code_size(self):
        return self.v_KxD.shape[0]

    def encode(self, params, batch):
        return (np.asarray(batch["x"]).reshape(len(batch["x"]), -1) - self.mean) @ self.v_KxD.T

    def decode_logits(self, params, z):
        p = np.clip(np.asarray(z) @ self.v_KxD + self.mean, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p)).reshape(len(z), *self.input_shape)

    def reconstruct(self, params, batch):
        return np.asarray(jax.nn.sigmoid(self.decode_logits(params, self.encode(params, batch))))


@dataclasses.dataclass(frozen=True)
class EncodeOnly:
    """A kind with encode and reconstruct but no way to decode a code."""

    input_shape: tuple = (4, 4, 1)
    code_size: int = 2
    name: str = "encode_only"

    def encode(self, params, batch):
        return np.asarray(batch["x"]).reshape(len(batch["x"]), -1)[:, :2]

    def reconstruct(self, params, batch):
        return np.asarray(batch["x"])


def test_pca_at_full_width_reconstructs_exactly_and_the_curve_falls():
    data = _dataset()
    curve = pca_curve(data.train.x, data.test.x, [1, 2, 3, 8, 16])
    assert curve[16] < 1e-12
    for k in (1, 3):  # sklearn's own PCA reconstruction (a separate fit and inverse_transform)
        assert curve[k] == pytest.approx(pca_reconstruction_mse(data.train.x, data.test.x, k), rel=1e-5)
    values = [curve[k] for k in (1, 2, 3, 8, 16)]
    assert all(a > b for a, b in zip(values, values[1:]))
    with pytest.raises(ConfigError, match="at most 16 components"):
        pca_curve(data.train.x, data.test.x, [17])


def test_uniform_quantization_levels_and_error_bound():
    lo, hi = np.array([0.0, -1.0]), np.array([1.0, 1.0])
    z = np.array([[0.4, -1.0], [0.6, 0.2], [1.5, 0.9]])
    np.testing.assert_allclose(quantize(z, lo, hi, 1), [[0.0, -1.0], [1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(quantize(np.array([[0.3, 0.0]]), lo, hi, 2), [[1 / 3, 1 / 3]])
    fine = np.random.default_rng(0).uniform(size=(100, 2)) * (hi - lo) + lo
    assert np.max(np.abs(quantize(fine, lo, hi, 6) - fine) / (hi - lo)) <= 0.5 / 63 + 1e-12
    assert psnr_from_mse(0.01) == pytest.approx(20.0) and psnr_from_mse(0.0) == float("inf")


def test_a_model_equal_to_pca_matches_pca_quantized_or_not(tmp_path):
    data = _dataset()
    flat = data.train.x.reshape(400, -1).astype(np.float64)
    mean = flat.mean(0)
    v = np.linalg.svd(flat - mean, full_matrices=False)[2][:3]
    res = compression_task(PCAModel(mean, v), None, data, {}, seed=0, out_dir=str(tmp_path), bits=(2, 4, 8))
    assert res["test/mse"] == pytest.approx(res["test/pca_mse"], rel=1e-4)
    assert res["test/psnr"] == pytest.approx(10 * np.log10(1 / res["test/mse"]))
    rows = res["rate_distortion"]
    assert [r["bits_per_image"] for r in rows] == [6, 12, 24]
    for r in rows:  # same codes (up to sign), same quantizer: same distortion
        assert r["mse"] == pytest.approx(r["pca_mse"], rel=1e-3)
    assert rows[0]["mse"] > rows[1]["mse"] > rows[2]["mse"] >= res["test/mse"] * (1 - 1e-6)
    assert (tmp_path / "rate_distortion.png").is_file()


def test_quantized_codes_need_a_decoder(tmp_path):
    data = _dataset()
    with pytest.raises(ConfigError, match="need a decoder from codes"):
        compression_task(EncodeOnly(), None, data, {}, seed=0, out_dir=str(tmp_path))
    res = compression_task(EncodeOnly(), None, data, {}, seed=0, out_dir=str(tmp_path), bits=())
    assert res["test/mse"] == 0.0 and res["rate_distortion"] == []
