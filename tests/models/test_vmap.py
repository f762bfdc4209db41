"""Every kind's loss is vmappable: a population of members equals its members computed one by one.

The population trains R runs as one program, `vmap` of the single run's step over a leading run
axis of params, hp, keys, batches and steps; it is only right when each kind's loss is.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.models import KINDS, model_from_options
from aejax.models.common import as_hp

SHAPE = (8, 8, 1)
MLP = {"code_size": 4, "hidden": (16,)}
# Tiny options for every kind; a kind added to KINDS must join this table.
OPTIONS = {
    "undercomplete": MLP,
    "sparse": {**MLP, "sparsity": "topk", "k": 2},
    "contractive": MLP,
    "denoising": MLP,
    "vae": MLP,
    "cvae": MLP,
    "aae": {**MLP, "disc_hidden": (8,)},
    "mae": {"net": "transformer", "patch_size": 4, "width": 8, "depth": 1, "heads": 2, "decoder_width": 8,
            "decoder_depth": 1, "decoder_heads": 2},
}
R = 3


def test_every_kind_is_in_the_table():
    assert set(OPTIONS) == set(KINDS)


def _stack(trees):
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees)


def _member(tree, i):
    return jax.tree_util.tree_map(lambda leaf: leaf[i], tree)


def _population(model):
    """R members that differ in every argument: params, batch, key, hp and training step."""
    keys = jax.random.split(jax.random.key(0), 4 * R).reshape(4, R)
    batch_R = {"x": jax.random.uniform(keys[0, 0], (R, 6, *SHAPE)), "y": jax.random.randint(keys[1, 0], (R, 6), 0, 10)}
    init = jax.jit(model.init)
    params_R = _stack([init(keys[2, i], _member(batch_R, i)) for i in range(R)])
    hp = {**model.default_hp(), "learning_rate": 1e-3}
    hp_R = _stack([as_hp({name: value * (1.0 - 0.3 * i) for name, value in hp.items()}) for i in range(R)])
    return params_R, batch_R, keys[3], hp_R, jnp.arange(R, dtype=jnp.int32) * 5 + 1


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_the_vmapped_loss_equals_each_members_loss(kind):
    model = model_from_options(kind, input_shape=SHAPE, num_classes=10, **OPTIONS[kind])
    params_R, batch_R, key_R, hp_R, step_R = _population(model)

    def loss(params, batch, key, hp, step):
        return model.loss(params, batch, key, hp, step=step)

    population = jax.jit(jax.vmap(loss))(params_R, batch_R, key_R, hp_R, step_R)
    one = jax.jit(loss)
    members = _stack([one(_member(params_R, i), _member(batch_R, i), key_R[i], _member(hp_R, i), step_R[i])
                      for i in range(R)])
    chex.assert_tree_shape_prefix(population, (R,))
    chex.assert_trees_all_close(population, members, rtol=1e-5, atol=1e-6)
    losses = np.asarray(members[0])
    assert np.all(np.isfinite(losses)) and len(set(losses.tolist())) == R, losses  # the members differ
