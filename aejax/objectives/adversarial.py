"""Adversarial terms on discriminator logits, per example ([B] out).

The discriminator outputs a logit: D(z) = sigmoid(logit), the probability that z came from
the prior. Losses are the non-saturating form of Goodfellow et al. 2014: the generator
maximizes log D(G(x)) rather than minimizing log(1 - D(G(x))).
"""

from __future__ import annotations

import chex
import jax

from aejax.objectives._checks import says


def discriminator_loss(real_logits_B, fake_logits_B):
    """-log D(z_prior) - log(1 - D(z_code)) per example -> [B].

    References: Goodfellow et al. 2014, "Generative Adversarial Nets"; Makhzani et al. 2015,
    "Adversarial Autoencoders".
    """
    chex.assert_rank(real_logits_B, 1, **says("discriminator_loss(real_logits_B, fake_logits_B): logits must be [B]"))
    chex.assert_equal_shape([real_logits_B, fake_logits_B],
                            **says("discriminator_loss: real and fake logits must both be [B]"))
    # -log sigmoid(l) = softplus(-l); -log(1 - sigmoid(l)) = softplus(l)
    return jax.nn.softplus(-real_logits_B) + jax.nn.softplus(fake_logits_B)


def generator_loss(fake_logits_B):
    """Non-saturating generator loss -log D(z_code) per example -> [B].

    References: Goodfellow et al. 2014, "Generative Adversarial Nets", section 3.
    """
    chex.assert_rank(fake_logits_B, 1, **says("generator_loss(fake_logits_B): logits must be [B]"))
    return jax.nn.softplus(-fake_logits_B)


def r1_penalty(logit_fn, real_BxK):
    """Squared gradient norm of the discriminator's logit at real samples, 0.5 ||grad_z D(z)||^2 -> [B].

    `logit_fn` maps codes [B, K] to logits [B]. Penalizing it on prior samples (R1) damps the
    oscillations of simultaneous gradient play without moving the equilibrium.

    References: Mescheder, Geiger & Nowozin 2018, "Which Training Methods for GANs do actually
    Converge?".
    """
    chex.assert_rank(real_BxK, 2, **says("r1_penalty(logit_fn, real_BxK): real codes must be [B, K]"))
    chex.assert_shape(jax.eval_shape(logit_fn, real_BxK), real_BxK.shape[:1],
                      **says("r1_penalty: logit_fn must map codes [B, K] to logits [B]"))
    grad_BxK = jax.grad(lambda z: jax.numpy.sum(logit_fn(z)))(real_BxK)
    return 0.5 * jax.numpy.sum(jax.numpy.square(grad_BxK), axis=-1)
