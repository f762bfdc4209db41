"""1-D convolutional encoder and decoder (Flax linen) for long signals [B, T, C].

The encoder halves the length with each strided convolution (kernel `kernel_size`, SAME
padding, so any T works); flattened features go through Dense layers to the code. The
decoder mirrors it: Dense layers, a reshape, then nearest-neighbour upsampling to the exact
length the encoder saw at that depth followed by a stride-1 convolution (resize-convolution,
Odena et al. 2016, "Deconvolution and Checkerboard Artifacts").

On CPU the convolutions run as im2col (shifted slices, then one matrix product) for the reason
given in `aejax.nets.conv`: XLA:CPU's weight-gradient convolution is slow inside the scanned
epoch. `PatchConv1D` has `flax.linen.Conv`'s parameter names and shapes (kernel [k, in, out]).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.nets.common import activation, append_condition
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

    @nn.compact
    def __call__(self, x_BxTxC):
        _, length, channels = x_BxTxC.shape
        k, s = self.kernel_size, self.stride
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, channels, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        padded = jnp.pad(x_BxTxC, ((0, 0), _same_padding(length, k, s), (0, 0)))
        out_len = -(-length // s)
        patches_BxTxP = jnp.concatenate([padded[:, i:i + (out_len - 1) * s + 1:s, :] for i in range(k)], axis=-1)
        return patches_BxTxP @ kernel.reshape(k * channels, self.features) + bias


def conv1d(features: int, kernel_size: int, stride: int, impl: str, name: str) -> nn.Module:
    """A SAME 1-D convolution; "im2col" and "xla" share parameter names and shapes ("auto": im2col on CPU)."""
    if impl == "auto":
        impl = "im2col" if jax.default_backend() == "cpu" else "xla"
    if impl == "im2col":
        return PatchConv1D(features, kernel_size, stride, name=name)
    return nn.Conv(features, (kernel_size,), strides=(stride,), padding="SAME", name=name)


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
    """

    channels: Sequence[int]
    hidden: Sequence[int]
    code_size: int
    kernel_size: int = 5
    activation: str = "gelu"
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x_BxTxC, condition=None):
        act = activation(self.activation)
        h = x_BxTxC
        for i, c in enumerate(self.channels):
            h = act(conv1d(c, self.kernel_size, 2, self.conv_impl, name=f"Conv_{i}")(h))
        h = append_condition(h.reshape(h.shape[0], -1), condition)
        for width in self.hidden:
            h = act(nn.Dense(width)(h))
        return nn.Dense(self.code_size, name="code")(h)


class Conv1DDecoder(nn.Module):
    """Dense layers, a reshape, then upsample-and-convolve stages back to outputs [B, T, C].

    Attributes:
      channels: the encoder's channels (run in reverse).
      hidden: Dense widths before the reshape, code side first.
      output_shape: (T, C) of one example.
      kernel_size: convolution width.
      activation: activation name.
      conv_impl: "auto", "im2col" or "xla".
    """

    channels: Sequence[int]
    hidden: Sequence[int]
    output_shape: Sequence[int]
    kernel_size: int = 5
    activation: str = "gelu"
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, z_BxK, condition=None):
        act = activation(self.activation)
        length, out_channels = check_sequence_shape(self.output_shape, "conv1d")
        lengths = conv1d_lengths(length, len(self.channels))
        h = append_condition(z_BxK, condition)
        for width in self.hidden:
            h = act(nn.Dense(width)(h))
        h = act(nn.Dense(lengths[-1] * self.channels[-1])(h)).reshape(z_BxK.shape[0], lengths[-1], self.channels[-1])
        up_channels = list(reversed(self.channels[:-1])) + [out_channels]
        for i, c in enumerate(up_channels):
            h = jax.image.resize(h, (h.shape[0], lengths[-2 - i], h.shape[-1]), method="nearest")
            h = conv1d(c, self.kernel_size, 1, self.conv_impl, name=f"Conv_{i}")(h)
            if i < len(up_channels) - 1:
                h = act(h)
        return h
