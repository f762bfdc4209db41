"""Mixed precision for the conv nets: bfloat16 compute, float32 parameters, optimizer state and outputs."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from aejax.errors import ConfigError
from aejax.models import model_from_options

TINY = {"channels": (4, 8), "hidden": (16,), "code_size": 4, "conv_impl": "im2col"}


def _model(dtype, impl="im2col"):
    return model_from_options("undercomplete", input_shape=(8, 8, 1), num_classes=10, net="conv", dtype=dtype,
                              **{**TINY, "conv_impl": impl})


@pytest.fixture(scope="module")
def batch():
    return {"x": jax.random.uniform(jax.random.key(0), (6, 8, 8, 1)), "y": jnp.zeros(6, jnp.int32)}


@pytest.mark.parametrize("impl", ["im2col", "xla"])
def test_bfloat16_conv_keeps_params_grads_and_optimizer_state_float32(batch, impl):
    model = _model("bfloat16", impl)
    params = jax.eval_shape(model.init, jax.random.key(1), batch)  # abstract: nothing compiles
    grads = jax.eval_shape(jax.grad(lambda p: model.loss(p, batch, jax.random.key(2), {})[0]), params)
    opt_state = jax.eval_shape(optax.adam(1e-3).init, params)
    for tree in (params, grads, opt_state):
        assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(tree)
                if jnp.issubdtype(leaf.dtype, jnp.floating)} == {jnp.dtype(jnp.float32)}
    jaxpr = jax.make_jaxpr(lambda p: model.decode_logits(p, model.encode(p, batch)))(params)
    assert jaxpr.out_avals[0].dtype == jnp.float32
    assert "bf16" in str(jaxpr)  # the layers really compute in bfloat16


def test_bfloat16_conv_output_is_float32_and_close_to_the_float32_nets(batch):
    fp32, bf16 = _model("float32"), _model("bfloat16")
    params = jax.jit(fp32.init)(jax.random.key(1), batch)  # the same parameters serve both: only the compute differs
    outputs = jax.jit(lambda p: [(m.reconstruct(p, batch), m.encode(p, batch)) for m in (fp32, bf16)])
    (x32, code32), (x16, code16) = outputs(params)  # one compile instead of one per eager op
    assert x16.dtype == jnp.float32 and code16.dtype == jnp.float32
    np.testing.assert_allclose(x16, x32, atol=2e-2)
    np.testing.assert_allclose(code16, code32, atol=5e-2 * float(jnp.abs(code32).max()))
    assert float(jnp.abs(x16 - x32).max()) > 0  # bfloat16 rounding shows: it is not the float32 program


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_unsupported_dtype_is_a_config_error(net):
    with pytest.raises(ConfigError, match="unknown model.dtype 'float16'"):
        options = TINY if net == "conv" else {"hidden": (16,), "code_size": 4}
        model_from_options("undercomplete", input_shape=(8, 8, 1), num_classes=10, net=net, dtype="float16", **options)


def test_every_net_takes_bfloat16_from_the_config():
    from aejax.config import get_experiment_config
    from aejax.train.setup import setup_run

    run = setup_run(get_experiment_config("digits_ae", {"model.dtype": "bfloat16"}))
    assert run.model.encoder.dtype == "bfloat16" and run.model.decoder.dtype == "bfloat16"
