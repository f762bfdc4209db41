"""Inpainting task: block masks, PSNR on the masked region only, baselines, and bad masks."""

import dataclasses

import jax
import numpy as np
import pytest

from aejax.data import Dataset, Split
from aejax.errors import ConfigError
from aejax.evaluate import check_options
from aejax.evaluate.inpainting import block_masks, inpainting_task, masked_psnr


@dataclasses.dataclass(frozen=True)
class FillWithMean:
    """A stand-in kind whose reconstruction writes a fixed image wherever the input is exactly 0."""

    image: np.ndarray
    input_shape: tuple = (6, 6, 1)
    name: str = "fill"

    def reconstruct(self, params, batch):
        x = np.asarray(batch["x"])
        return np.where(x == 0.0, self.image, x)


def _dataset():
    rng = np.random.default_rng(0)
    split = lambda n: Split(rng.uniform(0.2, 0.8, size=(n, 6, 6, 1)).astype(np.float32), np.zeros(n, np.int32))
    return Dataset("noise", split(50), split(10), split(20), num_classes=1)


def test_centre_and_random_masks_cover_exactly_a_square():
    m = block_masks("centre", 2, 3, (6, 6))
    expected = np.zeros((6, 6), bool)
    expected[2:4, 2:4] = True
    assert m.shape == (3, 6, 6, 1) and np.all(m[..., 0] == expected)
    r = block_masks("random", 3, 200, (6, 7), key=jax.random.key(0))
    assert np.all(r.sum(axis=(1, 2, 3)) == 9)
    tops = np.argmax(r.any(axis=(2, 3)), axis=1)
    assert set(tops) == {0, 1, 2, 3}  # every position the square fits at is drawn


def test_psnr_counts_only_the_masked_pixels():
    x = np.full((2, 4, 4, 1), 0.5)
    mask = np.zeros_like(x, bool)
    mask[:, :2, :2] = True
    est = np.where(mask, x + 0.1, x + 0.3 * ~mask)  # off by 0.1 inside the mask, 0.3 outside
    assert masked_psnr(est, x, mask) == pytest.approx(20.0)


def test_zero_size_mask_leaves_psnr_undefined_and_an_oversized_mask_is_refused(tmp_path):
    x = np.zeros((1, 4, 4, 1))
    with pytest.raises(ConfigError, match="covers no pixels.*undefined"):
        masked_psnr(x, x, np.zeros_like(x, bool))
    data, model = _dataset(), FillWithMean(np.zeros((6, 6, 1), np.float32))
    with pytest.raises(ConfigError, match="size 0 covers no pixels.*undefined"):
        inpainting_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), sizes=(2, 0))
    with pytest.raises(ConfigError, match="7x7 mask is larger than the 6x6 image"):
        inpainting_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), sizes=7)
    with pytest.raises(ConfigError, match="masks must be"):
        inpainting_task(model, None, data, {}, seed=0, out_dir=str(tmp_path), masks="centre,ring")
    with pytest.raises(ConfigError, match="takes int or tuple"):
        check_options("inpainting", {"sizes": "8"})


def test_a_model_that_fills_with_the_mean_scores_as_mean_filling(tmp_path):
    data = _dataset()
    mean = data.train.x.mean(axis=0)
    res = inpainting_task(FillWithMean(mean), None, data, {}, seed=3, out_dir=str(tmp_path), sizes=(2, 4))
    for kind in ("centre", "random"):
        for size in (2, 4):
            key = f"test/{kind}{size}"
            assert res[f"{key}/psnr"] == pytest.approx(res[f"{key}/mean_fill_psnr"], rel=1e-6)
            assert res[f"{key}/psnr"] > res[f"{key}/input_psnr"] + 3.0  # zeros are far from pixels in [0.2, 0.8]
    mask = block_masks("centre", 4, 20, (6, 6))
    assert res["test/centre4/input_psnr"] == pytest.approx(masked_psnr(np.zeros_like(data.test.x), data.test.x, mask))
    assert (tmp_path / "inpainting.png").is_file()


def test_a_masked_autoencoder_predicts_exactly_the_patches_the_hole_touches():
    """The MAE keeps every patch outside the hole as given and predicts the touched ones, whatever its
    own training mask ratio (its `reconstruct` would hide random patches instead)."""
    import jax

    from aejax.evaluate.inpainting import block_masks, fill_holes
    from aejax.models import model_from_options

    model = model_from_options("mae", input_shape=(8, 8, 1), num_classes=10, net="transformer", patch_size=2,
                               width=16, depth=1, heads=2, decoder_width=16, decoder_heads=2)
    x = np.random.default_rng(0).uniform(size=(6, 8, 8, 1)).astype(np.float32)
    params = model.init(jax.random.key(0), {"x": x[:1], "y": np.zeros(1, np.int32)})
    mask = block_masks("random", 3, len(x), (8, 8), key=jax.random.key(1))  # touches 4 or more 2x2 patches
    x_in = np.where(mask, np.float32(0.0), x)
    out = fill_holes(model, params, x_in, mask)
    touched = mask[..., 0].reshape(6, 4, 2, 4, 2).any(axis=(2, 4))
    touched_pixels = np.repeat(np.repeat(touched, 2, axis=1), 2, axis=2)[..., None]
    np.testing.assert_array_equal(out[~touched_pixels], x_in[~touched_pixels])
    assert np.abs(out[mask] - x_in[mask]).max() > 0  # the hole itself is predicted, not left at the fill
