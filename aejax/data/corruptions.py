"""Input corruptions for denoising: pure functions `corrupt(x, level, *, key) -> x_tilde`.

Each runs on the device inside the jitted step (level may be a traced array from `hp`);
inputs are images in [0, 1] and outputs stay in [0, 1].

  "gaussian"         x + level * N(0, 1), clipped to [0, 1]; level is the standard deviation.
  "masking"          each pixel set to 0 with probability level (the drop fraction).
  "salt_and_pepper"  each pixel, with probability level, set to 0 or 1 with equal odds.
  "block"            one square hole per image set to 0: side drawn uniformly from 1 to
                     round(level * min(H, W)) pixels, at a uniformly drawn position (images only).

References: Vincent, Larochelle, Bengio & Manzagol 2008, "Extracting and composing robust
features with denoising autoencoders"; Vincent et al. 2010, "Stacked denoising autoencoders", 4.1;
Pathak et al. 2016, "Context encoders: feature learning by inpainting" (block holes).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from aejax.errors import ConfigError


def gaussian(x, level, *, key):
    """Additive Gaussian noise with standard deviation `level`, clipped to [0, 1].

    References: Vincent et al. 2010, "Stacked denoising autoencoders", section 4.1.
    """
    noise = jax.random.normal(key, x.shape, x.dtype)
    return jnp.clip(x + jnp.asarray(level, x.dtype) * noise, 0.0, 1.0)


def masking(x, level, *, key):
    """Masking noise: each entry set to 0 with probability `level`.

    References: Vincent et al. 2008, "Extracting and composing robust features with denoising autoencoders".
    """
    drop = jax.random.uniform(key, x.shape) < level
    return jnp.where(drop, jnp.zeros_like(x), x)


def salt_and_pepper(x, level, *, key):
    """Salt-and-pepper noise: each entry, with probability `level`, set to 0 or 1 (equal odds).

    References: Vincent et al. 2010, "Stacked denoising autoencoders", section 4.1.
    """
    k_hit, k_salt = jax.random.split(key)
    hit = jax.random.uniform(k_hit, x.shape) < level
    salt = jax.random.bernoulli(k_salt, 0.5, x.shape)
    return jnp.where(hit, salt.astype(x.dtype), x)


def block(x_BxHxWxC, level, *, key):
    """Block masking: one square hole per image, set to 0.

    The side is drawn uniformly from 1 to max(1, round(level * min(H, W))) pixels and the top-left
    corner uniformly among the positions that keep the square inside the image; level 0 leaves the
    image as is. A model trained on these holes learns to fill solid regions from their context,
    which pixel-wise masking does not teach (each dropped pixel there has visible neighbours).

    References: Pathak et al. 2016, "Context encoders: feature learning by inpainting" (random blocks).
    """
    if x_BxHxWxC.ndim != 4:
        raise ConfigError(f"block masking needs images shaped [B, H, W, C], got shape {x_BxHxWxC.shape}; "
                          "use 'masking' for other data.")
    b, h, w, _ = x_BxHxWxC.shape
    k_side, k_top, k_left = jax.random.split(key, 3)
    max_side = jnp.maximum(1, jnp.round(jnp.asarray(level, jnp.float32) * min(h, w)).astype(jnp.int32))
    side_B = jax.random.randint(k_side, (b,), 1, max_side + 1)
    top_B = jnp.floor(jax.random.uniform(k_top, (b,)) * (h - side_B + 1)).astype(jnp.int32)
    left_B = jnp.floor(jax.random.uniform(k_left, (b,)) * (w - side_B + 1)).astype(jnp.int32)
    rows_H, cols_W = jnp.arange(h), jnp.arange(w)
    in_rows_BxH = (rows_H >= top_B[:, None]) & (rows_H < (top_B + side_B)[:, None])
    in_cols_BxW = (cols_W >= left_B[:, None]) & (cols_W < (left_B + side_B)[:, None])
    hole_BxHxW = in_rows_BxH[:, :, None] & in_cols_BxW[:, None, :] & (jnp.asarray(level) > 0)
    return jnp.where(hole_BxHxW[..., None], jnp.zeros_like(x_BxHxWxC), x_BxHxWxC)


CORRUPTIONS: dict[str, Callable] = {
    "gaussian": gaussian,
    "masking": masking,
    "salt_and_pepper": salt_and_pepper,
    "block": block,
}
# What `level` means for each corruption, and the range it must lie in.
LEVEL_NAMES = {"gaussian": "sigma", "masking": "drop fraction", "salt_and_pepper": "fraction",
               "block": "largest hole side as a fraction of the image side"}


def check_corruption(name: str) -> None:
    if name not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption {name!r}; choose one of {sorted(CORRUPTIONS)}.")


def check_level(name: str, level) -> None:
    """Raises ConfigError for a negative sigma or a fraction outside [0, 1] (before any compile)."""
    check_corruption(name)
    value = np.asarray(level, dtype=np.float64)
    if not np.all(np.isfinite(value)):
        raise ConfigError(f"the {name} noise level must be finite, got {value}.")
    if name == "gaussian":
        if np.any(value < 0):
            raise ConfigError(f"the gaussian noise sigma must be >= 0, got {value}; set a non-negative noise level.")
    elif np.any(value < 0) or np.any(value > 1):
        raise ConfigError(f"the {name} {LEVEL_NAMES[name]} must lie in [0, 1], got {value}; "
                          "set a noise level between 0 and 1.")


def get_corruption(name: str) -> Callable:
    """Returns the corruption function called `name`."""
    check_corruption(name)
    return CORRUPTIONS[name]


def corrupt(name: str, x, level, *, key):
    """Applies the corruption `name` at `level` (checked when concrete) to `x` with `key`."""
    if not isinstance(level, jax.core.Tracer):
        check_level(name, level)
    return get_corruption(name)(x, level, key=key)
