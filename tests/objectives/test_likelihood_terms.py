"""Numerical checks of the reconstruction likelihoods the VAE decoders use."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_fails_naming
from scipy import integrate, stats

from aejax.models.vae import continuous_bernoulli_mean
from aejax.objectives import reconstruction as rec


def test_gaussian_nll_matches_scipy_for_fixed_and_per_feature_sigma():
    rng = np.random.default_rng(0)
    x, mean = rng.normal(size=(2, 3, 4, 4, 1)).astype(np.float32)
    ref = -stats.norm.logpdf(x, mean, 0.3).reshape(3, -1).sum(-1)
    assert np.allclose(rec.gaussian_nll(mean, x, jnp.log(0.3)), ref, rtol=1e-5)
    log_sigma = rng.normal(size=(4, 4, 1)).astype(np.float32) * 0.5
    ref = -stats.norm.logpdf(x, mean, np.exp(log_sigma)).reshape(3, -1).sum(-1)
    assert np.allclose(rec.gaussian_nll(mean, x, log_sigma), ref, rtol=1e-5)


def test_bernoulli_nll_matches_numpy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 5)).astype(np.float32) * 3
    x = rng.uniform(size=(2, 5)).astype(np.float32)
    p = 1 / (1 + np.exp(-logits))
    ref = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(-1)
    assert np.allclose(rec.bernoulli_nll(logits, x), ref, rtol=1e-5)


def _cb_log_norm_by_quadrature(logit):
    """log C = -log of the integral over [0, 1] of lambda^v (1 - lambda)^(1 - v), in float64."""
    lam = 1.0 / (1.0 + np.exp(-logit))
    integral, _ = integrate.quad(lambda v: lam ** v * (1 - lam) ** (1 - v), 0.0, 1.0, epsabs=1e-14, epsrel=1e-14)
    return -np.log(integral)


# Logits inside the series region (|l| < 0.25), on both sides of its edge, and far out.
CB_LOGITS = (0.0, 1e-6, -1e-3, 0.02, -0.1, 0.2, 0.245, -0.2499, 0.2501, -0.4, 0.7, 2.0, -6.0, 12.0)


def test_continuous_bernoulli_normaliser_matches_quadrature_in_float64():
    # In float64 the series must be good to 1e-9: dropping its smallest term (31 l^6 / 90720, 7e-8 at
    # l = 0.245) or any larger one fails here.
    with jax.enable_x64(True):
        got = np.asarray(rec.continuous_bernoulli_log_norm(jnp.asarray(CB_LOGITS, jnp.float64)))
    ref = np.array([_cb_log_norm_by_quadrature(l) for l in CB_LOGITS])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)


def test_continuous_bernoulli_normaliser_in_float32_is_accurate_to_rounding():
    got = np.asarray(rec.continuous_bernoulli_log_norm(jnp.asarray(CB_LOGITS, jnp.float32)), np.float64)
    ref = np.array([_cb_log_norm_by_quadrature(l) for l in CB_LOGITS])
    # 1e-6 is 16 float32 ulps at log 2, and below the l^4 term (7 l^4 / 1440 = 1.7e-5 at l = 0.245).
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)


def test_continuous_bernoulli_gradients_are_finite_and_match_finite_differences_at_and_near_zero():
    h = 1e-4
    for logit in CB_LOGITS:
        fd = (_cb_log_norm_by_quadrature(logit + h) - _cb_log_norm_by_quadrature(logit - h)) / (2 * h)
        g = float(jax.grad(rec.continuous_bernoulli_log_norm)(jnp.float32(logit)))
        assert np.isfinite(g) and abs(g - fd) < 2e-6, (logit, g, fd)
        # d/dl of the NLL of x: sigmoid(l) - x - d log C / dl, per feature
        for x in (0.0, 0.3, 1.0):
            g_nll = float(jax.grad(lambda l: rec.continuous_bernoulli_nll(jnp.full((1, 1), l), jnp.full((1, 1), x))[0])(
                jnp.float32(logit)))
            expected = 1.0 / (1.0 + np.exp(-logit)) - x - fd
            assert np.isfinite(g_nll) and abs(g_nll - expected) < 2e-6, (logit, x, g_nll, expected)
    # a decoder whose output layer starts at zero: every logit is exactly 0, the gradient is finite
    logits = jnp.zeros((3, 8, 8, 1))
    x = jax.random.uniform(jax.random.key(0), logits.shape)
    g = jax.grad(lambda l: jnp.mean(rec.continuous_bernoulli_nll(l, x)))(logits)
    np.testing.assert_allclose(np.asarray(g), (0.5 - np.asarray(x)) / 3, atol=1e-7)


def test_continuous_bernoulli_density_integrates_to_one_and_mean_matches():
    for logit in (-4.0, -0.7, 0.01, 2.5):
        density = lambda v: float(
            jnp.exp(-rec.continuous_bernoulli_nll(jnp.full((1, 1), logit), jnp.full((1, 1), v)))[0])
        total, _ = integrate.quad(density, 0.0, 1.0)
        mean, _ = integrate.quad(lambda v: v * density(v), 0.0, 1.0)
        assert np.isclose(total, 1.0, atol=1e-4)
        assert np.isclose(float(continuous_bernoulli_mean(jnp.float32(logit))), mean, atol=1e-4)
    assert np.isfinite(np.asarray(jax.grad(lambda l: continuous_bernoulli_mean(l))(0.0)))


# -- shapes checked at the entry points (chex), and every term with and without jit --------------------

def _a(*shape):
    return jnp.zeros(shape, jnp.float32)


@pytest.mark.parametrize("call, shapes", [
    (lambda: rec.squared_error(_a(4, 64), _a(4, 8, 8, 1)), ["(4, 64)", "(4, 8, 8, 1)", "squared_error"]),
    (lambda: rec.squared_error(_a(4, 8, 8, 1), _a(1, 8, 8, 1)), ["(4, 8, 8, 1)", "(1, 8, 8, 1)"]),
    (lambda: rec.squared_error(_a(64), _a(64)), ["(64,)", "[B, ...]"]),
    (lambda: rec.bernoulli_nll(_a(4, 8, 8, 3), _a(4, 8, 8, 1)), ["(4, 8, 8, 3)", "(4, 8, 8, 1)", "bernoulli_nll"]),
    (lambda: rec.continuous_bernoulli_nll(_a(4, 5), _a(5, 4)), ["(4, 5)", "(5, 4)", "continuous_bernoulli_nll"]),
    (lambda: rec.gaussian_nll(_a(4, 5), _a(4, 6), 0.0), ["(4, 5)", "(4, 6)", "gaussian_nll"]),
    (lambda: rec.gaussian_nll(_a(4, 5), _a(4, 5), _a(3)), ["(3,)", "(4, 5)", "log_sigma"]),
    (lambda: rec.per_feature_mean(_a(4, 1), _a(4, 5)), ["(4, 1)", "(4)", "per_feature_mean"]),
])
def test_wrong_shapes_fail_naming_the_shapes(call, shapes):
    assert_fails_naming(call, shapes)


class JitAndEagerTest(chex.TestCase):
    """Every reconstruction term equals its numpy/scipy formula, jitted and not."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_terms_match_numpy(self):
        rng = np.random.default_rng(2)
        logits = (rng.choice([-1.0, 1.0], size=(3, 4, 4, 1)) * rng.uniform(0.5, 4.0, size=(3, 4, 4, 1))).astype(
            np.float32)  # away from 0: the exact branch of the continuous Bernoulli normaliser
        x = rng.uniform(size=(3, 4, 4, 1)).astype(np.float32)
        log_sigma = (rng.normal(size=(4, 4, 1)) * 0.3).astype(np.float32)
        got = {
            "se": self.variant(rec.squared_error)(logits, x),
            "bernoulli": self.variant(rec.bernoulli_nll)(logits, x),
            "gaussian": self.variant(rec.gaussian_nll)(logits, x, log_sigma),
            "cb": self.variant(rec.continuous_bernoulli_nll)(logits, x),
            "mean": self.variant(rec.per_feature_mean)(jnp.ones(3) * 16, x),
        }
        p = 1 / (1 + np.exp(-logits.astype(np.float64)))
        cb_log_norm = np.log(logits / np.tanh(logits / 2.0))  # no logit is near 0 here
        bern = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1).sum(-1)
        expected = {
            "se": ((logits - x) ** 2).reshape(3, -1).sum(-1),
            "bernoulli": bern,
            "gaussian": -stats.norm.logpdf(x, logits, np.exp(log_sigma)).reshape(3, -1).sum(-1),
            "cb": bern - cb_log_norm.reshape(3, -1).sum(-1),
            "mean": np.ones(3),
        }
        chex.assert_trees_all_close(got, jax.tree_util.tree_map(lambda a: a.astype(np.float32), expected),
                                    rtol=1e-5, atol=1e-5)
