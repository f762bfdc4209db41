"""The masked autoencoder: visible-patch count, masked-only loss, masks from the key."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.models import model_from_options
from aejax.models.mae import masked_from_keep, masked_patch_error
from aejax.nets.transformer import TransformerBlock, ViTEncoder


def tiny_mae(**options):
    # 8x8 digits-like images, 2x2 patches: N = 16 patches
    return model_from_options("mae", input_shape=(8, 8, 1), num_classes=10, net="transformer", patch_size=2,
                              width=16, depth=1, heads=2, decoder_width=16, decoder_depth=1, decoder_heads=2,
                              **options)


def batch_of(n=4, seed=0):
    return {"x": jax.random.uniform(jax.random.key(seed), (n, 8, 8, 1)), "y": jnp.zeros(n, jnp.int32)}


@pytest.fixture(scope="module")
def trained_pieces():
    """Params and jitted predict/loss for both target kinds (norm_pix_loss changes no parameter): compiled once."""
    models = {norm: tiny_mae(norm_pix_loss=norm) for norm in (False, True)}
    batch = batch_of()
    params = jax.jit(models[False].init)(jax.random.key(1), batch)
    predict = jax.jit(models[False].predict_patches)
    losses = {norm: jax.jit(lambda x, key, m=m: m.loss(params, {"x": x, "y": batch["y"]}, key, {}))
              for norm, m in models.items()}
    return models, batch, params, predict, losses


@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.3])
def test_encoder_receives_exactly_round_one_minus_ratio_times_n_patches(ratio):
    model = tiny_mae(mask_ratio=ratio)
    batch = batch_of()
    params = jax.eval_shape(model.init, jax.random.key(1), batch)  # shapes are all this test needs
    seen = []

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, TransformerBlock) and isinstance(context.module.parent, ViTEncoder):
            seen.append(args[0].shape)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        jax.eval_shape(lambda p: model.loss(p, batch, jax.random.key(2), {}), params)
    assert seen == [(4, round((1 - ratio) * 16), 16)]


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_loss_counts_only_masked_patches(norm_pix_loss, trained_pieces):
    models, batch, params, predict, losses = trained_pieces
    model, key = models[norm_pix_loss], jax.random.key(3)
    x = batch["x"]
    keep = model.keep_indices(key, 4)
    masked = np.asarray(masked_from_keep(keep, 16))
    loss_fn = lambda x: losses[norm_pix_loss](x, key)
    pred = model.outputs(predict(params, x, keep))
    target = model.targets(x)

    # the loss the trainer uses is the squared error averaged over masked patches only
    per_patch = np.mean(np.square(np.asarray(pred) - np.asarray(target)), axis=-1)
    reference = np.mean([per_patch[b][masked[b]].mean() for b in range(4)])
    loss, aux = loss_fn(x)
    np.testing.assert_allclose(loss, reference, rtol=1e-5)
    np.testing.assert_allclose(aux["recon"], loss)

    visible, hidden = int(keep[0, 0]), int(np.flatnonzero(masked[0])[0])
    base = masked_patch_error(pred, target, masked)
    np.testing.assert_array_equal(masked_patch_error(pred, target.at[0, visible].add(0.5), masked), base)
    assert masked_patch_error(pred, target.at[0, hidden].add(0.5), masked)[0] != base[0]

    # through the whole loss: a change in a masked patch of x reaches only the target, and does change the loss
    p = 2
    row, col = divmod(hidden, 4)
    x2 = x.at[0, row * p:(row + 1) * p, col * p:(col + 1) * p].set(jnp.array([[0.9, 0.1], [0.2, 0.8]])[:, :, None])
    np.testing.assert_array_equal(predict(params, x2, keep), predict(params, x, keep))
    assert loss_fn(x2)[0] != loss


def test_masks_come_from_the_key(trained_pieces):
    models, batch, _, _, losses = trained_pieces
    model = models[False]
    k1, k2 = jax.random.key(7), jax.random.key(8)
    a, b, c = model.keep_indices(k1, 8), model.keep_indices(k1, 8), model.keep_indices(k2, 8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (8, 4)
    assert all(len(set(row)) == 4 and 0 <= min(row) and max(row) < 16 for row in np.asarray(a).tolist())
    assert len({tuple(sorted(row)) for row in np.asarray(a).tolist()}) > 1  # per-example masks
    loss = lambda key: losses[False](batch["x"], key)[0]
    assert loss(k1) == loss(k1) != loss(k2)


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_training_step_has_no_scatter(positions):
    # the loss runs in the shuffled order [kept, masked]: gathers of data only, no scatter in the forward or
    # backward pass (a scatter-add is atomics on a GPU, or a serial loop under deterministic ops)
    from aejax.bench.steps import hlo_counts

    model = tiny_mae(positions=positions)
    batch = batch_of()
    params = jax.jit(model.init)(jax.random.key(1), batch)
    grad = jax.jit(jax.grad(lambda p, key: model.loss(p, batch, key, {})[0]))
    counts = hlo_counts(grad.lower(params, jax.random.key(2)).compile().as_text())
    assert counts["scatter"] == 0 and counts["sort"] == 1, counts
    g = grad(params, jax.random.key(2))
    if positions == "learned":  # the one-hot product carries the gradient into the learned positions
        assert float(jnp.abs(g["encoder"]["positions"]["pos"]).max()) > 0
        assert float(jnp.abs(g["decoder"]["positions"]["pos"]).max()) > 0


def test_mask_stream_is_the_argsort_of_uniform_noise():
    # the documented random stream (unchanged by the shuffled-order loss): keep = argsort(uniform(key, [B, P]))[:, :V]
    model = tiny_mae()
    key = jax.random.key(5)
    expected = np.argsort(np.asarray(jax.random.uniform(key, (6, 16))), axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(model.keep_indices(key, 6), expected)
