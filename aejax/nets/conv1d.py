"""1-D convolutional encoder and decoder (Flax linen) for long signals [B, T, C].

The encoder halves the length with each strided convolution (kernel `kernel_size`, SAME
padding, so any T works); flattened features go through Dense layers to the code. The
decoder mirrors it: Dense layers, a reshape, then nearest-neighbour upsampling to the exact
length the encoder saw at that depth followed by a stride-1 convolution (resize-convolution,
Odena et al. 2016, "Deconvolution and Checkerboard Artifacts").

On CPU the convolutions run as im2col (shifted slices, then one matrix product) for the reason
given in `aejax.nets.conv`: XLA:CPU's weight-gradient convolution is slow inside the scanned
epoch. `PatchConv1D` has `flax.linen.Conv`'s parameter names and shapes (kernel [k, in, out]).

Mixed precision: `dtype="bfloat16"` computes every convolution and Dense layer in bfloat16 with
float32 parameters (and so float32 gradients and optimizer state); the code and the outputs are
float32, as in `aejax.nets.conv`. At "float32" the layers compute in the promoted dtype of their
inputs and parameters, exactly as without the option.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.nets.common import (activation, append_condition, as_float32, cast_in, check_condition, check_input,
                               layer_dtype)
from aejax.nets.recurrent import check_sequence_shape


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class PatchConv1D(nn.Module):
    """A 1-D convolution with SAME padding as patches @ kernel; the numbers of `nn.Conv(features, (k,), stride)`."""

    features: int
    kernel_size: int = 5
    stride: int = 1
    dtype: Any = None  # None: the promoted dtype of the input and parameters

    @nn.compact
    def __call__(self, x_BxTxC):
        _, length, channels = x_BxTxC.shape
        k, s = self.kernel_size, self.stride
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, channels, self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        x_BxTxC, kernel, bias = nn.dtypes.promote_dtype(x_BxTxC, kernel, bias, dtype=self.dtype)
        padded = jnp.pad(x_BxTxC, ((0, 0), _same_padding(length, k, s), (0, 0)))
        out_len = -(-length // s)
        patches_BxTxP = jnp.concatenate([padded[:, i:i + (out_len - 1) * s + 1:s, :] for i in range(k)], axis=-1)
        return patches_BxTxP @ kernel.reshape(k * channels, self.features) + bias


def conv1d(features: int, kernel_size: int, stride: int, impl: str, name: str, dtype=None) -> nn.Module:
    """A SAME 1-D convolution computing in `dtype` (None: the promoted dtype); "im2col" and "xla" share
    parameter names and shapes ("auto": im2col on CPU)."""
    if impl == "auto":
        impl = "im2col" if jax.default_backend() == "cpu" else "xla"
    if impl == "im2col":
        return PatchConv1D(features, kernel_size, stride, dtype=dtype, name=name)
    return nn.Conv(features, (kernel_size,), strides=(stride,), padding="SAME", dtype=dtype, name=name)


def conv1d_lengths(length: int, num_layers: int) -> list[int]:
    """Lengths seen by a stack of stride-2 SAME convolutions, input first."""
    lengths = [int(length)]
    for _ in range(num_layers):
        lengths.append(-(-lengths[-1] // 2))
    return lengths


class Conv1DEncoder(nn.Module):
    """Strided 1-D convolutions, then Dense layers, to codes [B, code_size].

    Attributes:
      channels: output channels of each stride-2 convolution.
      hidden: widths of Dense layers after flattening.
      code_size: width of the linear output layer.
      kernel_size: convolution width.
      activation: activation name.
      conv_impl: "auto", "im2col" or "xla".
      dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32; the code is float32).
    """

    channels: Sequence[int]
    hidden: Sequence[int]
    code_size: int
    kernel_size: int = 5
    activation: str = "gelu"
    conv_impl: str = "auto"
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x_BxTxC, condition=None):
        check_input(x_BxTxC, "Conv1DEncoder: the sequences x [B, T, C]", rank=3)
        check_condition(x_BxTxC, condition, "Conv1DEncoder")
        act, dt = activation(self.activation), layer_dtype(self.dtype)
        h = cast_in(x_BxTxC, dt)
        for i, c in enumerate(self.channels):
            h = act(conv1d(c, self.kernel_size, 2, self.conv_impl, name=f"Conv_{i}", dtype=dt)(h))
        h = cast_in(append_condition(h.reshape(h.shape[0], -1), condition), dt)
        for width in self.hidden:
            h = act(nn.Dense(width, dtype=dt)(h))
        return as_float32(nn.Dense(self.code_size, dtype=dt, name="code")(h), dt)


class Conv1DDecoder(nn.Module):
    """Dense layers, a reshape, then upsample-and-convolve stages back to outputs [B, T, C].

    Attributes:
      channels: the encoder's channels (run in reverse).
      hidden: Dense widths before the reshape, code side first.
      output_shape: (T, C) of one example.
      kernel_size: convolution width.
      activation: activation name.
      conv_impl: "auto", "im2col" or "xla".
      dtype: compute dtype, "float32" or "bfloat16" (parameters stay float32; the outputs are float32).
    """

    channels: Sequence[int]
    hidden: Sequence[int]
    output_shape: Sequence[int]
    kernel_size: int = 5
    activation: str = "gelu"
    conv_impl: str = "auto"
    dtype: str = "float32"

    @nn.compact
    def __call__(self, z_BxK, condition=None):
        check_input(z_BxK, "Conv1DDecoder: the code z [B, K]", rank=2)
        check_condition(z_BxK, condition, "Conv1DDecoder")
        act, dt = activation(self.activation), layer_dtype(self.dtype)
        length, out_channels = check_sequence_shape(self.output_shape, "conv1d")
        lengths = conv1d_lengths(length, len(self.channels))
        h = cast_in(append_condition(z_BxK, condition), dt)
        for width in self.hidden:
            h = act(nn.Dense(width, dtype=dt)(h))
        h = act(nn.Dense(lengths[-1] * self.channels[-1], dtype=dt)(h))
        h = h.reshape(z_BxK.shape[0], lengths[-1], self.channels[-1])
        up_channels = list(reversed(self.channels[:-1])) + [out_channels]
        for i, c in enumerate(up_channels):
            h = jax.image.resize(h, (h.shape[0], lengths[-2 - i], h.shape[-1]), method="nearest")
            h = conv1d(c, self.kernel_size, 1, self.conv_impl, name=f"Conv_{i}", dtype=dt)(h)
            if i < len(up_channels) - 1:
                h = act(h)
        return as_float32(h, dt)
