"""Inpainting: fill a square hole in each test image; PSNR on the hole only.

Masks are squares of side `size` pixels: "centre" (the same centred square in every image) or
"random" (one square per image at a position drawn from the run's seed). The masked input has
the hole set to `fill` (0, what masking corruption writes); the model reconstructs from it. Scores
are PSNR = 10 log10(1 / MSE) with the MSE pooled over the masked pixels of all images, for
  the model's reconstruction,
  mean filling (the training split's per-pixel mean image in the hole), and
  the input as is (the hole left at `fill`).
Works with any kind whose `reconstruct` takes an image (a denoising autoencoder trained with
masking corruption is the natural one), and with the masked autoencoder, which is told which
patches the hole touches and predicts exactly those (`fill_holes`).

References: Vincent et al. 2008 (masking corruption); Pathak et al. 2016, "Context encoders:
feature learning by inpainting" (centre and random block masks).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from aejax.errors import ConfigError

MASKS = ("centre", "random")


def block_masks(kind: str, size: int, num: int, image_hw: tuple[int, int], *, key=None) -> np.ndarray:
    """Boolean masks [num, H, W, 1]: True inside a size x size square (centred, or at random positions)."""
    h, w = image_hw
    if kind not in MASKS:
        raise ConfigError(f"unknown mask {kind!r}; choose from {list(MASKS)}.")
    if size < 0:
        raise ConfigError(f"mask size must be >= 0 pixels, got {size}.")
    if size > h or size > w:
        raise ConfigError(f"a {size}x{size} mask is larger than the {h}x{w} image; choose a size of at most "
                          f"{min(h, w)}.")
    if kind == "centre":
        top = np.full(num, (h - size) // 2)
        left = np.full(num, (w - size) // 2)
    else:
        if key is None:
            raise ConfigError("random masks need a key.")
        k_top, k_left = jax.random.split(key)
        top = np.asarray(jax.random.randint(k_top, (num,), 0, h - size + 1))
        left = np.asarray(jax.random.randint(k_left, (num,), 0, w - size + 1))
    rows, cols = np.arange(h), np.arange(w)
    in_rows = (rows[None, :] >= top[:, None]) & (rows[None, :] < top[:, None] + size)
    in_cols = (cols[None, :] >= left[:, None]) & (cols[None, :] < left[:, None] + size)
    return (in_rows[:, :, None] & in_cols[:, None, :])[..., None]


def masked_psnr(estimate, target, mask) -> float:
    """PSNR in dB over the masked pixels only (MSE pooled over all of them; pixels in [0, 1])."""
    mask = np.broadcast_to(np.asarray(mask, bool), np.shape(target))
    count = int(mask.sum())
    if count == 0:
        raise ConfigError("the mask covers no pixels (size 0), so PSNR on the masked region is undefined; "
                          "choose a mask size of at least 1 pixel.")
    mse = float(np.sum(np.square(np.asarray(estimate, np.float64) - target)[mask]) / count)
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))


def fill_holes(model, params, x_in, mask, *, batch_size: int = 1000) -> np.ndarray:
    """The model's estimate of images whose masked pixels are missing -> [N, H, W, C].

    A masked-patch model (the MAE) is told which patches the hole touches: those are hidden and
    predicted, every other patch is kept as given (`model.inpaint`). Any other kind reconstructs the
    holed image as a whole (`model.reconstruct`).
    """
    from aejax.evaluate.masked import MaskedPatchModel

    if not isinstance(model, MaskedPatchModel):
        return np.concatenate([np.asarray(model.reconstruct(params, {
            "x": x_in[s:s + batch_size], "y": np.zeros(len(x_in[s:s + batch_size]), np.int32)}))
            for s in range(0, len(x_in), batch_size)])
    p = model.patch_size
    n, h, w, _ = x_in.shape
    touched_NxP = np.asarray(mask, bool)[..., 0].reshape(n, h // p, p, w // p, p).any(axis=(2, 4)).reshape(n, -1)
    out = np.empty_like(np.asarray(x_in, np.float32))
    for visible in np.unique((~touched_NxP).sum(axis=1)):  # one call per count of kept patches (a static shape)
        rows = np.flatnonzero((~touched_NxP).sum(axis=1) == visible)
        keep_BxV = np.stack([np.flatnonzero(~touched_NxP[r]) for r in rows]).astype(np.int32)
        for s in range(0, len(rows), batch_size):
            part = rows[s:s + batch_size]
            out[part] = np.asarray(model.inpaint(params, jax.numpy.asarray(x_in[part]),
                                                 jax.numpy.asarray(keep_BxV[s:s + batch_size])))
    return out


def _parse_masks(masks: str) -> list[str]:
    kinds = [m.strip() for m in masks.split(",") if m.strip()]
    bad = [m for m in kinds if m not in MASKS]
    if bad or not kinds:
        raise ConfigError(f"masks must be a comma-separated list from {list(MASKS)}, got {masks!r}.")
    return kinds


def inpainting_task(model, params, dataset, hp, *, seed: int, out_dir: str, masks: str = "centre,random",
                    sizes: int | tuple[int, ...] = (8, 14), fill: float = 0.0, max_examples: int = 0,
                    batch_size: int = 1000) -> dict[str, Any]:
    """Masked-region PSNR of the reconstruction against mean filling and the unfilled input.

    Args:
      model, params, dataset, hp: the trained run (any kind; images [H, W, C]).
      seed: the run's seed (positions of the random masks).
      out_dir: where inpainting.png goes (masked input, reconstruction, original).
      masks: comma-separated mask kinds from MASKS.
      sizes: side(s) of the square hole in pixels.
      fill: the value written into the hole of the input.
      max_examples: use only the first N test images (0: all).
    Returns:
      "test/<mask><size>/{psnr,mean_fill_psnr,input_psnr}" for every mask and size, "rows", "figures".
    """
    del hp
    kinds = _parse_masks(masks)
    sizes = (sizes,) if isinstance(sizes, int) else tuple(int(s) for s in sizes)
    if len(model.input_shape) != 3:
        raise ConfigError(f"inpainting needs image inputs [H, W, C]; this run's inputs are {model.input_shape}.")
    h, w, _ = model.input_shape
    if not sizes:
        raise ConfigError("sizes is empty; give at least one mask size.")
    for size in sizes:  # every size is checked before any work
        if size == 0:
            raise ConfigError("a mask of size 0 covers no pixels, so PSNR on the masked region is undefined; "
                              "choose sizes of at least 1 pixel.")
        block_masks("centre", size, 1, (h, w))
    x = dataset.test.x[:max_examples] if max_examples else dataset.test.x
    mean_image = dataset.train.x.mean(axis=0, keepdims=True)
    key = jax.random.key(seed)
    results: dict[str, Any] = {}
    rows, shown = [], None
    for i, kind in enumerate(kinds):
        for j, size in enumerate(sizes):
            mask = block_masks(kind, size, len(x), (h, w), key=jax.random.fold_in(key, 100 * i + j))
            x_in = np.where(mask, np.float32(fill), x)
            recon = fill_holes(model, params, x_in, mask, batch_size=batch_size)
            mean_fill = np.where(mask, mean_image, x)
            row = {"mask": kind, "size": size, "psnr": masked_psnr(recon, x, mask),
                   "mean_fill_psnr": masked_psnr(mean_fill, x, mask), "input_psnr": masked_psnr(x_in, x, mask)}
            rows.append(row)
            for name in ("psnr", "mean_fill_psnr", "input_psnr"):
                results[f"test/{kind}{size}/{name}"] = row[name]
            if shown is None or (kind == "centre" and shown[0] != "centre"):
                shown = (kind, size, x_in[:10], recon[:10], mean_fill[:10], x[:10])
    results["rows"] = rows
    from aejax.viz.figures import image_rows

    os.makedirs(out_dir, exist_ok=True)
    kind, size, *images = shown
    results["figures"] = [image_rows(images, ["masked", "model", "mean fill", "original"],
                                     os.path.join(out_dir, "inpainting.png"),
                                     title=f"{kind} {size}x{size} mask")]
    return results
