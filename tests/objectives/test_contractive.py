"""contractive_penalty against finite differences (float64), the closed form, Hutchinson, and bad input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_fails_naming

from aejax.errors import ConfigError
from aejax.nets import ConvEncoder, MLPEncoder
from aejax.objectives import SigmoidLayer, contractive_penalty, contractive_penalty_sigmoid_layer

EXACT = ("jacfwd", "jacrev", "auto")


@pytest.fixture
def x64():
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


def _f64(tree):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), tree)


def _encoders():
    """(name, module, input shape): an MLP (code narrower than input), a wide MLP (code wider), a conv net."""
    return [("mlp", MLPEncoder((12,), 5, "tanh"), (6, 6, 1)),
            ("mlp_wide_code", MLPEncoder((9,), 20, "gelu"), (2, 2, 1)),
            ("conv", ConvEncoder((3, 4), (7,), 6, "gelu"), (6, 6, 2))]


def _setup(module, shape, seed=0):
    x = jax.random.uniform(jax.random.key(seed), (3, *shape), jnp.float64)
    params = _f64(module.init(jax.random.key(seed + 1), x)["params"])
    return params, x


def _fd_frobenius(encode, x, eps=1e-5):
    """Squared Frobenius norm of a central finite-difference Jacobian, per example (numpy, float64)."""
    b, shape = x.shape[0], x.shape[1:]
    d = int(np.prod(shape))
    basis = np.eye(d).reshape(d, *shape)
    # Every example's 2 D perturbed copies go through the encoder as one batch.
    plus = np.asarray(encode(jnp.asarray((x[:, None] + eps * basis).reshape(b * d, *shape)))).reshape(b, d, -1)
    minus = np.asarray(encode(jnp.asarray((x[:, None] - eps * basis).reshape(b * d, *shape)))).reshape(b, d, -1)
    jac = (plus - minus) / (2 * eps)  # [B, D, K]
    return np.sum(jac ** 2, axis=(1, 2))


@pytest.mark.parametrize("name", ["mlp", "mlp_wide_code", "conv"])
def test_exact_methods_match_finite_differences(x64, name):
    module, shape = {n: (m, s) for n, m, s in _encoders()}[name]
    params, x = _setup(module, shape)
    encode = jax.jit(lambda xb: module.apply({"params": params}, xb))
    expected = _fd_frobenius(encode, np.asarray(x))
    for method in EXACT:
        got = np.asarray(jax.jit(lambda x: contractive_penalty(encode, x, method=method))(x))
        assert got.shape == (3,) and got.dtype == np.float64
        rel = np.abs(got - expected) / expected
        assert np.all(rel < 1e-6), (method, rel)


def test_closed_form_matches_autodiff(x64):
    x = jax.random.uniform(jax.random.key(0), (4, 5, 5, 1), jnp.float64)
    W = jax.random.normal(jax.random.key(1), (25, 7), jnp.float64)
    b = jax.random.normal(jax.random.key(2), (7,), jnp.float64)
    layer = SigmoidLayer(W, b)
    closed = contractive_penalty_sigmoid_layer(W, b, x)
    np.testing.assert_allclose(contractive_penalty(layer, x, method="closed_form"), closed, rtol=1e-12)
    np.testing.assert_allclose(contractive_penalty(layer, x, method="auto"), closed, rtol=1e-12)
    for method in ("jacfwd", "jacrev"):
        np.testing.assert_allclose(contractive_penalty(layer, x, method=method), closed, rtol=1e-10)
    expected = _fd_frobenius(layer, np.asarray(x))
    np.testing.assert_array_less(np.abs(np.asarray(closed) - expected) / expected, 1e-6)


@pytest.mark.parametrize("name", ["mlp", "mlp_wide_code"])  # probes on the code side, then the input side
def test_hutchinson_is_unbiased(x64, name):
    module, shape = {n: (m, s) for n, m, s in _encoders()}[name]
    params, x = _setup(module, shape)
    encode = lambda xb: module.apply({"params": params}, xb)
    exact = np.asarray(contractive_penalty(encode, x, method="jacrev"))
    n = 4000
    keys = jax.random.split(jax.random.key(7), n)
    est = np.asarray(jax.jit(jax.vmap(
        lambda k: contractive_penalty(encode, x, method="hutchinson", key=k, num_probes=2)))(keys))
    mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(se > 0)
    np.testing.assert_array_less(np.abs(mean - exact), 3 * se)


def test_hutchinson_more_probes_lower_variance(x64):
    module, shape = _encoders()[0][1:]
    params, x = _setup(module, shape)
    encode = lambda xb: module.apply({"params": params}, xb)
    keys = jax.random.split(jax.random.key(3), 500)
    var = [np.var(np.asarray(jax.vmap(lambda k: contractive_penalty(
        encode, x, method="hutchinson", key=k, num_probes=p))(keys)), axis=0) for p in (1, 8)]
    assert np.all(var[1] < var[0] / 3)


@pytest.mark.parametrize("name", ["mlp", "conv"])
def test_parameter_gradients_agree_between_exact_methods(x64, name):
    module, shape = {n: (m, s) for n, m, s in _encoders()}[name]
    params, x = _setup(module, shape)

    def objective(p, method):
        return jnp.sum(contractive_penalty(lambda xb: module.apply({"params": p}, xb), x, method=method))

    grads = [jax.jit(jax.grad(objective), static_argnums=1)(params, m) for m in EXACT]
    for g in grads[1:]:
        chex.assert_trees_all_close(g, grads[0], rtol=1e-9, atol=1e-12)
    assert any(float(jnp.abs(leaf).max()) > 0 for leaf in jax.tree_util.tree_leaves(grads[0]))


def test_closed_form_parameter_gradient_matches_autodiff(x64):
    x = jax.random.uniform(jax.random.key(0), (4, 16), jnp.float64).reshape(4, 4, 4, 1)
    W = jax.random.normal(jax.random.key(1), (16, 6), jnp.float64)
    b = jnp.zeros(6, jnp.float64)
    g_closed = jax.grad(lambda W, b: jnp.sum(contractive_penalty(SigmoidLayer(W, b), x, method="closed_form")),
                        argnums=(0, 1))(W, b)
    g_rev = jax.grad(lambda W, b: jnp.sum(contractive_penalty(SigmoidLayer(W, b), x, method="jacrev")),
                     argnums=(0, 1))(W, b)
    chex.assert_trees_all_close(g_closed, g_rev, rtol=1e-9, atol=1e-12)


def test_works_under_jit_in_float32():
    module = MLPEncoder((8,), 3, "sigmoid")
    x = jax.random.uniform(jax.random.key(0), (5, 4, 4, 1))
    params = module.init(jax.random.key(1), x)["params"]
    f = jax.jit(lambda p, x: contractive_penalty(lambda xb: module.apply({"params": p}, xb), x))
    out = f(params, x)
    assert out.shape == (5,) and out.dtype == jnp.float32 and bool(jnp.all(out > 0))


def test_unknown_method_is_an_error():
    with pytest.raises(ConfigError, match="unknown contractive method 'jacobian'"):
        contractive_penalty(lambda x: x.reshape(x.shape[0], -1), jnp.ones((2, 3)), method="jacobian")


def test_hutchinson_without_key_is_an_error():
    with pytest.raises(ConfigError, match="needs key"):
        contractive_penalty(lambda x: x, jnp.ones((2, 3)), method="hutchinson")


def test_hutchinson_needs_a_positive_probe_count():
    with pytest.raises(ConfigError, match="num_probes"):
        contractive_penalty(lambda x: x, jnp.ones((2, 3)), method="hutchinson", key=jax.random.key(0),
                            num_probes=0)


def test_closed_form_on_another_encoder_is_an_error():
    module = MLPEncoder((8,), 3, "sigmoid")
    x = jnp.ones((2, 4, 4, 1))
    params = module.init(jax.random.key(1), x)["params"]
    with pytest.raises(ConfigError, match="only to a single sigmoid layer"):
        contractive_penalty(lambda xb: module.apply({"params": params}, xb), x, method="closed_form")


def test_closed_form_shape_mismatch_is_an_error():
    with pytest.raises(ConfigError, match="inputs but x has"):
        contractive_penalty_sigmoid_layer(jnp.ones((5, 2)), jnp.zeros(2), jnp.ones((3, 4)))


# -- shapes checked at the entry points (chex), and every method with and without jit ------------------

@pytest.mark.parametrize("call, shapes", [
    (lambda: contractive_penalty(lambda x: x, jnp.ones(6)), ["(6,)", "[B, *input_shape]", "contractive_penalty"]),
    (lambda: contractive_penalty(lambda x: x, jnp.ones((2, 4, 4, 1))), ["(1, 4, 4, 1)", "codes [B, K]"]),
    (lambda: contractive_penalty(lambda x: x.sum(-1), jnp.ones((2, 6)), method="jacrev"), ["(1,)", "codes [B, K]"]),
    (lambda: contractive_penalty_sigmoid_layer(jnp.ones(5), jnp.zeros(2), jnp.ones((3, 5))), ["(5,)", "W must be"]),
    (lambda: contractive_penalty_sigmoid_layer(jnp.ones((5, 2)), jnp.zeros(3), jnp.ones((3, 5))),
     ["(3,)", "(2)", "b must be"]),
    (lambda: contractive_penalty(SigmoidLayer(jnp.ones((5, 2)), jnp.zeros(2)), jnp.ones(5)), ["(5,)", "batch"]),
])
def test_wrong_shapes_fail_naming_the_shapes(call, shapes):
    assert_fails_naming(call, shapes)


class JitAndEagerTest(chex.TestCase):
    """Every method gives the closed form of a sigmoid layer, jitted and not (Hutchinson: its mean)."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_methods_agree_with_the_closed_form(self):
        x = jax.random.uniform(jax.random.key(0), (3, 4, 4, 1))
        W = jax.random.normal(jax.random.key(1), (16, 5)) * 0.5
        b = jax.random.normal(jax.random.key(2), (5,))
        h = np.asarray(jax.nn.sigmoid(x.reshape(3, -1) @ W + b), np.float64)
        expected = np.sum((h * (1 - h)) ** 2 * np.sum(np.asarray(W, np.float64) ** 2, axis=0), axis=-1)
        encode = lambda xb: jax.nn.sigmoid(xb.reshape(xb.shape[0], -1) @ W + b)  # a plain function
        got = {m: self.variant(lambda x, m=m: contractive_penalty(encode, x, method=m))(x)
               for m in ("jacfwd", "jacrev", "auto")}
        got["closed_form"] = self.variant(lambda W, b, x: contractive_penalty(SigmoidLayer(W, b), x))(W, b, x)
        chex.assert_trees_all_close(got, {m: expected.astype(np.float32) for m in got}, rtol=1e-5)
        hutchinson = self.variant(lambda x, k: contractive_penalty(encode, x, method="hutchinson", key=k,
                                                                   num_probes=512))(x, jax.random.key(3))
        np.testing.assert_allclose(hutchinson, expected, rtol=0.15)  # 512 probes: a few percent off
