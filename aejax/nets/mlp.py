"""Multilayer-perceptron encoder and decoder (Flax linen)."""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn

from aejax.nets.common import activation, append_condition


class MLPEncoder(nn.Module):
    """Flattens [B, *input_shape] and maps it through Dense layers to codes [B, code_size].

    Attributes:
      hidden: widths of the hidden layers, input side first.
      code_size: width of the (linear) output layer.
      activation: hidden-layer activation name.
    """

    hidden: Sequence[int]
    code_size: int
    activation: str = "gelu"

    @nn.compact
    def __call__(self, x, condition=None):
        act = activation(self.activation)
        h = append_condition(x.reshape(x.shape[0], -1), condition)
        for width in self.hidden:
            h = act(nn.Dense(width)(h))
        return nn.Dense(self.code_size, name="code")(h)


class MLPDecoder(nn.Module):
    """Maps codes [B, K] through Dense layers to output logits [B, *output_shape].

    Attributes:
      hidden: widths of the hidden layers, code side first.
      output_shape: shape of one example, e.g. (28, 28, 1).
      activation: hidden-layer activation name.
    """

    hidden: Sequence[int]
    output_shape: Sequence[int]
    activation: str = "gelu"

    @nn.compact
    def __call__(self, z, condition=None):
        act = activation(self.activation)
        h = append_condition(z, condition)
        for width in self.hidden:
            h = act(nn.Dense(width)(h))
        out = nn.Dense(math.prod(self.output_shape), name="out")(h)
        return out.reshape((z.shape[0], *self.output_shape))
