"""Colorization quality: PSNR in RGB and in the chroma channels of colour predicted from gray.

The run must be a denoising autoencoder trained with the `grayscale` corruption on RGB images.
Every test image is turned into its gray copy (BT.601 luma on all three channels, corruption
level 1 whatever the training level) and the model's reconstruction of it is the prediction.
Two baselines get the same scores:

  grayscale copy  the gray input itself (no colour at all);
  mean chroma     the input's luma with the training split's mean Cb and Cr (one colour cast).

Chroma is Cb and Cr of full-range YCbCr as JPEG defines it (JFIF 1.02, from BT.601), in [0, 1]
with 0.5 for no colour, so "psnr_chroma" measures the colour alone and "psnr_rgb" the whole image.
PSNR = 10 log10(1 / MSE) with the MSE pooled over all test pixels (and channels); an exact match
(MSE 0) is reported as +inf. Writes figures/colorization.png (gray input, mean-chroma baseline,
prediction, original) of test images spread over the split.

References: ITU-R Recommendation BT.601; Hamilton 1992, "JPEG File Interchange Format 1.02"
(full-range YCbCr); Zhang, Isola & Efros 2016, "Colorful image colorization" and Larsson, Maire &
Shakhnarovich 2016, "Learning representations for automatic colorization" (PSNR of colorizations
against the gray-input baseline).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from aejax.data import corruptions
from aejax.errors import ConfigError, DataError
from aejax.models.protocols import Corrupting

# Full-range YCbCr (JFIF): rows give Y, Cb, Cr from R, G, B; Cb and Cr are offset by 0.5.
RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114],
                         [-0.168736, -0.331264, 0.5],
                         [0.5, -0.418688, -0.081312]])
CHROMA_OFFSET = np.array([0.0, 0.5, 0.5])


def rgb_to_ycbcr(x_NxHxWx3) -> np.ndarray:
    """Full-range YCbCr of RGB images in [0, 1] -> [N, H, W, 3] (float64; Y, Cb, Cr in [0, 1])."""
    return np.asarray(x_NxHxWx3, np.float64) @ RGB_TO_YCBCR.T + CHROMA_OFFSET


def ycbcr_to_rgb(ycc_NxHxWx3) -> np.ndarray:
    """The inverse of `rgb_to_ycbcr` (float64, not clipped)."""
    return (np.asarray(ycc_NxHxWx3, np.float64) - CHROMA_OFFSET) @ np.linalg.inv(RGB_TO_YCBCR).T


def psnr_from_mse(mse: float) -> float:
    """10 log10(1 / mse) in dB for values in [0, 1]; +inf for an exact match (mse 0)."""
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))


def colour_psnr(x_hat_NxHxWx3, x_NxHxWx3) -> dict[str, float]:
    """PSNR of a colour estimate against the original: "psnr_rgb" over R, G, B and "psnr_chroma" over Cb, Cr.

    Both pool the squared error over every pixel of every image; an exact match gives +inf.
    """
    x_hat, x = np.asarray(x_hat_NxHxWx3, np.float64), np.asarray(x_NxHxWx3, np.float64)
    if x.shape != x_hat.shape or x.ndim != 4 or x.shape[-1] != 3:
        raise DataError(f"colour PSNR needs two RGB batches of one shape [N, H, W, 3], got {x_hat.shape} "
                        f"and {x.shape}.")
    chroma_error = (rgb_to_ycbcr(x_hat) - rgb_to_ycbcr(x))[..., 1:]
    return {"psnr_rgb": psnr_from_mse(float(np.mean(np.square(x_hat - x)))),
            "psnr_chroma": psnr_from_mse(float(np.mean(np.square(chroma_error))))}


def mean_chroma_baseline(gray_NxHxWx3, mean_cb: float, mean_cr: float) -> np.ndarray:
    """RGB images with the gray input's luma and one chroma (mean_cb, mean_cr) everywhere, clipped to [0, 1]."""
    ycc = rgb_to_ycbcr(gray_NxHxWx3)
    ycc[..., 1], ycc[..., 2] = mean_cb, mean_cr
    return np.clip(ycbcr_to_rgb(ycc), 0.0, 1.0)


