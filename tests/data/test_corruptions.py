"""Corruption statistics, purity (same key, same output), traced levels, and bad levels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.data import CORRUPTIONS, check_level, corrupt, get_corruption
from aejax.data.corruptions import SNR_CORRUPTIONS, coloured_noise
from aejax.errors import ConfigError

N = (400, 16, 16, 1)
# Random corruptions of images in [0, 1] whose level 0 is the identity (grayscale is deterministic and
# RGB-only; the SNR noises take a level in dB, are not clipped, and level 0 dB is strong noise).
IMAGE_NOISE = sorted(set(CORRUPTIONS) - {"grayscale", *SNR_CORRUPTIONS})


def test_registry_names():
    assert {"gaussian", "masking", "salt_and_pepper", "block"} <= set(CORRUPTIONS)


def test_gaussian_noise_statistics_and_clipping():
    x = jnp.full(N, 0.5)
    out = np.asarray(get_corruption("gaussian")(x, 0.1, key=jax.random.key(0)))
    noise = out - 0.5
    assert abs(noise.mean()) < 3 * 0.1 / np.sqrt(noise.size)
    assert abs(noise.std() - 0.1) < 0.002
    clipped = np.asarray(get_corruption("gaussian")(jnp.zeros(N), 0.2, key=jax.random.key(1)))
    assert clipped.min() == 0.0 and clipped.max() <= 1.0
    # Half of the noise at 0 is clipped away: the mean is sigma / sqrt(2 pi).
    assert abs(clipped.mean() - 0.2 / np.sqrt(2 * np.pi)) < 0.002


def test_masking_drops_the_requested_fraction():
    x = jnp.ones(N)
    out = np.asarray(get_corruption("masking")(x, 0.3, key=jax.random.key(0)))
    frac = np.mean(out == 0)
    assert abs(frac - 0.3) < 4 * np.sqrt(0.3 * 0.7 / out.size)
    assert set(np.unique(out)) <= {0.0, 1.0}


def test_salt_and_pepper_statistics():
    x = jnp.full(N, 0.5)
    out = np.asarray(get_corruption("salt_and_pepper")(x, 0.2, key=jax.random.key(0)))
    tol = 4 * np.sqrt(0.1 * 0.9 / out.size)
    assert abs(np.mean(out == 0.0) - 0.1) < tol
    assert abs(np.mean(out == 1.0) - 0.1) < tol
    assert abs(np.mean(out == 0.5) - 0.8) < 2 * tol


def test_block_holes_are_squares_with_the_exact_coverage_probability():
    """Each image loses one whole square; each pixel's hit rate matches the closed form (float64)."""
    h = w = 10
    level = 0.4  # sides 1..4
    n = 4000
    out = np.asarray(get_corruption("block")(jnp.ones((n, h, w, 1)), level, key=jax.random.key(3)))[..., 0]
    holes = out == 0
    sides = holes.any(2).sum(1)
    assert np.all(sides == holes.any(1).sum(1)) and np.all(holes.sum((1, 2)) == sides ** 2)  # full squares
    assert set(np.unique(sides)) == {1, 2, 3, 4}
    # P(pixel i, j in hole) = sum_s 1/4 * P(rows cover i | s) * P(cols cover j | s)
    def cover(size, length):
        tops = np.arange(length - size + 1)
        return np.array([np.mean((tops <= i) & (i < tops + size)) for i in range(length)], np.float64)
    expected = sum(np.outer(cover(s, h), cover(s, w)) for s in range(1, 5)) / 4
    rate = holes.mean(0)
    se = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(rate - expected) < 4.5 * se + 1e-12)
    assert rate[h // 2, w // 2] > 2 * rate[0, 0]  # the centre is hit more often than a corner


def test_block_masking_refuses_non_image_data():
    with pytest.raises(ConfigError, match=r"block masking needs images shaped \[B, H, W, C\]"):
        get_corruption("block")(jnp.ones((4, 6)), 0.5, key=jax.random.key(0))


@pytest.mark.parametrize("name", IMAGE_NOISE)
def test_pure_in_range_and_level_zero_is_identity(name):
    x = jax.random.uniform(jax.random.key(0), (8, 5, 5, 1))
    a = corrupt(name, x, 0.3, key=jax.random.key(1))
    b = corrupt(name, x, 0.3, key=jax.random.key(1))
    c = corrupt(name, x, 0.3, key=jax.random.key(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    np.testing.assert_array_equal(corrupt(name, x, 0.0, key=jax.random.key(1)), x)


@pytest.mark.parametrize("name", IMAGE_NOISE)
def test_level_may_be_a_traced_array(name):
    x = jnp.full((4, 6, 6, 1), 0.5)
    f = jax.jit(lambda level: get_corruption(name)(x, level, key=jax.random.key(0)))
    levels = jnp.array([0.0, 0.5])
    out = jax.vmap(f)(levels)
    np.testing.assert_array_equal(out[0], x)
    assert not np.array_equal(out[1], x)


def test_grayscale_is_the_bt601_luma_in_float64_and_blends_with_level():
    x = np.random.default_rng(0).uniform(size=(6, 5, 4, 3)).astype(np.float32)
    x64 = x.astype(np.float64)
    luma = 0.299 * x64[..., 0] + 0.587 * x64[..., 1] + 0.114 * x64[..., 2]  # ITU-R BT.601
    gray = np.asarray(corrupt("grayscale", jnp.asarray(x), 1.0, key=jax.random.key(0)))
    np.testing.assert_allclose(gray, np.repeat(luma[..., None], 3, axis=-1), atol=1e-6)
    half = np.asarray(corrupt("grayscale", jnp.asarray(x), 0.25, key=jax.random.key(5)))
    np.testing.assert_allclose(half, 0.75 * x64 + 0.25 * luma[..., None], atol=1e-6)
    np.testing.assert_array_equal(corrupt("grayscale", jnp.asarray(x), 0.0, key=jax.random.key(1)), x)
    traced = jax.jit(jax.vmap(lambda level: get_corruption("grayscale")(jnp.asarray(x), level, key=None)))
    np.testing.assert_allclose(traced(jnp.array([1.0]))[0], gray, atol=1e-7)


def test_grayscale_refuses_images_that_are_not_rgb():
    with pytest.raises(ConfigError, match=r"grayscale needs RGB images shaped \[B, H, W, 3\], got shape \(2, 4, 4, 1\)"):
        corrupt("grayscale", jnp.ones((2, 4, 4, 1)), 1.0, key=jax.random.key(0))


def _offset_tones(n=3000, t=128):
    """Sines of random amplitude, frequency and phase around a 0.5 offset: signal power a^2 / 2 each."""
    rng = np.random.default_rng(1)
    amp, freq, phase = rng.uniform(0.05, 0.4, n), rng.integers(3, 40, n), rng.uniform(0, 2 * np.pi, n)
    time = np.arange(t)
    tones = amp[:, None] * np.sin(2 * np.pi * freq[:, None] * time / t + phase[:, None])
    return (0.5 + tones)[..., None].astype(np.float32), amp ** 2 / 2


@pytest.mark.parametrize("name", SNR_CORRUPTIONS)
@pytest.mark.parametrize("snr_db", [-5.0, 10.0])
def test_snr_noise_hits_the_requested_snr_in_expectation(name, snr_db):
    """Monte Carlo over 3000 frames: mean noise-to-signal power ratio within 4 standard errors of 10^(-SNR/10)."""
    x, signal_power = _offset_tones()
    noise = np.asarray(corrupt(name, jnp.asarray(x), snr_db, key=jax.random.key(2)), np.float64) - x
    ratio = np.mean(noise[..., 0] ** 2, axis=1) / signal_power
    target = 10 ** (-snr_db / 10)
    assert abs(ratio.mean() - target) < 4 * ratio.std() / np.sqrt(len(ratio))
    assert abs(ratio.mean() / target - 1) < 0.1  # and the bound is tight enough to mean something


@pytest.mark.parametrize(("colour", "alpha"), [("white", 0.0), ("pink", 1.0), ("brown", 2.0)])
def test_noise_colour_has_the_power_law_slope(colour, alpha):
    """The mean periodogram of the noise falls as 1/f^alpha: its log-log slope is -alpha."""
    noise = np.asarray(coloured_noise(jax.random.key(3), (2000, 128, 1), alpha), np.float64)[..., 0]
    assert abs(noise.var() - 1.0) < 0.03  # unit variance in expectation
    power = np.mean(np.abs(np.fft.rfft(noise, axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(128)
    band = (freqs > 0) & (freqs < 0.5)
    slope = np.polyfit(np.log(freqs[band]), np.log(power[band]), 1)[0]
    assert abs(slope + alpha) < 0.1


def test_snr_level_may_be_traced_and_negative():
    x, _ = _offset_tones(n=8)
    f = jax.jit(jax.vmap(lambda level: get_corruption("pink_snr")(jnp.asarray(x), level, key=jax.random.key(0))))
    out = np.asarray(f(jnp.array([20.0, 0.0, -10.0]))) - x
    powers = np.mean(out ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(powers[1] / powers[0], 100.0, rtol=1e-4)  # the same draw, scaled by 20 dB
    np.testing.assert_allclose(powers[2] / powers[1], 10.0, rtol=1e-4)
    check_level("white_snr", -10.0)  # a negative SNR is a valid level
    with pytest.raises(ConfigError, match="white_snr noise level must be finite"):
        check_level("white_snr", float("nan"))


def _random_signals(shape, seed=4):
    """Examples of any rank around a per-example, per-channel offset, with varied signal powers."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.05, 0.5, (shape[0],) + (1,) * (len(shape) - 1))
    offset = rng.uniform(0.0, 1.0, (shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],))
    return (offset + scale * rng.normal(size=shape)).astype(np.float32)


def _signal_power_numpy(x):
    """Mean square about each channel's mean (the last axis is the channel from rank 3; rank 2 is one channel)."""
    axes = tuple(range(1, max(x.ndim - 1, 2)))
    x = x.astype(np.float64)
    return np.mean(((x - x.mean(axis=axes, keepdims=True)) ** 2).reshape(len(x), -1), axis=1)


@pytest.mark.parametrize("name", SNR_CORRUPTIONS)
@pytest.mark.parametrize("shape", [(3000, 48), (3000, 32, 2), (2000, 12, 6, 2)], ids=["rank2", "rank3", "rank4"])
def test_snr_noise_is_rank_agnostic(name, shape):
    """[B, D], [B, T, C] and [B, H, W, C] alike: Monte Carlo mean noise-to-signal power ratio within 4 standard
    errors of 10^(-SNR/10) (on [B, D] the signal mean used to be taken over no axis: no noise at all)."""
    x = _random_signals(shape)
    snr_db = 3.0
    noise = np.asarray(corrupt(name, jnp.asarray(x), snr_db, key=jax.random.key(7)), np.float64) - x
    ratio = np.mean(noise.reshape(len(x), -1) ** 2, axis=1) / _signal_power_numpy(x)
    target = 10 ** (-snr_db / 10)
    assert abs(ratio.mean() - target) < 4 * ratio.std() / np.sqrt(len(ratio))
    assert abs(ratio.mean() / target - 1) < 0.1


def test_constant_examples_stay_as_they_are_at_any_rank():
    for shape in [(4, 9), (4, 9, 2), (4, 5, 3, 2)]:
        x = jnp.full(shape, 0.3)  # 0.3 has no exact binary value: a rounded mean would leave "signal"
        for name in SNR_CORRUPTIONS:
            np.testing.assert_array_equal(corrupt(name, x, 0.0, key=jax.random.key(0)), x)


def test_snr_noise_needs_an_axis_and_coloured_noise_two_steps():
    with pytest.raises(ConfigError, match=r"at least one axis, \[B, D\]"):
        corrupt("white_snr", jnp.ones((4,)), 0.0, key=jax.random.key(0))
    with pytest.raises(ConfigError, match="at least 2 steps along axis 1"):
        corrupt("pink_snr", jnp.ones((2, 1, 3)), 0.0, key=jax.random.key(0))

def test_negative_sigma_is_an_error():
    with pytest.raises(ConfigError, match="sigma must be >= 0"):
        check_level("gaussian", -0.1)
    with pytest.raises(ConfigError, match="sigma must be >= 0"):
        corrupt("gaussian", jnp.zeros((2, 2)), -0.5, key=jax.random.key(0))


@pytest.mark.parametrize("name", ["masking", "salt_and_pepper"])
@pytest.mark.parametrize("level", [-0.1, 1.2])
def test_fraction_outside_unit_interval_is_an_error(name, level):
    with pytest.raises(ConfigError, match=r"must lie in \[0, 1\]"):
        check_level(name, level)


def test_unknown_corruption_is_an_error():
    with pytest.raises(ConfigError, match="unknown corruption 'blur'"):
        get_corruption("blur")
