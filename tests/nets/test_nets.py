import jax
import jax.numpy as jnp
import pytest

from aejax.errors import ConfigError
from aejax.nets import NetSpec, conv_feature_shapes


@pytest.mark.parametrize("net", ["mlp", "conv"])
@pytest.mark.parametrize("shape", [(28, 28, 1), (8, 8, 1), (7, 9, 3)])
def test_encoder_decoder_shapes(net, shape):
    enc, dec = NetSpec(net, hidden=(16,), channels=(4, 8)).encoder_decoder(shape, 5)
    x = jnp.ones((3, *shape))
    params_e = enc.init(jax.random.key(0), x)
    z = enc.apply(params_e, x)
    assert z.shape == (3, 5)
    params_d = dec.init(jax.random.key(1), z)
    assert dec.apply(params_d, z).shape == (3, *shape)


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_condition_is_used(net):
    enc, dec = NetSpec(net, hidden=(8,), channels=(4,)).encoder_decoder((8, 8, 1), 4)
    x, c0, c1 = jnp.ones((2, 8, 8, 1)), jnp.zeros((2, 3)), jnp.ones((2, 3))
    pe = enc.init(jax.random.key(0), x, c0)
    assert not jnp.allclose(enc.apply(pe, x, c0), enc.apply(pe, x, c1))
    z = jnp.ones((2, 4))
    pd = dec.init(jax.random.key(0), z, c0)
    assert not jnp.allclose(dec.apply(pd, z, c0), dec.apply(pd, z, c1))


def test_gaussian_encoder_width():
    enc, dec = NetSpec("mlp", hidden=(8,)).encoder_decoder((8, 8, 1), 4, encoder_width=8)
    x = jnp.ones((2, 8, 8, 1))
    assert enc.apply(enc.init(jax.random.key(0), x), x).shape == (2, 8)


def test_feature_shapes():
    assert conv_feature_shapes((28, 28), 2) == [(28, 28), (14, 14), (7, 7)]
    assert conv_feature_shapes((8, 8), 2) == [(8, 8), (4, 4), (2, 2)]


@pytest.mark.parametrize("kwargs, message", [
    ({"net": "rnn"}, "unknown net"),
    ({"net": "mlp", "code_size": 0}, "positive integer"),
    ({"net": "mlp", "activation": "swishy"}, "unknown activation"),
    ({"net": "conv", "channels": ()}, "at least one channel"),
    ({"net": "conv", "conv_impl": "fft"}, "unknown conv_impl"),
    ({"net": "conv", "hidden": (8, -1)}, "positive integers"),
])
def test_bad_net_options(kwargs, message):
    options = {"code_size": 4, "hidden": (8,), "channels": (4,), **kwargs}
    code_size = options.pop("code_size")
    with pytest.raises(ConfigError, match=message):
        NetSpec(**options).encoder_decoder((8, 8, 1), code_size)


@pytest.mark.parametrize("impl", ["im2col", "xla"])
def test_conv_impl_reaches_the_net_from_config(impl):
    from aejax.config import get_experiment_config
    from aejax.train.setup import setup_run

    config = get_experiment_config("digits_ae", {"model.net": "conv", "model.channels": (4,), "model.hidden": (8,),
                                                 "model.conv_impl": impl, "train.epochs": 1})
    model = setup_run(config).model
    assert model.encoder.conv_impl == impl and model.decoder.conv_impl == impl


@pytest.mark.parametrize("shape, strides", [((28, 28, 3), (1, 1)), ((28, 28, 3), (2, 2)), ((7, 9, 2), (2, 2)),
                                            ((8, 8, 1), (2, 2)), ((5, 6, 4), (1, 1))])
def test_patch_conv_equals_xla_convolution(shape, strides):
    import flax.linen as nn
    import numpy as np

    from aejax.nets.conv import PatchConv

    x = jax.random.normal(jax.random.key(0), (2, *shape))
    reference = nn.Conv(5, (3, 3), strides=strides, padding="SAME")
    params = reference.init(jax.random.key(1), x)
    params = jax.tree_util.tree_map(lambda p: p + 0.1, params)  # a non-zero bias too
    np.testing.assert_allclose(PatchConv(5, (3, 3), strides).apply(params, x), reference.apply(params, x),
                               rtol=1e-5, atol=1e-5)


def test_conv_nets_have_the_same_parameters_in_both_implementations():
    from aejax.nets.conv import ConvDecoder, ConvEncoder

    x = jnp.ones((2, 28, 28, 1))
    shapes = lambda tree: jax.tree_util.tree_map(lambda a: a.shape, tree)
    for impl in ("im2col", "xla"):
        enc = ConvEncoder((8, 16), (32,), 4, conv_impl=impl)
        pe = enc.init(jax.random.key(0), x)
        dec = ConvDecoder((8, 16), (32,), (28, 28, 1), conv_impl=impl)
        pd = dec.init(jax.random.key(0), jnp.ones((2, 4)))
        if impl == "im2col":
            first = (shapes(pe), shapes(pd), enc.apply(pe, x), dec.apply(pd, jnp.ones((2, 4))))
        else:
            assert (shapes(pe), shapes(pd)) == first[:2]
            import numpy as np
            np.testing.assert_allclose(enc.apply(pe, x), first[2], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(dec.apply(pd, jnp.ones((2, 4))), first[3], rtol=1e-4, atol=1e-5)
