import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.errors import ConfigError, DataError
from aejax.models import model_from_options
from aejax.objectives import bernoulli_nll, squared_error


def _model(likelihood="mse", net="mlp"):
    conv = {"channels": (4, 8)} if net == "conv" else {}  # an option only the conv nets take
    return model_from_options("undercomplete", input_shape=(8, 8, 1), num_classes=10, code_size=4, net=net,
                              hidden=(16,), likelihood=likelihood, **conv)


def _numpy_forward(params, x):
    """The MLP autoencoder's forward pass, written again in numpy (float64)."""
    gelu = lambda a: 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3)))
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    h = x.reshape(len(x), -1)
    h = gelu(h @ p["encoder"]["Dense_0"]["kernel"] + p["encoder"]["Dense_0"]["bias"])
    z = h @ p["encoder"]["code"]["kernel"] + p["encoder"]["code"]["bias"]
    h = gelu(z @ p["decoder"]["Dense_0"]["kernel"] + p["decoder"]["Dense_0"]["bias"])
    return (h @ p["decoder"]["out"]["kernel"] + p["decoder"]["out"]["bias"]).reshape(x.shape)


@pytest.mark.parametrize("likelihood", ["mse", "bernoulli"])
def test_loss_matches_hand_computation(likelihood):
    model = _model(likelihood)
    x = np.random.default_rng(0).uniform(size=(5, 8, 8, 1)).astype(np.float32)
    params = model.init(jax.random.key(0), {"x": x})
    loss, aux = model.loss(params, {"x": jnp.asarray(x)}, jax.random.key(1), {})
    logits = _numpy_forward(params, x.astype(np.float64))
    if likelihood == "mse":
        expected = np.mean((1 / (1 + np.exp(-logits)) - x) ** 2)
    else:
        p = 1 / (1 + np.exp(-logits))
        expected = np.mean(-(x * np.log(p) + (1 - x) * np.log(1 - p)))
    np.testing.assert_allclose(float(loss), expected, rtol=2e-4)
    assert float(aux["recon"]) == float(loss)


def test_objectives_against_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 4, 2)), rng.uniform(size=(3, 4, 2))
    np.testing.assert_allclose(squared_error(jnp.asarray(a), jnp.asarray(b)), ((a - b) ** 2).sum(axis=(1, 2)), rtol=1e-5)
    p = 1 / (1 + np.exp(-a))
    bce = -(b * np.log(p) + (1 - b) * np.log(1 - p))
    np.testing.assert_allclose(bernoulli_nll(jnp.asarray(a), jnp.asarray(b)), bce.sum(axis=(1, 2)), rtol=1e-5)


def test_reconstruct_is_in_unit_range_and_shaped():
    model = _model(net="conv")
    x = jnp.ones((2, 8, 8, 1)) * 0.5
    params = model.init(jax.random.key(0), {"x": x})
    x_hat = model.reconstruct(params, {"x": x})
    assert x_hat.shape == x.shape and float(x_hat.min()) >= 0 and float(x_hat.max()) <= 1


def test_code_wider_than_input_is_rejected():
    with pytest.raises(ConfigError, match="narrower than its input"):
        model_from_options("undercomplete", input_shape=(8, 8, 1), num_classes=10, code_size=64)


def test_unknown_option_and_kind():
    with pytest.raises(ConfigError, match="unknown config key 'model.beta'"):
        model_from_options("undercomplete", input_shape=(8, 8, 1), num_classes=10, code_size=4, beta=2.0)
    with pytest.raises(ConfigError, match="unknown model kind"):
        model_from_options("sparse_typo", input_shape=(8, 8, 1), num_classes=10, code_size=4)


def test_bernoulli_rejects_data_outside_unit_interval():
    with pytest.raises(DataError, match="Bernoulli likelihood needs values in \\[0, 1\\]"):
        _model("bernoulli").check_data(np.full((2, 8, 8, 1), 2.0, np.float32))
    _model("mse").check_data(np.full((2, 8, 8, 1), 2.0, np.float32))  # fine for squared error


def test_wrong_label_count():
    with pytest.raises(DataError, match="labels must have shape"):
        _model().check_data(np.zeros((3, 8, 8, 1), np.float32), np.zeros(2, np.int32))
