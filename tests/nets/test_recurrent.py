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


# -- The recurrences against hand-written references -----------------------------------------------
# Shapes alone let a dropped LSTM cell state or a dropped direction pass; these compare every output with
# the cell equations written out in numpy (float64) from the same parameters.


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _np(tree):
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


def _lstm_step(p, carry, x_BxF):
    """flax's (Optimized)LSTMCell: input kernels ii/if/ig/io, hidden kernels with biases hi/hf/hg/ho; carry (c, h)."""
    c, h = carry
    gate = lambda g: x_BxF @ p[f"i{g}"]["kernel"] + h @ p[f"h{g}"]["kernel"] + p[f"h{g}"]["bias"]  # noqa: E731
    i, f, g, o = _sigmoid(gate("i")), _sigmoid(gate("f")), np.tanh(gate("g")), _sigmoid(gate("o"))
    c = f * c + i * g
    h = o * np.tanh(c)
    return (c, h), h


def _gru_step(p, h, x_BxF):
    """flax's GRUCell: r and z gates, the candidate n with r applied to the hidden term; carry h."""
    r = _sigmoid(x_BxF @ p["ir"]["kernel"] + p["ir"]["bias"] + h @ p["hr"]["kernel"])
    z = _sigmoid(x_BxF @ p["iz"]["kernel"] + p["iz"]["bias"] + h @ p["hz"]["kernel"])
    n = np.tanh(x_BxF @ p["in"]["kernel"] + p["in"]["bias"] + r * (h @ p["hn"]["kernel"] + p["hn"]["bias"]))
    h = (1.0 - z) * n + z * h
    return h, h


def _run(cell, p, x_BxTxF, carry, reverse=False):
    """The final carry and the per-step outputs [B, T, H] of a cell over time."""
    step = _lstm_step if cell == "lstm" else _gru_step
    outputs = [None] * x_BxTxF.shape[1]
    order = range(x_BxTxF.shape[1])
    for t in (reversed(order) if reverse else order):
        carry, outputs[t] = step(p, carry, x_BxTxF[:, t])
    return carry, np.stack(outputs, axis=1)


def _zeros(cell, batch, hidden):
    zeros = np.zeros((batch, hidden))
    return (zeros, zeros) if cell == "lstm" else zeros


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_encoder_code_is_the_final_state_of_every_part_and_direction(cell, bidirectional):
    """code = Dense([c, h] of the LSTM, or h of the GRU; forward then backward when bidirectional)."""
    hidden, length = 5, 9
    encoder, _ = NetSpec(net=cell, bidirectional=bidirectional, rnn_hidden=hidden).encoder_decoder((length, 2), 3)
    x = jax.random.normal(jax.random.key(4), (3, length, 2))
    params = encoder.init(jax.random.key(5), x)
    code = np.asarray(encoder.apply(params, x), np.float64)
    p, xs = _np(params["params"]), np.asarray(x, np.float64)
    parts = jax.tree_util.tree_leaves(_run(cell, p["cell"], xs, _zeros(cell, 3, hidden))[0])
    if bidirectional:
        parts += jax.tree_util.tree_leaves(_run(cell, p["cell_backward"], xs, _zeros(cell, 3, hidden), reverse=True)[0])
    state = np.concatenate(parts, axis=-1)
    assert p["code"]["kernel"].shape[0] == state.shape[1] == hidden * (2 if cell == "lstm" else 1) * (1 + bidirectional)
    np.testing.assert_allclose(code, state @ p["code"]["kernel"] + p["code"]["bias"], atol=2e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_every_time_step_reaches_the_code(cell, bidirectional):
    """Changing one step, first or last, changes the code: the forward pass ends on the last step, the
    backward one on the first (a unidirectional encoder sees the first step through its state)."""
    encoder, _ = NetSpec(net=cell, bidirectional=bidirectional, rnn_hidden=6).encoder_decoder((8, 1), 4)
    x = jax.random.normal(jax.random.key(1), (2, 8, 1))
    params = encoder.init(jax.random.key(2), x)
    base = np.asarray(encoder.apply(params, x))
    for t in (0, 7):
        moved = np.asarray(encoder.apply(params, x.at[:, t].add(1.0)))
        assert np.abs(moved - base).max() > 1e-3, t


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("autoregressive", [False, True])
def test_the_decoder_matches_its_recurrence(cell, autoregressive):
    """Initial state tanh(Dense(code)) ([c, h] halves for the LSTM), the code fed at every step (with the
    previous prediction, zeros first, when autoregressive), a Dense readout of each step's h."""
    hidden, length, channels = 4, 6, 2
    _, decoder = NetSpec(net=cell, autoregressive=autoregressive, rnn_hidden=hidden).encoder_decoder(
        (length, channels), 3)
    z = jax.random.normal(jax.random.key(6), (2, 3))
    params = decoder.init(jax.random.key(7), z)
    out = np.asarray(decoder.apply(params, z), np.float64)
    p, zs = _np(params["params"]), np.asarray(z, np.float64)
    start = np.tanh(zs @ p["init_state"]["kernel"] + p["init_state"]["bias"])
    carry = (start[:, :hidden], start[:, hidden:]) if cell == "lstm" else start
    readout = lambda h, q: h @ q["kernel"] + q["bias"]  # noqa: E731
    if not autoregressive:
        _, h_BxTxH = _run(cell, p["cell"], np.repeat(zs[:, None], length, axis=1), carry)
        expected = readout(h_BxTxH, p["readout"])
    else:
        step = _lstm_step if cell == "lstm" else _gru_step
        previous, outputs = np.zeros((2, channels)), []
        for _ in range(length):
            carry, h = step(p["step"]["cell"], carry, np.concatenate([zs, previous], axis=-1))
            previous = readout(h, p["step"]["readout"])
            outputs.append(previous)
        expected = np.stack(outputs, axis=1)
    np.testing.assert_allclose(out, expected, atol=2e-5)
