"""Input corruptions for denoising: pure functions `corrupt(x, level, *, key) -> x_tilde`.

Each runs on the device inside the jitted step (level may be a traced array from `hp`);
inputs are images in [0, 1] and outputs stay in [0, 1] (except the SNR noises, made for signals).

  "gaussian"         x + level * N(0, 1), clipped to [0, 1]; level is the standard deviation.
  "masking"          each pixel set to 0 with probability level (the drop fraction).
  "salt_and_pepper"  each pixel, with probability level, set to 0 or 1 with equal odds.
  "block"            one square hole per image set to 0: side drawn uniformly from 1 to
                     round(level * min(H, W)) pixels, at a uniformly drawn position (images only).
  "grayscale"        RGB images blended towards their ITU-R BT.601 luma, replicated to the 3
                     channels: level 1 is the gray copy, 0 the image as is (deterministic; colorization).
  "white_snr", "pink_snr", "brown_snr"
                     additive Gaussian noise with a flat, 1/f or 1/f^2 power spectrum, scaled so that
                     each example's signal-to-noise ratio is `level` dB in expectation, the signal
                     power taken about each channel's mean (not clipped). Any rank from [B, D] up:
                     pink and brown are shaped along axis 1 (time for sequences [B, T, C] or [B, T]).

References: Vincent, Larochelle, Bengio & Manzagol 2008, "Extracting and composing robust
features with denoising autoencoders"; Vincent et al. 2010, "Stacked denoising autoencoders", 4.1;
Pathak et al. 2016, "Context encoders: feature learning by inpainting" (block holes);
ITU-R Recommendation BT.601 (luma weights); Kasdin 1995, "Discrete simulation of colored noise and
stochastic processes and 1/f^alpha power law noise generation" (spectral shaping).
"""

from __future__ import annotations

from collections.abc import Callable

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


# ITU-R BT.601 luma weights of R, G, B (the Y of JPEG's YCbCr).
BT601_LUMA = (0.299, 0.587, 0.114)


def grayscale(x_BxHxWx3, level, *, key):
    """Colour removal: x + level * (luma(x) - x), the luma Y = 0.299 R + 0.587 G + 0.114 B on all 3 channels.

    Level 1 gives the gray copy (what a colorization model sees), 0 the image as is; levels between
    blend. The key is unused: the corruption is deterministic.

    References: ITU-R Recommendation BT.601 (luma weights).
    """
    del key
    if x_BxHxWx3.ndim != 4 or x_BxHxWx3.shape[-1] != 3:
        raise ConfigError(f"grayscale needs RGB images shaped [B, H, W, 3], got shape {x_BxHxWx3.shape}; "
                          "use a colour dataset such as data.name=colour_patches.")
    luma_BxHxWx1 = x_BxHxWx3 @ jnp.asarray(BT601_LUMA, x_BxHxWx3.dtype)[:, None]
    return x_BxHxWx3 + jnp.asarray(level, x_BxHxWx3.dtype) * (luma_BxHxWx1 - x_BxHxWx3)


# Power-spectrum exponent alpha of each noise colour: power proportional to 1 / f^alpha.
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def coloured_noise(key, shape_BxT: tuple[int, ...], alpha: float, dtype=jnp.float32):
    """Gaussian noise of `shape_BxT` ([B, T, ...]) with power spectrum proportional to 1 / f^alpha along
    axis 1 (T), independent along the other axes, unit variance in expectation.

    White Gaussian noise is shaped in the frequency domain (amplitude f^(-alpha/2), DC bin removed)
    and divided by the root mean square of that gain over the two-sided spectrum, so every sample
    has variance 1 in expectation. Alpha 0 returns the white noise itself.

    References: Kasdin 1995, "Discrete simulation of colored noise and stochastic processes and
    1/f^alpha power law noise generation", Proc. IEEE 83(5).
    """
    white = jax.random.normal(key, shape_BxT, dtype)
    if alpha == 0:
        return white
    if len(shape_BxT) < 2 or shape_BxT[1] < 2:
        raise ConfigError(f"noise with a 1/f^{alpha:g} spectrum needs at least 2 steps along axis 1 (time), got "
                          f"shape {tuple(shape_BxT)}; use white noise.")
    t = shape_BxT[1]
    freqs_F = jnp.fft.rfftfreq(t)
    gain_F = jnp.where(freqs_F > 0, jnp.maximum(freqs_F, 1e-12) ** (-alpha / 2), 0.0)
    # Each rfft bin but DC and (for even T) Nyquist stands for two bins of the two-sided spectrum.
    weights_F = jnp.full_like(freqs_F, 2.0).at[0].set(1.0)
    if t % 2 == 0:
        weights_F = weights_F.at[-1].set(1.0)
    gain_F = gain_F / jnp.sqrt(jnp.sum(weights_F * gain_F ** 2) / t)
    spectrum = jnp.fft.rfft(white, axis=1) * gain_F.reshape((1, -1) + (1,) * (len(shape_BxT) - 2))
    return jnp.fft.irfft(spectrum, n=t, axis=1).astype(dtype)


