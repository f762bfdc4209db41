"""Reconstruction terms, per example: each returns [B], summed over every non-batch axis.

Callers that want a per-pixel scale divide by the number of features (see
`per_feature_mean`). All inputs are batches [B, ...].
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp

from aejax.objectives._checks import says


def _sum_features(v):
    return jnp.sum(v.reshape(v.shape[0], -1), axis=-1)


def num_features(x) -> int:
    """Number of features in one example of the batch `x`."""
    return math.prod(x.shape[1:])


def _same_batch_shape(where, a, x):
    """`a` and `x` both [B, ...] with the same shape (no silent broadcasting)."""
    chex.assert_equal_shape([a, x], **says(f"{where}: both arguments must be [B, *input_shape] of one shape"))
    chex.assert_rank(x, {2, 3, 4, 5}, **says(f"{where}: x must be a batch [B, ...]"))


def squared_error(x_hat, x):
    """Sum of squared differences per example: sum_i (x_hat_i - x_i)^2 -> [B]."""
    _same_batch_shape("squared_error(x_hat, x)", x_hat, x)
    return _sum_features(jnp.square(x_hat - x))


def bernoulli_nll(logits, x):
    """Negative log-likelihood of x under independent Bernoulli(sigmoid(logits)) -> [B].

    Equals binary cross-entropy with logits: -x log s(l) - (1 - x) log(1 - s(l)),
    computed stably as softplus(l) - x * l. Valid for x in [0, 1].
    """
    _same_batch_shape("bernoulli_nll(logits, x)", logits, x)
    return _sum_features(jax.nn.softplus(logits) - x * logits)


def gaussian_nll(mean, x, log_sigma):
    """Negative log-density of x under N(mean, exp(log_sigma)^2) per feature -> [B].

    `log_sigma` broadcasts against `x` (a scalar for a fixed variance, or per feature).
    """
    _same_batch_shape("gaussian_nll(mean, x, log_sigma)", mean, x)
    chex.assert_is_broadcastable(jnp.shape(log_sigma), jnp.shape(x),
                                 **says("gaussian_nll: log_sigma must broadcast against x [B, *input_shape]"))
    log_sigma = jnp.broadcast_to(log_sigma, x.shape)
    z = (x - mean) * jnp.exp(-log_sigma)
    return _sum_features(0.5 * jnp.square(z) + log_sigma + 0.5 * jnp.log(2.0 * jnp.pi))


_CB_SERIES_RADIUS = 0.25


def continuous_bernoulli_log_norm(logits):
    """log C(lambda) of the continuous Bernoulli with lambda = sigmoid(logits), elementwise.

    C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda); with l the logit this is
    l / tanh(l / 2), and C(1/2) = 2. For |l| < 0.25 the series
    log 2 + l^2/12 - 7 l^4/1440 + 31 l^6/90720 (error below 1e-10 there) replaces the 0/0
    form, and the exact branch sees a safe logit there, so value and gradient are finite
    and accurate at and near l = 0.

    References: Loaiza-Ganem & Cunningham 2019, "The continuous Bernoulli: fixing a
    pervasive error in variational autoencoders".
    """
    near = jnp.abs(logits) < _CB_SERIES_RADIUS
    # where() differentiates both branches: the exact one must never see l = 0 (0/0 -> NaN grads).
    safe = jnp.where(near, 1.0, logits)
    exact = jnp.log(safe / jnp.tanh(0.5 * safe))
    l2 = jnp.square(logits)
    series = jnp.log(2.0) + l2 * (1.0 / 12.0 + l2 * (-7.0 / 1440.0 + l2 * (31.0 / 90720.0)))
    return jnp.where(near, series, exact)


def continuous_bernoulli_nll(logits, x):
    """Negative log-density of x in [0, 1] under the continuous Bernoulli -> [B].

    References: Loaiza-Ganem & Cunningham 2019, "The continuous Bernoulli: fixing a
    pervasive error in variational autoencoders".
    """
    _same_batch_shape("continuous_bernoulli_nll(logits, x)", logits, x)
    return bernoulli_nll(logits, x) - _sum_features(continuous_bernoulli_log_norm(logits))


def per_feature_mean(per_example_sum, x):
    """Turns a per-example sum over features into a per-feature mean: [B] and x [B, ...] -> [B]."""
    chex.assert_shape(per_example_sum, jnp.shape(x)[:1],
                      **says("per_feature_mean(per_example_sum, x): per_example_sum must be [B] for x [B, ...]"))
    return per_example_sum / num_features(x)
