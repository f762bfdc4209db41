"""A discriminator on codes (Flax linen): an MLP from [B, K] (plus an optional condition) to logits [B]."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from aejax.nets.common import activation, append_condition, check_condition, check_input


class MLPDiscriminator(nn.Module):
    """Dense layers over codes [B, K] (a condition [B, C] is concatenated) to one logit per example.

    The logit is log D / (1 - D), where D is the probability that the code came from the
    prior. Used by the adversarial autoencoder (Makhzani et al. 2015).

    Attributes:
      hidden: widths of the hidden layers.
      activation: hidden-layer activation name.
    """

    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, z, condition=None):
        check_input(z, "MLPDiscriminator: the codes z [B, K]", rank=2)
        check_condition(z, condition, "MLPDiscriminator")
        act = activation(self.activation)
        h = append_condition(z, condition)
        for width in self.hidden:
            h = act(nn.Dense(width)(h))
        return nn.Dense(1, name="logit")(h)[:, 0]