def signal_power(x_BxT):
    """Each example's signal power -> [B]: the mean square about each channel's mean.

    The channel axis is the last one of a rank-3-or-more array ([B, T, C], [B, H, W, C]: the mean over
    T, or H and W, per channel); a rank-2 [B, D] example is one channel (its mean over D). A constant
    offset, such as the 0.5 centre of waveforms stored in [0, 1], carries no signal; a constant (silent)
    example has power exactly 0.
    """
    if x_BxT.ndim < 2:
        raise ConfigError(f"SNR noise needs examples with at least one axis, [B, D] or more; got shape {x_BxT.shape}.")
    axes = tuple(range(1, max(x_BxT.ndim - 1, 2)))
    # Centred about the first value first, so a constant channel is exactly 0 (no rounding left in its mean).
    first = x_BxT[(slice(None),) + (slice(0, 1),) * len(axes)]
    shifted = x_BxT - first
    centred = shifted - jnp.mean(shifted, axis=axes, keepdims=True)
    return jnp.mean(jnp.square(centred).reshape(x_BxT.shape[0], -1), axis=1)


def add_noise_at_snr(x, snr_db, *, key, colour: str = "white"):
    """x plus Gaussian noise of the given colour at a signal-to-noise ratio of `snr_db` dB in expectation.

    Each example's noise variance is its signal power (`signal_power`: about each channel's mean)
    times 10^(-snr_db / 10), so E[noise power] / signal power = 10^(snr_db / 10). A constant example
    stays as it is. Not clipped. Any rank from [B, D] up; pink and brown noise are shaped along
    axis 1 (the time axis of sequences [B, T, C] or [B, T]).

    References: Kasdin 1995 (coloured noise); Loizou 2013, "Speech enhancement: theory and
    practice", ch. 12 (noise added to clean speech at a set SNR).
    """
    alpha = NOISE_COLOURS[colour]
    power_B = signal_power(x)
    noise_power_B = power_B * 10.0 ** (-jnp.asarray(snr_db, x.dtype) / 10.0)
    scale = jnp.sqrt(noise_power_B).reshape((-1,) + (1,) * (x.ndim - 1))
    return x + scale * coloured_noise(key, x.shape, alpha, x.dtype)


def white_snr(x, level, *, key):
    """White Gaussian noise at `level` dB SNR per example (see `add_noise_at_snr`)."""
    return add_noise_at_snr(x, level, key=key, colour="white")


def pink_snr(x_BxT, level, *, key):
    """Pink (1/f) Gaussian noise along axis 1 (T) at `level` dB SNR per example (see `add_noise_at_snr`)."""
    return add_noise_at_snr(x_BxT, level, key=key, colour="pink")


def brown_snr(x_BxT, level, *, key):
    """Brown (1/f^2) Gaussian noise along axis 1 (T) at `level` dB SNR per example (see `add_noise_at_snr`)."""
    return add_noise_at_snr(x_BxT, level, key=key, colour="brown")


SNR_CORRUPTIONS = ("white_snr", "pink_snr", "brown_snr")

CORRUPTIONS: dict[str, Callable] = {
    "gaussian": gaussian,
    "masking": masking,
    "salt_and_pepper": salt_and_pepper,
    "block": block,
    "grayscale": grayscale,
    "white_snr": white_snr,
    "pink_snr": pink_snr,
    "brown_snr": brown_snr,
}
# What `level` means for each corruption, and the range it must lie in.
LEVEL_NAMES = {"gaussian": "sigma", "masking": "drop fraction", "salt_and_pepper": "fraction",
               "block": "largest hole side as a fraction of the image side",
               "grayscale": "blend towards gray (1: the gray copy)",
               **{name: "SNR in dB" for name in SNR_CORRUPTIONS}}


def check_corruption(name: str) -> None:
    if name not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption {name!r}; choose one of {sorted(CORRUPTIONS)}.")


def check_level(name: str, level) -> None:
    """Raises ConfigError for a negative sigma or a fraction outside [0, 1] (before any compile)."""
    check_corruption(name)
    value = np.asarray(level, dtype=np.float64)
    if not np.all(np.isfinite(value)):
        raise ConfigError(f"the {name} noise level must be finite, got {value}.")
    if name in SNR_CORRUPTIONS:
        return  # any finite SNR in dB, negative ones included
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
