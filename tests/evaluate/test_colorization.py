"""Colorization: YCbCr against the JPEG formulas, PSNR of exact matches, baselines, refusals, a short real run."""

import dataclasses
import os
import types

import numpy as np
import pytest

from aejax.config import get_experiment_config
from aejax.errors import ConfigError, DataError
from aejax.evaluate import evaluate_workdir
from aejax.evaluate.colorization import (
    colorization_task,
    colour_psnr,
    mean_chroma_baseline,
    rgb_to_ycbcr,
    ycbcr_to_rgb,
)
from aejax.train import fit


def _images(n=12, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, 6, 5, 3)).astype(np.float32)


def test_ycbcr_matches_the_jfif_formulas_and_inverts():
    x = _images()
    r, g, b = (x[..., i].astype(np.float64) for i in range(3))
    ycc = rgb_to_ycbcr(x)
    np.testing.assert_allclose(ycc[..., 0], 0.299 * r + 0.587 * g + 0.114 * b, atol=1e-12)
    np.testing.assert_allclose(ycc[..., 1], 0.5 - 0.168736 * r - 0.331264 * g + 0.5 * b, atol=1e-12)
    np.testing.assert_allclose(ycc[..., 2], 0.5 + 0.5 * r - 0.418688 * g - 0.081312 * b, atol=1e-12)
    np.testing.assert_allclose(ycbcr_to_rgb(ycc), x, atol=1e-6)
    np.testing.assert_allclose(rgb_to_ycbcr(np.full((1, 1, 1, 3), 0.3))[0, 0, 0], [0.3, 0.5, 0.5], atol=1e-6)


def test_psnr_of_an_exact_match_is_infinite_and_otherwise_by_value():
    x = _images()
    assert colour_psnr(x, x) == {"psnr_rgb": float("inf"), "psnr_chroma": float("inf")}
    shifted = x + np.float32(0.1)  # the same shift on R, G and B changes luma only
    scores = colour_psnr(shifted, x)
    assert scores["psnr_rgb"] == pytest.approx(20.0, abs=1e-4)
    assert scores["psnr_chroma"] > 100  # float32 rounding only
    red = x.copy()
    red[..., 0] += np.float32(0.1)  # Cb moves by -0.0168736, Cr by 0.05
    expected = 10 * np.log10(1 / ((0.0168736 ** 2 + 0.05 ** 2) / 2))
    assert colour_psnr(red, x)["psnr_chroma"] == pytest.approx(expected, abs=1e-3)
    with pytest.raises(DataError, match=r"two RGB batches of one shape \[N, H, W, 3\]"):
        colour_psnr(x[..., :1], x[..., :1])


def test_mean_chroma_baseline_keeps_the_luma_and_sets_the_chroma():
    x = 0.25 + 0.5 * _images()  # mid-range: no clipping
    gray = np.repeat(rgb_to_ycbcr(x)[..., :1], 3, axis=-1)
    out = rgb_to_ycbcr(mean_chroma_baseline(gray, 0.45, 0.55))
    np.testing.assert_allclose(out[..., 0], gray[..., 0], atol=1e-9)
    np.testing.assert_allclose(out[..., 1], 0.45, atol=1e-9)
    np.testing.assert_allclose(out[..., 2], 0.55, atol=1e-9)


@dataclasses.dataclass(frozen=True)
class _Identity:
    """Returns its (gray) input: scores must equal the grayscale copy's."""

    corruption: str = "grayscale"
    name = "denoising"

    def reconstruct(self, params, batch):
        return batch["x"]


def _dataset(x):
    split = types.SimpleNamespace(x=x, y=np.zeros(len(x), np.int32))
    return types.SimpleNamespace(train=split, test=split)


def test_identity_model_scores_the_grayscale_copy(tmp_path):
    x = _images(20)
    res = colorization_task(_Identity(), None, _dataset(x), {}, seed=0, out_dir=str(tmp_path))
    assert res["test/psnr_rgb"] == pytest.approx(res["test/gray_psnr_rgb"], abs=1e-5)
    assert res["test/psnr_chroma"] == pytest.approx(res["test/gray_psnr_chroma"], abs=1e-5)
    ycc = rgb_to_ycbcr(x)
    gray_chroma_mse = np.mean((ycc[..., 1:] - 0.5) ** 2)  # a gray image has Cb = Cr = 0.5
    assert res["test/gray_psnr_chroma"] == pytest.approx(10 * np.log10(1 / gray_chroma_mse), abs=1e-4)
    assert res["train_mean_cb"] == pytest.approx(ycc[..., 1].mean())
    assert set(res["scores"]) == {"model", "grayscale copy", "mean chroma"}
    assert all(os.path.isfile(p) for p in res["figures"])


@pytest.mark.parametrize(("model", "x", "error", "message"), [
    (_Identity(corruption="gaussian"), _images(), ConfigError,
     r"needs a run trained on gray inputs .* this run has corruption 'gaussian'"),
    (types.SimpleNamespace(name="vae"), _images(), ConfigError, r"this run has model kind 'vae'"),
    (_Identity(), _images()[..., :1], DataError, r"needs RGB images shaped \[N, H, W, 3\], .* \(12, 6, 5, 1\)"),
])
def test_runs_that_do_not_colorize_are_refused(tmp_path, model, x, error, message):
    with pytest.raises(error, match=message):
        colorization_task(model, None, _dataset(x), {}, seed=0, out_dir=str(tmp_path))


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """The colorization experiment shrunk: 8x8 patches, a small MLP, 5 epochs of 46 steps."""
    workdir = str(tmp_path_factory.mktemp("colour"))
    overrides = {"data.patch_size": 8, "data.patch_stride": 8, "data.test_size": 200, "model.hidden": (128,),
                 "model.code_size": 96, "hp.learning_rate": 3e-3, "train.epochs": 5, "train.progress": False,
                 "train.figures": False, "train.tensorboard": False, "train.checkpoint_every": 5}
    fit(get_experiment_config("colour_colorization", overrides), workdir)
    return workdir


def test_trained_colorizer_beats_gray_in_chroma_and_writes_its_report(colour_run):
    res = evaluate_workdir(colour_run, "colorization", max_examples=150, num_shown=6)
    assert res["num_examples"] == 150
    assert res["test/psnr_chroma"] > max(res["test/gray_psnr_chroma"], res["test/mean_chroma_psnr_chroma"]) + 0.5
    with open(os.path.join(colour_run, "report.md"), encoding="utf-8") as f:
        report = f.read()
    assert "<!-- task:colorization -->" in report and "| grayscale copy |" in report
    assert "figures/colorization.png" in report and os.path.isfile(os.path.join(colour_run, "figures",
                                                                               "colorization.png"))

