"""The undercomplete autoencoder: a code narrower than the input, trained to reconstruct.

References: Hinton & Salakhutdinov 2006, "Reducing the dimensionality of data with neural
networks"; Goodfellow, Bengio & Courville 2016, Deep Learning, section 14.1.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.models import common


@dataclasses.dataclass(frozen=True)
class UndercompleteAE:
    """x -> encoder -> z [B, K] -> decoder -> logits; loss = per-pixel reconstruction term.

    Attributes:
      encoder, decoder: linen modules (see `aejax.nets`).
      input_shape: shape of one example.
      code_size: K; must be smaller than the number of input features.
      likelihood: "mse" (squared error of sigmoid(logits)) or "bernoulli" (cross-entropy).
    """

    encoder: nn.Module
    decoder: nn.Module
    input_shape: tuple[int, ...]
    code_size: int
    likelihood: str = "mse"
    name = "undercomplete"

    def __post_init__(self):
        common.check_likelihood(self.likelihood)
        if self.code_size >= math.prod(self.input_shape):
            raise ConfigError(
                f"an undercomplete autoencoder needs a code narrower than its input, got code size "
                f"{self.code_size} for {math.prod(self.input_shape)} input features; lower model.code_size.")

    init = common.init
    encode = common.encode
    decode_logits = common.decode_logits
    reconstruct = common.reconstruct
    build = classmethod(common.build)
    hp_defaults = staticmethod(common.no_hp)
    default_hp = common.default_hp

    def loss(self, params, batch, key, hp, *, step=None):
        del key, hp, step  # deterministic, no kind-specific hyperparameters
        logits = self.decode_logits(params, self.encode(params, batch))
        recon_B = common.reconstruction_per_pixel(self.likelihood, logits, batch["x"])
        loss = jnp.mean(recon_B)
        return loss, {"recon": loss}


    def check_hp(self, hp):
        del hp

    def check_data(self, x, y=None):
        common.check_data_for_likelihood(self.likelihood, x, y)
