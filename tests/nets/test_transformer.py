"""Transformer nets: shapes for every image and patch size they accept, the patch-size error, bf16 params."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from aejax.errors import ConfigError
from aejax.nets import NetSpec
from aejax.nets.transformer import patchify, unpatchify

TINY = {"width": 16, "depth": 1, "heads": 2}


def _shapes(enc, dec, x):
    """Output shapes of encoder and decoder, traced (no compile): the code and the image."""
    z = jax.eval_shape(enc.apply, jax.eval_shape(enc.init, jax.random.key(0), x), x)
    out = jax.eval_shape(dec.apply, jax.eval_shape(dec.init, jax.random.key(0), z), z)
    return z.shape, out.shape


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (12, 8, 3), (6, 9, 2)])
@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_shapes_for_every_patch_size_that_divides_the_image(shape, positions):
    divisors = [p for p in range(1, min(shape[:2]) + 1) if shape[0] % p == 0 and shape[1] % p == 0]
    x = jax.ShapeDtypeStruct((3, *shape), jnp.float32)
    for p in divisors:
        enc, dec = NetSpec("transformer", patch_size=p, positions=positions, **TINY).encoder_decoder(shape, 5)
        assert _shapes(enc, dec, x) == ((3, 5), (3, *shape)), p
        tokens = jax.eval_shape(enc.clone(code_size=0).apply, jax.eval_shape(enc.init, jax.random.key(0), x), x)
        assert tokens.shape == (3, (shape[0] // p) * (shape[1] // p), 16), p


@pytest.mark.parametrize("shape, patch_size", [((8, 8, 1), 2), ((8, 8, 1), 8), ((12, 8, 3), 4), ((6, 9, 2), 3)])
def test_patches_are_the_image_squares_row_major(shape, patch_size):
    x = np.random.default_rng(0).uniform(size=(3, *shape)).astype(np.float32)
    patches = np.asarray(patchify(jnp.asarray(x), patch_size))
    grid_w = shape[1] // patch_size
    assert patches.shape == (3, (shape[0] // patch_size) * grid_w, patch_size * patch_size * shape[2])
    for i in range(patches.shape[1]):
        r, c = divmod(i, grid_w)
        square = x[:, r * patch_size:(r + 1) * patch_size, c * patch_size:(c + 1) * patch_size]
        np.testing.assert_array_equal(patches[:, i], square.reshape(3, -1))
    np.testing.assert_array_equal(unpatchify(jnp.asarray(patches), patch_size, shape), x)


def test_patch_size_that_does_not_divide_the_image_is_a_config_error():
    with pytest.raises(ConfigError, match=r"patch size 3 does not divide the 8x8 image; set model.patch_size to one "
                                          r"of \[1, 2, 4, 8\]"):
        NetSpec("transformer", patch_size=3, **TINY).encoder_decoder((8, 8, 1), 4)
    from aejax.config import get_experiment_config
    from aejax.models import model_from_options

    for kind in ("undercomplete", "vae", "mae"):  # from the command line's keys, as the run setup builds it
        config = get_experiment_config("digits_ae", {"model.kind": kind, "model.net": "transformer",
                                                     "model.patch_size": 3})
        options = {k: v for k, v in config.model.to_dict().items() if k != "kind"}
        with pytest.raises(ConfigError, match="patch size 3 does not divide the 8x8 image"):
            model_from_options(kind, input_shape=(8, 8, 1), num_classes=10, **options)


def test_bfloat16_computes_in_bfloat16_and_keeps_params_and_optimizer_state_float32():
    from aejax.models import model_from_options

    model = model_from_options("undercomplete", input_shape=(8, 8, 1), num_classes=10, code_size=4,
                               net="transformer", patch_size=2, dtype="bfloat16", **TINY)
    batch = {"x": jax.random.uniform(jax.random.key(0), (4, 8, 8, 1)), "y": jnp.zeros(4, jnp.int32)}
    # dtypes are properties of the traced program: evaluated abstractly, nothing compiles
    params = jax.eval_shape(model.init, jax.random.key(1), batch)
    grads = jax.eval_shape(jax.grad(lambda p: model.loss(p, batch, jax.random.key(2), {})[0]), params)
    opt_state = jax.eval_shape(optax.adam(1e-3).init, params)
    for tree in (params, grads, opt_state):
        assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(tree) if hasattr(leaf, "dtype")
                and jnp.issubdtype(leaf.dtype, jnp.floating)} == {jnp.dtype(jnp.float32)}
    jaxpr = jax.make_jaxpr(lambda p: model.reconstruct(p, batch))(params)
    assert jaxpr.out_avals[0].dtype == jnp.float32
    assert "bf16" in str(jaxpr)  # the layers really compute in bfloat16
