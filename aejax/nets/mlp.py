"""Multilayer-perceptron encoder and decoder (Flax linen).

Mixed precision: `dtype="bfloat16"` computes every Dense layer (and the activations between
them) in bfloat16 while the parameters stay float32 (so gradients and optimizer state are float32
too); the code and the output logits are cast back to float32 before any loss sees them
(Micikevicius et al. 2018, "Mixed Precision Training"; Kalamkar et al. 2019, "A Study of BFLOAT16
for Deep Learning Training"). At "float32" the layers compute in the promoted dtype of their
inputs and parameters, exactly as without the option (float64 inputs stay float64).
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn

from aejax.nets.common import (activation, append_condition, as_float32, cast_in, check_condition, check_input,
                               layer_dtype)


class MLPEncoder(nn.Module):
    """Flattens [B, *input_shape] and maps it through Dense layers to codes [B, code_size].

    Attributes:
      hidden: widths of the hidden layers, input side first.
      code_size: width of the (linear) output layer.
      activation: hidden-layer activation name.
      dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32; the code is float32).
    """

    hidden: Sequence[int]
    code_size: int
    activation: str = "gelu"
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x, condition=None):
        check_input(x, "MLPEncoder: the input x [B, ...]", min_rank=2)
        check_condition(x, condition, "MLPEncoder")
        act, dt = activation(self.activation), layer_dtype(self.dtype)
        h = cast_in(append_condition(x.reshape(x.shape[0], -1), condition), dt)
        for width in self.hidden:
            h = act(nn.Dense(width, dtype=dt)(h))
        return as_float32(nn.Dense(self.code_size, dtype=dt, name="code")(h), dt)


class MLPDecoder(nn.Module):
    """Maps codes [B, K] through Dense layers to output logits [B, *output_shape].

    Attributes:
      hidden: widths of the hidden layers, code side first.
      output_shape: shape of one example, e.g. (28, 28, 1).
      activation: hidden-layer activation name.
      dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32; the logits are float32).
    """

    hidden: Sequence[int]
    output_shape: Sequence[int]
    activation: str = "gelu"
    dtype: str = "float32"

    @nn.compact
    def __call__(self, z, condition=None):
        check_input(z, "MLPDecoder: the code z [B, K]", rank=2)
        check_condition(z, condition, "MLPDecoder")
        act, dt = activation(self.activation), layer_dtype(self.dtype)
        h = cast_in(append_condition(z, condition), dt)
        for width in self.hidden:
            h = act(nn.Dense(width, dtype=dt)(h))
        out = as_float32(nn.Dense(math.prod(self.output_shape), dtype=dt, name="out")(h), dt)
        return out.reshape((z.shape[0], *self.output_shape))
