"""Flax linen networks: encoders, decoders and discriminators. No losses here.

`NetSpec` is the one description of a network that every autoencoder kind receives: the
net kind and its options, with one set of defaults. `NetSpec.encoder_decoder` turns it into
a matching (encoder, decoder) pair for a given input shape and code width.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn

from aejax.errors import ConfigError
from aejax.nets.common import ACTIVATIONS, activation
from aejax.nets.conv import CONV_IMPLS, ConvDecoder, ConvEncoder, conv_feature_shapes
from aejax.nets.conv1d import Conv1DDecoder, Conv1DEncoder
from aejax.nets.discriminator import MLPDiscriminator
from aejax.nets.mlp import MLPDecoder, MLPEncoder
from aejax.nets.recurrent import CELLS, RecurrentDecoder, RecurrentEncoder, check_sequence_shape
from aejax.nets.transformer import (DTYPES, POSITIONS, MaskedTokenDecoder, ViTDecoder, ViTEncoder,
                                    check_transformer_options, patch_grid)

NET_KINDS = ("mlp", "conv", "transformer", "lstm", "gru", "conv1d")
_RECURRENT_OPTIONS = ("rnn_hidden", "bidirectional", "autoregressive", "dtype")
# The NetSpec fields each net reads (the `model.*` keys it takes); the others mean nothing to it.
NET_OPTIONS = {
    "mlp": ("hidden", "activation", "dtype"),
    "conv": ("channels", "hidden", "activation", "conv_impl", "dtype"),
    "transformer": ("patch_size", "width", "depth", "heads", "mlp_ratio", "positions", "dtype"),
    "lstm": _RECURRENT_OPTIONS,
    "gru": _RECURRENT_OPTIONS,
    "conv1d": ("channels", "hidden", "kernel_size", "activation", "conv_impl", "dtype"),
}


@dataclasses.dataclass(frozen=True)
class NetSpec:
    """Which network and how wide: the options every builder receives.

    Attributes:
      net: "mlp" (any shape), "conv" or "transformer" (images (H, W, C)), "lstm", "gru" or "conv1d"
        (sequences (T, C)).
      hidden: Dense widths on the input side (the decoder mirrors them); for "conv" the Dense
        layers between the flattened convolution features and the code.
      channels: output channels of each stride-2 convolution ("conv" only).
      activation: hidden-layer activation name (see `ACTIVATIONS`).
      conv_impl: "auto" (im2col on CPU, XLA's convolution elsewhere), "im2col" or "xla" ("conv" only).
      patch_size: side of the square patches; must divide H and W ("transformer" and the MAE).
      width, depth, heads, mlp_ratio: token width, number of pre-norm blocks, attention heads
        (dividing width), MLP hidden width over token width ("transformer" and the MAE encoder).
      rnn_hidden: units of the recurrent cell ("lstm", "gru"); the code is a Dense projection of
        the encoder's final state (`hidden` is not used by the recurrent nets).
      bidirectional: the recurrent encoder also reads the sequence backwards.
      autoregressive: the recurrent decoder feeds its previous output back (teacher forcing when
        the decoder is given `targets`; see `aejax.nets.recurrent`).
      kernel_size: convolution width of "conv1d" (which uses `channels` and `hidden` like "conv").
      positions: "sinusoidal" (fixed 2-D sine-cosine; width divisible by 4) or "learned".
      dtype: compute dtype of every net, "float32" or "bfloat16" (parameters and optimizer state stay
        float32; outputs are float32; a recurrent net's state stays float32).
    """

    net: str = "mlp"
    hidden: tuple[int, ...] = (256, 128)
    channels: tuple[int, ...] = (32, 64)
    activation: str = "gelu"
    conv_impl: str = "auto"
    patch_size: int = 4
    width: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 2.0
    positions: str = "sinusoidal"
    dtype: str = "float32"
    rnn_hidden: int = 64
    bidirectional: bool = False
    autoregressive: bool = False
    kernel_size: int = 5

    def __post_init__(self):
        if self.net not in NET_KINDS:
            raise ConfigError(f"unknown net {self.net!r}; choose one of {list(NET_KINDS)}.")
        if any(int(w) < 1 for w in self.hidden) or any(int(c) < 1 for c in self.channels):
            raise ConfigError("hidden widths and channels must be positive integers; fix model.hidden / model.channels.")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.activation!r}; choose one of {sorted(ACTIVATIONS)}.")
        if self.conv_impl not in CONV_IMPLS:
            raise ConfigError(f"unknown conv_impl {self.conv_impl!r}; choose one of {list(CONV_IMPLS)}.")
        if int(self.rnn_hidden) < 1 or int(self.kernel_size) < 1:
            raise ConfigError(f"model.rnn_hidden and model.kernel_size must be positive integers, got "
                              f"{self.rnn_hidden} and {self.kernel_size}.")
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown model.dtype {self.dtype!r}; choose one of {list(DTYPES)} (bfloat16: compute in "
                              "bfloat16 with float32 parameters and optimizer state).")
        if self.net == "transformer":
            check_transformer_options(width=self.width, depth=self.depth, heads=self.heads,
                                      mlp_ratio=self.mlp_ratio, positions=self.positions, dtype=self.dtype)
        object.__setattr__(self, "hidden", tuple(int(w) for w in self.hidden))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    def encoder_decoder(self, input_shape: Sequence[int], code_size: int, *,
                        encoder_width: int | None = None) -> tuple[nn.Module, nn.Module]:
        """A matching (encoder, decoder) pair.

        Args:
          input_shape: shape of one example, e.g. (H, W, C).
          code_size: width of the code the decoder reads.
          encoder_width: width the encoder outputs when it differs from `code_size`
            (a Gaussian encoder outputs 2 * code_size: mean and log-variance).
        """
        if code_size < 1:
            raise ConfigError(f"code size must be a positive integer, got {code_size}; set model.code_size >= 1.")
        out = encoder_width or code_size
        input_shape = tuple(input_shape)
        if self.net == "mlp":
            return (MLPEncoder(self.hidden, out, self.activation, dtype=self.dtype),
                    MLPDecoder(tuple(reversed(self.hidden)), input_shape, self.activation, dtype=self.dtype))
        if self.net == "transformer":
            patch_grid(input_shape, self.patch_size)  # a ConfigError when the patch size does not divide the image
            options = dict(patch_size=self.patch_size, width=self.width, depth=self.depth, heads=self.heads,
                           mlp_ratio=self.mlp_ratio, positions=self.positions, dtype=self.dtype)
            return ViTEncoder(code_size=out, **options), ViTDecoder(input_shape, **options)
        if self.net in CELLS:
            check_sequence_shape(input_shape, self.net)
            return (RecurrentEncoder(self.net, self.rnn_hidden, out, self.bidirectional, dtype=self.dtype),
                    RecurrentDecoder(self.net, self.rnn_hidden, input_shape, self.autoregressive, dtype=self.dtype))
        if self.net == "conv1d":
            check_sequence_shape(input_shape, self.net)
            if not self.channels:
                raise ConfigError("conv1d needs at least one channel width; set model.channels, e.g. (32, 64).")
            return (Conv1DEncoder(self.channels, self.hidden, out, self.kernel_size, self.activation, self.conv_impl,
                                  dtype=self.dtype),
                    Conv1DDecoder(self.channels, tuple(reversed(self.hidden)), input_shape, self.kernel_size,
                                  self.activation, self.conv_impl, dtype=self.dtype))
        if len(input_shape) != 3:
            raise ConfigError(f"conv nets need images shaped (H, W, C), got {input_shape}; use net='mlp', or "
                              "'conv1d', 'lstm' or 'gru' for sequences (T, C).")
        if not self.channels:
            raise ConfigError("conv nets need at least one channel width; set model.channels, e.g. (32, 64).")
        return (ConvEncoder(self.channels, self.hidden, out, self.activation, self.conv_impl, self.dtype),
                ConvDecoder(self.channels, tuple(reversed(self.hidden)), input_shape, self.activation,
                            self.conv_impl, self.dtype))


def net_options(net: str) -> dict:
    """The options net `net` reads, with their defaults (the `model.*` keys it takes)."""
    if net not in NET_OPTIONS:
        raise ConfigError(f"unknown net {net!r}; choose one of {list(NET_KINDS)}.")
    defaults = {f.name: f.default for f in dataclasses.fields(NetSpec)}
    return {name: defaults[name] for name in NET_OPTIONS[net]}


__all__ = ["ACTIVATIONS", "Conv1DDecoder", "Conv1DEncoder", "ConvDecoder", "ConvEncoder", "DTYPES", "MLPDecoder", "MLPDiscriminator", "MLPEncoder",
           "MaskedTokenDecoder", "NET_KINDS", "NET_OPTIONS", "NetSpec", "POSITIONS", "RecurrentDecoder",
           "RecurrentEncoder", "ViTDecoder", "ViTEncoder", "activation",
           "conv_feature_shapes", "net_options", "patch_grid"]
