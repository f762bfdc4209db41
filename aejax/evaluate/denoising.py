"""Denoising quality: PSNR and SSIM of denoised against clean test images.

Scores the model at its training corruption and level, and over a grid of levels for every
corruption in `aejax.data.corruptions.CORRUPTIONS`, next to the same scores for the
corrupted input itself. Works for any kind with `reconstruct` (a plain autoencoder is a
weak denoiser, which is the comparison). Writes figures/denoising.png (clean, corrupted,
denoised rows) and figures/denoising_grid.png (PSNR against level).

References: Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality assessment: from error
visibility to structural similarity" (SSIM); Vincent et al. 2008 (denoising autoencoders).
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from aejax.data import corruptions
from aejax.errors import ConfigError
from aejax.models.protocols import Corrupting

DEFAULT_LEVELS: dict[str, tuple[float, ...]] = {
    "gaussian": (0.1, 0.2, 0.3, 0.5),
    "masking": (0.1, 0.25, 0.5, 0.75),
    "salt_and_pepper": (0.05, 0.1, 0.2, 0.4),
}


def psnr(x_hat, x, *, data_range: float = 1.0):
    """Peak signal-to-noise ratio of each image in dB -> [N]: 10 log10(range^2 / MSE_i).

    An exact match (MSE 0) gives +inf.
    """
    mse = jnp.mean(jnp.square(jnp.asarray(x_hat) - jnp.asarray(x)).reshape(x.shape[0], -1), axis=-1)
    return 10.0 * jnp.log10(data_range ** 2 / mse)


def _gaussian_window(size: int, sigma: float):
    r = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2.0
    g = jnp.exp(-0.5 * jnp.square(r / sigma))
    return g / jnp.sum(g)


def _filter_valid(img_NxHxWxC, g):
    """Separable 'valid' filtering of every channel with the 1-D window g."""
    n, h, w, c = img_NxHxWxC.shape
    x = jnp.moveaxis(img_NxHxWxC, -1, 1).reshape(n * c, 1, h, w)
    size = g.shape[0]
    dn = ("NCHW", "OIHW", "NCHW")
    x = jax.lax.conv_general_dilated(x, g.reshape(1, 1, size, 1).astype(x.dtype), (1, 1), "VALID",
                                     dimension_numbers=dn)
    x = jax.lax.conv_general_dilated(x, g.reshape(1, 1, 1, size).astype(x.dtype), (1, 1), "VALID",
                                     dimension_numbers=dn)
    return x.reshape(n, c, h - size + 1, w - size + 1)


def ssim(x_hat, x, *, data_range: float = 1.0, window: int = 11, sigma: float = 1.5, k1: float = 0.01,
         k2: float = 0.03):
    """Mean structural similarity of each image pair -> [N] (Wang et al. 2004, Gaussian window).

    Images are [N, H, W, C]; statistics use a `window` x `window` Gaussian window (sigma 1.5)
    over valid positions, averaged over positions and channels. For images smaller than the
    window, the window shrinks to the largest odd size that fits.
    """
    x_hat, x = jnp.asarray(x_hat, jnp.float32), jnp.asarray(x, jnp.float32)
    if x.ndim != 4 or x_hat.shape != x.shape:
        raise ConfigError(f"ssim needs two image batches of the same shape [N, H, W, C], got {x_hat.shape} "
                          f"and {x.shape}.")
    size = min(window, x.shape[1], x.shape[2])
    size -= 1 - size % 2
    g = _gaussian_window(size, sigma * size / window)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_a, mu_b = _filter_valid(x_hat, g), _filter_valid(x, g)
    var_a = _filter_valid(x_hat * x_hat, g) - mu_a ** 2
    var_b = _filter_valid(x * x, g) - mu_b ** 2
    cov = _filter_valid(x_hat * x, g) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return jnp.mean(s.reshape(s.shape[0], -1), axis=-1)


def denoising_scores(model, params, x, *, corruption: str, level: float, key, batch_size: int = 1000,
                     y=None) -> dict[str, float]:
    """PSNR and SSIM of model.reconstruct(corrupt(x)) and of corrupt(x) itself, against the clean x.

    "psnr" is 10 log10(1 / MSE) with the MSE over every pixel of `x` (finite even when some
    corrupted images equal their clean ones); "ssim" is the mean of per-image SSIM.
    """
    corruptions.check_level(corruption, level)
    corrupt = corruptions.get_corruption(corruption)

    @jax.jit
    def sums(p, xb, yb, k, level):
        x_tilde = corrupt(xb, level, key=k)
        x_hat = model.reconstruct(p, {"x": x_tilde, "y": yb})
        return (jnp.sum(jnp.square(x_hat - xb)), jnp.sum(ssim(x_hat, xb)),
                jnp.sum(jnp.square(x_tilde - xb)), jnp.sum(ssim(x_tilde, xb)))

    y = np.zeros(len(x), np.int32) if y is None else y
    totals = np.zeros(4)
    for i, start in enumerate(range(0, len(x), batch_size)):
        out = sums(params, x[start:start + batch_size], y[start:start + batch_size], jax.random.fold_in(key, i),
                   jnp.float32(level))
        totals += np.asarray(jax.device_get(out), np.float64)
    mse, mse_in = totals[0] / np.size(x), totals[2] / np.size(x)
    return {"psnr": float(10 * np.log10(1.0 / mse)), "ssim": totals[1] / len(x),
            "input_psnr": float(10 * np.log10(1.0 / mse_in)) if mse_in > 0 else float("inf"),
            "input_ssim": totals[3] / len(x), "mse": mse}


def denoising_task(model, params, dataset, hp, *, seed: int, out_dir: str, corruption: str | None = None,
                   level: float | None = None, levels: Mapping[str, Sequence[float]] | None = None,
                   batch_size: int = 1000, max_examples: int = 0) -> dict[str, Any]:
    """Scores denoising on the test split at the training level and over a grid of levels.

    Args:
      model, params, dataset, hp: the trained run (any kind with `reconstruct`).
      seed: the run's seed; seeds the corruption noise.
      out_dir: where denoising.png and denoising_grid.png go.
      corruption, level: the headline setting; default the run's own (model.corruption,
        hp.noise_level) for a denoising run, else ("gaussian", 0.2).
      levels: corruption name -> levels for the grid (default `DEFAULT_LEVELS`).
      batch_size: evaluation batch size; max_examples: use only the first N test images (0: all).
    Returns:
      Flat keys "test/psnr", "test/ssim", "test/input_psnr", "test/input_ssim" at the headline
      setting, the same under "test/<corruption>@<level>/...", and "grid": a list of rows.
    """
    corruption = corruption or (model.corruption if isinstance(model, Corrupting) else "gaussian")
    if level is None:
        level = float(hp["noise_level"]) if "noise_level" in hp else 0.2
    grid_levels = {k: tuple(v) for k, v in (levels or DEFAULT_LEVELS).items()}
    corruptions.check_level(corruption, level)
    for name, values in grid_levels.items():
        for value in values:
            corruptions.check_level(name, value)
    x, y = dataset.test.x, dataset.test.y
    if max_examples:
        x, y = x[:max_examples], y[:max_examples]
    key = jax.random.key(seed)

    def score(name, value, i):
        return denoising_scores(model, params, x, corruption=name, level=value,
                                key=jax.random.fold_in(key, i), batch_size=batch_size, y=y)

    head = score(corruption, float(level), 0)
    results: dict[str, Any] = {f"test/{k}": float(v) for k, v in head.items()}
    results["corruption"], results["level"] = corruption, float(level)
    grid = []
    for j, (name, values) in enumerate(grid_levels.items()):
        for i, value in enumerate(values):
            same = name == corruption and math.isclose(value, level, rel_tol=1e-6)
            s = head if same else score(name, float(value), 1 + 100 * j + i)
            grid.append({"corruption": name, "level": float(value), **{k: float(v) for k, v in s.items()}})
            results.update({f"test/{name}@{value:g}/{k}": float(v) for k, v in s.items()})
    results["grid"] = grid
    results["figures"] = _figures(model, params, out_dir, x[:10], y[:10], corruption, float(level), grid, key)
    return results


def _figures(model, params, out, x, y, corruption, level, grid, key) -> list[str]:
    import matplotlib.pyplot as plt

    from aejax.viz.figures import image_rows

    os.makedirs(out, exist_ok=True)
    x_tilde = np.asarray(corruptions.get_corruption(corruption)(jnp.asarray(x), level, key=jax.random.fold_in(key, 7)))
    x_hat = np.asarray(model.reconstruct(params, {"x": x_tilde, "y": y}))
    paths = [image_rows([x, x_tilde, x_hat], ["clean", "corrupted", "denoised"], os.path.join(out, "denoising.png"),
                        title=f"{corruption} at level {level:g}")]
    names = list(dict.fromkeys(r["corruption"] for r in grid))
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        rows = [r for r in grid if r["corruption"] == name]
        ax.plot([r["level"] for r in rows], [r["psnr"] for r in rows], "o-", label="denoised")
        ax.plot([r["level"] for r in rows], [r["input_psnr"] for r in rows], "s--", label="corrupted input")
        ax.set_title(name)
        ax.set_xlabel("level")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = os.path.join(out, "denoising_grid.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return paths + [path]
