"""Latent-variable terms for variational autoencoders, per example ([B] out unless noted).

Densities are of diagonal Gaussians parameterized by a mean and a log-variance, as a
Gaussian encoder head outputs them. KL warm-up schedules are plain functions of the step.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.objectives._checks import says

_LOG_2PI = math.log(2.0 * math.pi)


def _posterior(where, mean_BxK, logvar_BxK):
    """mean and logvar: one shape, [B, K]."""
    chex.assert_rank(mean_BxK, 2, **says(f"{where}: mean must be [B, K]"))
    chex.assert_equal_shape([mean_BxK, logvar_BxK], **says(f"{where}: mean and logvar must both be [B, K]"))


def gaussian_kl_per_dim(mean_BxK, logvar_BxK):
    """KL(N(mean, exp(logvar)) || N(0, 1)) per latent dimension -> [B, K].

    0.5 * (mean^2 + var - logvar - 1), the closed form of Kingma & Welling 2013, appendix B.

    References: Kingma & Welling 2013, "Auto-Encoding Variational Bayes".
    """
    _posterior("gaussian_kl_per_dim(mean_BxK, logvar_BxK)", mean_BxK, logvar_BxK)
    return 0.5 * (jnp.square(mean_BxK) + jnp.exp(logvar_BxK) - logvar_BxK - 1.0)


def gaussian_kl(mean_BxK, logvar_BxK):
    """KL(q(z|x) || N(0, I)) of a diagonal Gaussian posterior -> [B] (summed over dimensions).

    References: Kingma & Welling 2013, "Auto-Encoding Variational Bayes", appendix B.
    """
    _posterior("gaussian_kl(mean_BxK, logvar_BxK)", mean_BxK, logvar_BxK)
    return jnp.sum(gaussian_kl_per_dim(mean_BxK, logvar_BxK), axis=-1)


def free_bits_kl(kl_BxK, free_bits):
    """The KL term with "free bits": each dimension's batch-mean KL is clamped below at `free_bits` nats -> [B].

    Returns per-example values whose batch mean is sum_k max(free_bits, mean_b KL_bk): a
    dimension whose average KL is below the threshold contributes a constant (no gradient),
    so the optimizer stops squeezing it (Kingma et al. 2016, section C.8). With free_bits = 0
    this is the plain KL summed over dimensions.

    References: Kingma et al. 2016, "Improved Variational Inference with Inverse Autoregressive Flow".
    """
    chex.assert_rank(kl_BxK, 2, **says("free_bits_kl(kl_BxK, free_bits): kl must be [B, K] (per dimension)"))
    chex.assert_is_broadcastable(jnp.shape(free_bits), jnp.shape(kl_BxK)[1:],
                                 **says("free_bits_kl: free_bits must be a scalar or [K]"))
    active_K = jnp.mean(kl_BxK, axis=0) > free_bits
    return jnp.sum(jnp.where(active_K[None, :], kl_BxK, free_bits), axis=-1)


def reparameterize(mean_BxK, logvar_BxK, *, key):
    """z = mean + exp(logvar / 2) * eps with eps ~ N(0, I): differentiable in mean and logvar.

    References: Kingma & Welling 2013, "Auto-Encoding Variational Bayes", section 2.4.
    """
    chex.assert_equal_shape([mean_BxK, logvar_BxK], **says("reparameterize: mean and logvar must have one shape"))
    eps = jax.random.normal(key, mean_BxK.shape, mean_BxK.dtype)
    return mean_BxK + jnp.exp(0.5 * logvar_BxK) * eps


def gaussian_log_density(z_BxK, mean_BxK, logvar_BxK):
    """log N(z; mean, diag(exp(logvar))) summed over dimensions -> [B] (any leading axes).

    mean and logvar share one shape, which broadcasts against z (e.g. z [S, B, K], mean [B, K]).
    """
    chex.assert_equal_shape([mean_BxK, logvar_BxK],
                            **says("gaussian_log_density(z, mean, logvar): mean and logvar must have one shape"))
    chex.assert_is_broadcastable(jnp.shape(mean_BxK), jnp.shape(z_BxK),
                                 **says("gaussian_log_density(z, mean, logvar): mean must broadcast against z"))
    return -0.5 * jnp.sum(_LOG_2PI + logvar_BxK + jnp.square(z_BxK - mean_BxK) * jnp.exp(-logvar_BxK), axis=-1)


def standard_normal_log_density(z_BxK):
    """log N(z; 0, I) summed over dimensions -> [B] (any leading axes)."""
    return -0.5 * jnp.sum(_LOG_2PI + jnp.square(z_BxK), axis=-1)


# --- KL weight schedules: multipliers in [0, 1] as functions of the update step ----------

KL_SCHEDULES = ("constant", "linear", "cyclical")


def linear_warmup(step, warmup_steps: int):
    """min(1, step / warmup_steps): the KL weight grows linearly from 0, then stays at 1.

    References: Bowman et al. 2016, "Generating Sentences from a Continuous Space"; Sønderby et
    al. 2016, "Ladder Variational Autoencoders" (deterministic warm-up).
    """
    if warmup_steps <= 0:
        return jnp.ones_like(jnp.asarray(step, jnp.float32))
    return jnp.clip(jnp.asarray(step, jnp.float32) / warmup_steps, 0.0, 1.0)


def cyclical_schedule(step, cycle_steps: int, ramp_fraction: float = 0.5):
    """Cyclical annealing: in each cycle of `cycle_steps`, rise linearly from 0 to 1 over the first
    `ramp_fraction` of the cycle, then hold 1.

    References: Fu et al. 2019, "Cyclical Annealing Schedule: A Simple Approach to Mitigating KL
    Vanishing".
    """
    position = jnp.mod(jnp.asarray(step, jnp.float32), cycle_steps) / cycle_steps
    return jnp.clip(position / ramp_fraction, 0.0, 1.0)


def kl_weight_schedule(name: str, step, *, warmup_steps: int = 0, cycle_steps: int = 0,
                       ramp_fraction: float = 0.5):
    """The KL multiplier of schedule `name` ("constant", "linear" or "cyclical") at `step`.

    Raises ConfigError for any other name (checked in Python, before tracing).

    References: Bowman et al. 2016 (linear warm-up); Fu et al. 2019 (cyclical annealing).
    """
    if name == "constant":
        return jnp.ones_like(jnp.asarray(step, jnp.float32))
    if name == "linear":
        return linear_warmup(step, warmup_steps)
    if name == "cyclical":
        return cyclical_schedule(step, cycle_steps, ramp_fraction)
    raise ConfigError(f"unknown KL schedule {name!r}; choose one of {list(KL_SCHEDULES)}.")
