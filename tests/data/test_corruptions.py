"""Corruption statistics, purity (same key, same output), traced levels, and bad levels."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.data import CORRUPTIONS, check_level, corrupt, get_corruption
from aejax.errors import ConfigError

N = (400, 16, 16, 1)


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


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_pure_in_range_and_level_zero_is_identity(name):
    x = jax.random.uniform(jax.random.key(0), (8, 5, 5, 1))
    a = corrupt(name, x, 0.3, key=jax.random.key(1))
    b = corrupt(name, x, 0.3, key=jax.random.key(1))
    c = corrupt(name, x, 0.3, key=jax.random.key(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    np.testing.assert_array_equal(corrupt(name, x, 0.0, key=jax.random.key(1)), x)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_level_may_be_a_traced_array(name):
    x = jnp.full((4, 6, 6, 1), 0.5)
    f = jax.jit(lambda level: get_corruption(name)(x, level, key=jax.random.key(0)))
    levels = jnp.array([0.0, 0.5])
    out = jax.vmap(f)(levels)
    np.testing.assert_array_equal(out[0], x)
    assert not np.array_equal(out[1], x)


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
