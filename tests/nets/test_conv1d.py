"""1-D convolutional nets: shapes for any length and channel count, im2col equals XLA's convolution, the kinds."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.errors import ConfigError
from aejax.nets import NetSpec
from aejax.nets.conv1d import PatchConv1D, conv1d_lengths


@pytest.mark.parametrize("length,channels", [(1, 1), (7, 3), (40, 1), (64, 2)])
def test_shapes_for_every_length_and_channel_count(length, channels):
    spec = NetSpec(net="conv1d", channels=(4, 8), hidden=(16,), kernel_size=3)
    encoder, decoder = spec.encoder_decoder((length, channels), 5)
    x = jnp.ones((2, length, channels))
    z, _ = jax.eval_shape(lambda: encoder.init_with_output(jax.random.key(0), x))  # shapes only: no compile
    out, _ = jax.eval_shape(lambda: decoder.init_with_output(jax.random.key(1), jnp.ones(z.shape)))
    assert z.shape == (2, 5)
    assert out.shape == (2, length, channels)


def test_lengths_halve_rounding_up():
    assert conv1d_lengths(40, 3) == [40, 20, 10, 5]
    assert conv1d_lengths(7, 2) == [7, 4, 2]


@pytest.mark.parametrize("kernel,stride,length", [(5, 1, 9), (3, 2, 9), (4, 2, 10)])
def test_im2col_matches_xla_convolution_with_the_same_parameters(kernel, stride, length):
    x = jax.random.normal(jax.random.key(0), (2, length, 3))
    patch = PatchConv1D(4, kernel, stride)
    params = patch.init(jax.random.key(1), x)
    params = jax.tree_util.tree_map(lambda p: p + 0.1, params)  # a non-zero bias too
    reference = nn.Conv(4, (kernel,), strides=(stride,), padding="SAME").apply(params, x)
    np.testing.assert_allclose(patch.apply(params, x), reference, atol=1e-5)


def test_conv1d_rejects_images_and_needs_a_channel_width():
    with pytest.raises(ConfigError, match=r"sequences shaped \(T, C\)"):
        NetSpec(net="conv1d").encoder_decoder((8, 8, 1), 4)
    with pytest.raises(ConfigError, match="channel width"):
        NetSpec(net="conv1d", channels=()).encoder_decoder((8, 1), 4)
    with pytest.raises(ConfigError, match="kernel_size"):
        NetSpec(net="conv1d", kernel_size=0)
