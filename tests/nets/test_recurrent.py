"""Recurrent (LSTM, GRU) sequence nets: shapes, one scan over time, teacher forcing, the kinds, errors."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.errors import ConfigError
from aejax.models import model_from_options
from aejax.nets import NetSpec

SMALL = {"rnn_hidden": 4}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("length,channels", [(1, 1), (5, 2), (33, 3)])
@pytest.mark.parametrize("bidirectional,autoregressive", [(False, False), (True, True)])
def test_shapes_for_every_length_and_channel_count(cell, length, channels, bidirectional, autoregressive):
    spec = NetSpec(net=cell, bidirectional=bidirectional, autoregressive=autoregressive, **SMALL)
    encoder, decoder = spec.encoder_decoder((length, channels), 3, encoder_width=6)
    x = jnp.ones((2, length, channels))
    z, _ = jax.eval_shape(lambda: encoder.init_with_output(jax.random.key(0), x))  # shapes only: no compile
    out, _ = jax.eval_shape(lambda: decoder.init_with_output(jax.random.key(1), jnp.ones((2, 3))))
    assert z.shape == (2, 6)  # encoder_width = 2 * code_size, as a VAE asks
    assert out.shape == (2, length, channels)


def _loss_jaxpr(net, length):
    model = model_from_options("undercomplete", input_shape=(length, 2), num_classes=1, code_size=3, net=net,
                               **SMALL)
    batch = {"x": jnp.full((4, length, 2), 0.5), "y": jnp.zeros(4, jnp.int32)}
    params = jax.eval_shape(model.init, jax.random.key(0), batch)  # abstract: nothing runs
    return jax.make_jaxpr(lambda p: model.loss(p, batch, jax.random.key(1), {})[0])(params).jaxpr


def _primitives(jaxpr):
    names = []
    for eqn in jaxpr.eqns:
        names.append(eqn.primitive.name)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            names += _primitives(sub)
    return names


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_recurrent_step_is_one_scan_whatever_the_length(cell):
    short, long = _loss_jaxpr(cell, 5), _loss_jaxpr(cell, 60)
    assert "scan" in _primitives(short)
    # a Python loop over time would add equations per step; a scan's program is the same size for any T
    assert len(_primitives(short)) == len(_primitives(long))
    assert len(short.eqns) == len(long.eqns)


def _decode_three_ways(spec, input_shape, code_size=3):
    """One compiled program: free-running output, teacher forcing on it, and on it + 1."""
    _, decoder = spec.encoder_decoder(input_shape, code_size)

    @jax.jit
    def run(key):
        z = jax.random.normal(key, (2, code_size))
        params = decoder.init(jax.random.key(2), z)
        free = decoder.apply(params, z)
        return free, decoder.apply(params, z, targets=free), decoder.apply(params, z, targets=free + 1.0)

    return run(jax.random.key(0))


def test_teacher_forcing_feeds_the_targets_and_shares_the_free_running_parameters():
    free, own, other = _decode_three_ways(NetSpec(net="gru", autoregressive=True, **SMALL), (9, 2))
    # fed its own free-running predictions as targets, teacher forcing reproduces them exactly
    np.testing.assert_allclose(own, free, atol=1e-6)
    # other targets change every step after the first (the first step sees zeros either way)
    np.testing.assert_allclose(other[:, 0], free[:, 0], atol=1e-6)
    assert np.all(np.abs(np.asarray(other[:, 1:] - free[:, 1:])).max(axis=(0, 2)) > 1e-4)


def test_teacher_forcing_needs_an_autoregressive_decoder_and_matching_targets():
    _, decoder = NetSpec(net="lstm", **SMALL).encoder_decoder((4, 1), 3)
    z, targets = jnp.ones((2, 3)), jnp.ones((2, 4, 1))
    with pytest.raises(ConfigError, match="autoregressive"):
        jax.eval_shape(lambda: decoder.init(jax.random.key(0), z, targets=targets))
    _, decoder = NetSpec(net="lstm", autoregressive=True, **SMALL).encoder_decoder((4, 1), 3)
    with pytest.raises(ConfigError, match="targets must be shaped"):
        jax.eval_shape(lambda: decoder.init(jax.random.key(0), z, targets=targets[:, :3]))


def _check_kind_on_sequences(kind, net, **options):
    model = model_from_options(kind, input_shape=(7, 2), num_classes=1, code_size=3, net=net, **options)
    x = jax.random.uniform(jax.random.key(0), (4, 7, 2))
    batch = {"x": x, "y": jnp.zeros(4, jnp.int32)}
    model.check_data(np.asarray(x), np.zeros(4, np.int32))
    hp = {k: jnp.asarray(v) for k, v in model.default_hp().items()}

    @jax.jit
    def run(batch):  # one compile for everything the kind does
        params = model.init(jax.random.key(1), batch)
        loss, grads = jax.value_and_grad(lambda p: model.loss(p, batch, jax.random.key(2), hp)[0])(params)
        return loss, grads, model.reconstruct(params, batch), model.encode(params, batch)

    loss, grads, x_hat, z = run(batch)
    assert np.isfinite(float(loss))
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))
    assert x_hat.shape == (4, 7, 2) and z.shape == (4, 3)


@pytest.mark.parametrize("kind", ["undercomplete", "denoising", "vae", "sparse", "contractive"])
def test_every_layout_agnostic_kind_takes_sequences(kind):
    _check_kind_on_sequences(kind, "mlp", hidden=(8,), **({"likelihood": "gaussian"} if kind == "vae" else {}))


def test_a_sequence_vae_trains_with_a_recurrent_net():
    _check_kind_on_sequences("vae", "gru", likelihood="gaussian", **SMALL)


def test_recurrent_nets_reject_images_and_image_nets_reject_sequences():
    with pytest.raises(ConfigError, match=r"sequences shaped \(T, C\)"):
        NetSpec(net="lstm").encoder_decoder((8, 8, 1), 4)
    with pytest.raises(ConfigError, match="conv1d"):
        NetSpec(net="conv").encoder_decoder((40, 1), 4)
    with pytest.raises(ConfigError, match=r"images shaped \(H, W, C\)"):
        NetSpec(net="transformer").encoder_decoder((40, 1), 4)
    with pytest.raises(ConfigError, match="images shaped"):
        model_from_options("mae", input_shape=(40, 1), num_classes=1)
    with pytest.raises(ConfigError, match="rnn_hidden"):
        NetSpec(net="gru", rnn_hidden=0)
