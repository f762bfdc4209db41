"""Adversarial terms on discriminator logits, per example ([B] out).

The discriminator outputs a logit: D(z) = sigmoid(logit), the probability that z came from
the prior. Losses are the non-saturating form of Goodfellow et al. 2014: the generator
maximizes log D(G(x)) rather than minimizing log(1 - D(G(x))).
"""

from __future__ import annotations

import jax


def discriminator_loss(real_logits_B, fake_logits_B):
    """-log D(z_prior) - log(1 - D(z_code)) per example -> [B].

    References: Goodfellow et al. 2014, "Generative Adversarial Nets"; Makhzani et al. 2015,
    "Adversarial Autoencoders".
    """
    # -log sigmoid(l) = softplus(-l); -log(1 - sigmoid(l)) = softplus(l)
    return jax.nn.softplus(-real_logits_B) + jax.nn.softplus(fake_logits_B)


def generator_loss(fake_logits_B):
    """Non-saturating generator loss -log D(z_code) per example -> [B].

    References: Goodfellow et al. 2014, "Generative Adversarial Nets", section 3.
    """
    return jax.nn.softplus(-fake_logits_B)