def check_colorization_run(model, dataset) -> None:
    """Raises unless the run colorizes: a grayscale-corruption model on RGB images [N, H, W, 3]."""
    corruption = model.corruption if isinstance(model, Corrupting) else None
    if corruption != "grayscale":
        trained = f"corruption {corruption!r}" if corruption else f"model kind {getattr(model, 'name', '?')!r}"
        raise ConfigError(f"the colorization task needs a run trained on gray inputs (model.kind=denoising "
                          f"model.corruption=grayscale), but this run has {trained}; train one such as "
                          "experiments/colour_colorization.py.")
    shape = np.shape(dataset.test.x)
    if len(shape) != 4 or shape[-1] != 3:
        raise DataError(f"the colorization task needs RGB images shaped [N, H, W, 3], but this run's test images "
                        f"are shaped {shape}; use a colour dataset such as data.name=colour_patches.")


def colorization_task(model, params, dataset, hp, *, seed: int, out_dir: str, batch_size: int = 1000,
                      max_examples: int = 0, num_shown: int = 10) -> dict[str, Any]:
    """Scores colour predicted from the gray copies of the test images, against two baselines.

    Args:
      model, params, dataset, hp: a denoising run with corruption `grayscale` on RGB images.
      seed: the run's seed (unused: the gray copy is deterministic).
      out_dir: where colorization.png goes.
      batch_size: evaluation batch size.
      max_examples: use only the first N test images (0: all).
      num_shown: test images in the figure, evenly spaced over the test split.
    Returns:
      "test/psnr_rgb" and "test/psnr_chroma" of the model, the same for the baselines under
      "test/gray_*" and "test/mean_chroma_*", "scores" (method -> both PSNRs), the training split's
      mean chroma, and "figures".
    """
    del hp, seed
    check_colorization_run(model, dataset)
    if batch_size < 1 or max_examples < 0 or num_shown < 1:
        raise ConfigError(f"batch_size and num_shown must be >= 1 and max_examples >= 0, got {batch_size}, "
                          f"{num_shown} and {max_examples}.")
    x, y = dataset.test.x, dataset.test.y
    if max_examples:
        x, y = x[:max_examples], y[:max_examples]
    gray = np.asarray(corruptions.grayscale(x, 1.0, key=None))
    predicted = np.concatenate([np.asarray(model.reconstruct(params, {"x": gray[s:s + batch_size],
                                                                      "y": y[s:s + batch_size]}))
                                for s in range(0, len(x), batch_size)])
    train_ycc = rgb_to_ycbcr(dataset.train.x)
    mean_cb, mean_cr = float(train_ycc[..., 1].mean()), float(train_ycc[..., 2].mean())
    baseline = mean_chroma_baseline(gray, mean_cb, mean_cr)
    scores = {"model": colour_psnr(predicted, x), "grayscale copy": colour_psnr(gray, x),
              "mean chroma": colour_psnr(baseline, x)}
    results: dict[str, Any] = {}
    for prefix, method in (("", "model"), ("gray_", "grayscale copy"), ("mean_chroma_", "mean chroma")):
        results.update({f"test/{prefix}{k}": v for k, v in scores[method].items()})
    results.update({"scores": scores, "train_mean_cb": mean_cb, "train_mean_cr": mean_cr,
                    "num_examples": len(x)})
    shown = np.unique(np.linspace(0, len(x) - 1, min(num_shown, len(x))).astype(int))  # spread over the test split
    results["figures"] = [_figure(out_dir, [a[shown] for a in (gray, baseline, predicted, x)])]
    return results


def _figure(out_dir: str, rows: list[np.ndarray]) -> str:
    from aejax.viz.figures import image_rows

    os.makedirs(out_dir, exist_ok=True)
    return image_rows(rows, ["gray input", "mean chroma", "predicted", "original"],
                      os.path.join(out_dir, "colorization.png"), title="colorization of held-out patches")
