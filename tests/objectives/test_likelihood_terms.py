"""Numerical checks of the reconstruction likelihoods the VAE decoders use."""

import jax
import jax.numpy as jnp
import numpy as np
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
