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


def test_continuous_bernoulli_normaliser_matches_numerical_integration():
    for lam in (0.02, 0.2, 0.45, 0.499, 0.5, 0.503, 0.7, 0.97):
        integral, _ = integrate.quad(lambda v: lam ** v * (1 - lam) ** (1 - v), 0.0, 1.0)
        logit = np.log(lam / (1 - lam))
        log_c = float(rec.continuous_bernoulli_log_norm(jnp.float32(logit)))
        assert np.isclose(log_c, -np.log(integral), atol=2e-4), (lam, log_c, -np.log(integral))


def test_continuous_bernoulli_density_integrates_to_one_and_mean_matches():
    for logit in (-4.0, -0.7, 0.01, 2.5):
        density = lambda v: float(
            jnp.exp(-rec.continuous_bernoulli_nll(jnp.full((1, 1), logit), jnp.full((1, 1), v)))[0])
        total, _ = integrate.quad(density, 0.0, 1.0)
        mean, _ = integrate.quad(lambda v: v * density(v), 0.0, 1.0)
        assert np.isclose(total, 1.0, atol=1e-4)
        assert np.isclose(float(continuous_bernoulli_mean(jnp.float32(logit))), mean, atol=1e-4)
    assert np.isfinite(np.asarray(jax.grad(lambda l: continuous_bernoulli_mean(l))(0.0)))
