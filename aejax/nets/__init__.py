"""Flax linen networks: encoders and decoders. No losses here."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn

from aejax.errors import ConfigError
from aejax.nets.common import ACTIVATIONS, activation
from aejax.nets.conv import ConvDecoder, ConvEncoder, conv_feature_shapes
from aejax.nets.discriminator import MLPDiscriminator
from aejax.nets.mlp import MLPDecoder, MLPEncoder

NET_KINDS = ("mlp", "conv")


def make_encoder_decoder(net: str, *, input_shape: Sequence[int], code_size: int, hidden: Sequence[int] = (),
                         channels: Sequence[int] = (), activation: str = "gelu",
                         encoder_code_size: int | None = None) -> tuple[nn.Module, nn.Module]:
    """Builds a matching (encoder, decoder) pair.

    Args:
      net: "mlp" or "conv".
      input_shape: shape of one example, (H, W, C).
      code_size: width of the code the decoder reads.
      hidden: Dense widths on the input side (the decoder mirrors them).
      channels: conv channels (conv only).
      activation: activation name.
      encoder_code_size: width the encoder outputs, when it differs from `code_size`
        (a Gaussian encoder outputs 2 * code_size: mean and log-variance).
    """
    if net not in NET_KINDS:
        raise ConfigError(f"unknown net {net!r}; choose one of {list(NET_KINDS)}.")
    if code_size < 1:
        raise ConfigError(f"code size must be a positive integer, got {code_size}; set model.code_size >= 1.")
    if any(int(w) < 1 for w in hidden) or any(int(c) < 1 for c in channels):
        raise ConfigError("hidden widths and channels must be positive integers; fix model.hidden / model.channels.")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}.")
    out = encoder_code_size or code_size
    hidden, channels = tuple(int(w) for w in hidden), tuple(int(c) for c in channels)
    if net == "mlp":
        return (MLPEncoder(hidden, out, activation),
                MLPDecoder(tuple(reversed(hidden)), tuple(input_shape), activation))
    if len(input_shape) != 3:
        raise ConfigError(f"conv nets need images shaped (H, W, C), got {tuple(input_shape)}; use net='mlp'.")
    if not channels:
        raise ConfigError("conv nets need at least one channel width; set model.channels, e.g. (32, 64).")
    return (ConvEncoder(channels, hidden, out, activation),
            ConvDecoder(channels, tuple(reversed(hidden)), tuple(input_shape), activation))


__all__ = ["ACTIVATIONS", "ConvDecoder", "ConvEncoder", "MLPDecoder", "MLPDiscriminator", "MLPEncoder", "NET_KINDS",
           "activation",
           "conv_feature_shapes", "make_encoder_decoder"]
