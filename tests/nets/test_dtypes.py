"""bfloat16 compute for the MLP, recurrent and 1-D conv nets: float32 parameters and outputs, outputs close to
the float32 nets', float64 checks untouched at dtype float32; and the shape checks at every net's entry point."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.errors import DataError
from aejax.nets.conv import ConvDecoder, ConvEncoder
from aejax.nets.conv1d import Conv1DDecoder, Conv1DEncoder
from aejax.nets.discriminator import MLPDiscriminator
from aejax.nets.mlp import MLPDecoder, MLPEncoder
from aejax.nets.recurrent import RecurrentDecoder, RecurrentEncoder
from aejax.nets.transformer import MaskedTokenDecoder, ViTDecoder, ViTEncoder

CODE = 4


def pair(net: str, dtype: str):
    """(encoder, decoder, example shape) of a tiny net of kind `net` computing in `dtype`."""
    if net == "mlp":
        return (MLPEncoder((16,), CODE, "sigmoid", dtype=dtype), MLPDecoder((16,), (8, 8, 1), "sigmoid", dtype=dtype),
                (8, 8, 1))
    if net in ("lstm", "gru"):
        return (RecurrentEncoder(net, 8, CODE, bidirectional=True, dtype=dtype),
                RecurrentDecoder(net, 8, (6, 2), autoregressive=True, dtype=dtype), (6, 2))
    if net == "gru_plain":  # the non-autoregressive decoder path
        return (RecurrentEncoder("gru", 8, CODE, dtype=dtype), RecurrentDecoder("gru", 8, (6, 2), dtype=dtype), (6, 2))
    assert net == "conv1d"
    return (Conv1DEncoder((4, 8), (16,), CODE, kernel_size=3, conv_impl="im2col", dtype=dtype),
            Conv1DDecoder((4, 8), (16,), (12, 2), kernel_size=3, conv_impl="im2col", dtype=dtype), (12, 2))


NETS = ["mlp", "lstm", "gru", "gru_plain", "conv1d"]


def init(enc, dec, x):
    p_enc = enc.init(jax.random.key(0), x)
    return p_enc, dec.init(jax.random.key(1), enc.apply(p_enc, x))


def forward(enc, dec, params, x):
    z = enc.apply(params[0], x)
    return z, dec.apply(params[1], z)


def floating_dtypes(tree):
    return {leaf.dtype for leaf in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.floating)}


def test_the_dtype_field_is_last():
    # the lead's NetSpec passes dtype by keyword; keeping it last keeps every positional call as it was
    for module in (MLPEncoder, MLPDecoder, RecurrentEncoder, RecurrentDecoder, Conv1DEncoder, Conv1DDecoder):
        fields = [f for f in module.__dataclass_fields__ if f not in ("parent", "name")]
        assert fields[-1] == "dtype", module.__name__


@pytest.mark.parametrize("net", NETS)
def test_bfloat16_nets_keep_float32_params_grads_and_outputs(net):
    enc, dec, shape = pair(net, "bfloat16")
    x = jax.random.uniform(jax.random.key(2), (3, *shape))
    params = jax.eval_shape(lambda x: init(enc, dec, x), x)  # abstract: nothing compiles

    def loss(p):
        return jnp.mean(jnp.square(forward(enc, dec, p, x)[1].reshape(x.shape) - x))

    grads = jax.eval_shape(jax.grad(loss), params)
    assert floating_dtypes(params) == floating_dtypes(grads) == {jnp.dtype(jnp.float32)}
    jaxpr = jax.make_jaxpr(lambda p: forward(enc, dec, p, x))(params)
    assert [a.dtype for a in jaxpr.out_avals] == [jnp.float32, jnp.float32]
    assert "bf16" in str(jaxpr)  # the layers really compute in bfloat16


@pytest.mark.parametrize("net", NETS)
def test_bfloat16_outputs_are_close_to_the_float32_nets(net):
    (enc32, dec32, shape), (enc16, dec16, _) = pair(net, "float32"), pair(net, "bfloat16")
    x = jax.random.uniform(jax.random.key(2), (5, *shape))

    @jax.jit
    def both(x):
        params = init(enc32, dec32, x)  # one set of parameters: only the compute differs
        return forward(enc32, dec32, params, x), forward(enc16, dec16, params, x)

    (z32, out32), (z16, out16) = both(x)
    assert z16.dtype == out16.dtype == jnp.float32
    # bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.002 per operation); a few layers and a
    # recurrence of 6 steps stay within a few percent of the outputs' scale
    for a16, a32 in ((z16, z32), (out16, out32)):
        scale = float(jnp.abs(a32).max())
        np.testing.assert_allclose(a16, a32, atol=0.03 * scale + 1e-3)
    assert float(jnp.abs(out16 - out32).max()) > 0  # bfloat16 rounding shows: it is not the float32 program


@pytest.fixture
def x64():
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


@pytest.mark.parametrize("net", NETS)
def test_float64_inputs_stay_float64_at_dtype_float32(x64, net):
    enc, dec, shape = pair(net, "float32")
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(2, *shape)), jnp.float64)
    params = jax.eval_shape(lambda x: init(enc, dec, x), x)
    assert floating_dtypes(params) == {jnp.dtype(jnp.float32)}
    z, out = jax.eval_shape(lambda p, x: forward(enc, dec, p, x), params, x)
    assert z.dtype == out.dtype == jnp.float64


# -- shape checks at the entry points ---------------------------------------------------------------------

def _abstract_init(module, *args):
    return jax.eval_shape(module.init, jax.random.key(0), *args)


@pytest.mark.parametrize("module, args, message", [
    (MLPEncoder((8,), CODE), (jnp.ones(5),), r"MLPEncoder: the input x \[B, \.\.\.\] got an array shaped \(5,\)"),
    (MLPDecoder((8,), (8, 8, 1)), (jnp.ones((2, 3, 4)),), r"MLPDecoder: the code z \[B, K\] got an array shaped \(2, 3, 4\)"),
    (MLPEncoder((8,), CODE), (jnp.ones((2, 64)), jnp.ones((3, 10))), r"MLPEncoder: the condition shaped \(3, 10\)"),
    (ConvEncoder((4,), (), CODE), (jnp.ones((2, 8, 8)),), r"ConvEncoder: the images x \[B, H, W, C\] got an array shaped \(2, 8, 8\)"),
    (ConvDecoder((4,), (), (8, 8, 1)), (jnp.ones((2, 8, 1)),), r"ConvDecoder: the code z \[B, K\]"),
    (Conv1DEncoder((4,), (), CODE), (jnp.ones((2, 12)),), r"Conv1DEncoder: the sequences x \[B, T, C\] got an array shaped \(2, 12\)"),
    (Conv1DDecoder((4,), (), (12, 2)), (jnp.ones((2,)),), r"Conv1DDecoder: the code z \[B, K\]"),
    (RecurrentEncoder("gru", 8, CODE), (jnp.ones((2, 6)),), r"RecurrentEncoder: the sequences x \[B, T, C\] got an array shaped \(2, 6\)"),
    (RecurrentDecoder("lstm", 8, (6, 2)), (jnp.ones((2, 1, 4)),), r"RecurrentDecoder: the code z \[B, K\]"),
    (ViTEncoder(2, width=8, heads=2), (jnp.ones((2, 8, 8)),), r"ViTEncoder: the images x \[B, H, W, C\]"),
    (ViTEncoder(2, width=8, heads=2), (jnp.ones((2, 8, 8, 1)), None, jnp.zeros((2, 3, 1), jnp.int32)),
     r"ViTEncoder: the kept patch indices keep \[B, V\]"),
    (ViTDecoder((8, 8, 1), 2, width=8, heads=2), (jnp.ones((2, 4, 1)),), r"ViTDecoder: the code z \[B, K\]"),
    (MaskedTokenDecoder((8, 8, 1), 2, width=8, heads=2), (jnp.ones((2, 3, 8)), jnp.zeros((2, 4), jnp.int32)),
     r"MaskedTokenDecoder: keep shaped \(2, 4\) does not match"),
    (MLPDiscriminator((8,)), (jnp.ones((2, 3, 4)),), r"MLPDiscriminator: the codes z \[B, K\]"),
])
def test_wrong_shapes_fail_at_the_entry_point_naming_the_shapes(module, args, message):
    with pytest.raises(DataError, match=message):
        _abstract_init(module, *args)


def test_the_shape_check_fires_before_any_layer_is_called():
    import flax.linen as nn

    called = []

    def record(next_fun, args, kwargs, context):
        called.append(type(context.module).__name__)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record), pytest.raises(DataError, match=r"rank compatibility check"):  # chex's words
        _abstract_init(MLPDecoder((8,), (4,)), jnp.ones(3))
    assert called == ["MLPDecoder"]  # the decoder's own __call__ only: no Dense layer ran
