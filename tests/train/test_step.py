import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from aejax.data import load_dataset
from aejax.errors import ConfigError
from aejax.models import model_from_options
from aejax.models.common import as_hp
from aejax.train.step import epoch_body
from aejax.train import init_train_state, make_eval_fn, make_optimizer, make_train_step


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _setup(digits, optimizer="adam", schedule="constant", **kwargs):
    model = model_from_options("undercomplete", input_shape=(8, 8, 1), num_classes=10, code_size=8, hidden=(32,))
    tx = make_optimizer(optimizer, total_steps=100, schedule=schedule, **kwargs)
    x = jnp.asarray(digits.train.x)
    params = model.init(jax.random.key(0), {"x": x[:1]})
    return model, tx, init_train_state(model, tx, params)


@pytest.mark.parametrize("optimizer, kwargs", [("adam", {}), ("adamw", {"weight_decay": 1e-4}),
                                               ("sgd", {"momentum": 0.9}), ("adam", {"grad_clip": 1.0})])
def test_a_few_steps_reduce_the_loss(digits, optimizer, kwargs):
    model, tx, state = _setup(digits, optimizer, **kwargs)
    lr = 0.05 if optimizer == "sgd" else 3e-3
    step = jax.jit(make_train_step(model, tx, skip_nonfinite=False))
    batch = {"x": jnp.asarray(digits.train.x[:128]), "y": jnp.asarray(digits.train.y[:128])}
    losses = []
    for i in range(30):
        state, metrics, finite = step(state, batch, jax.random.key(i), {"learning_rate": jnp.float32(lr)})
        losses.append(float(metrics["loss"]))
        assert bool(finite)
    assert losses[-1] < (0.95 if optimizer == "sgd" else 0.6) * losses[0]
    assert int(state["step"]) == 30


def test_epoch_matches_sequential_steps(digits):
    model, tx, state = _setup(digits)
    hp = {"learning_rate": jnp.float32(1e-3)}
    x, y = jnp.asarray(digits.train.x), jnp.asarray(digits.train.y)
    data_key, loop_key = jax.random.key(1), jax.random.key(2)
    step = make_train_step(model, tx, skip_nonfinite=False)
    epoch = jax.jit(epoch_body(step, num_examples=len(x), batch_size=100), donate_argnums=(0,))
    scanned, (metrics, finite) = epoch(jax.tree_util.tree_map(jnp.copy, state), x, y, hp, data_key, loop_key, 0)
    assert metrics["loss"].shape == (len(x) // 100,) and finite.all()
    perm = jax.random.permutation(jax.random.fold_in(data_key, 0), len(x))
    manual = state
    for i in range(len(x) // 100):
        idx = perm[i * 100:(i + 1) * 100]
        manual, _, _ = jax.jit(step)(manual, {"x": x[idx], "y": y[idx]}, jax.random.fold_in(loop_key, i), hp)
    chex.assert_trees_all_close(scanned["params"], manual["params"], rtol=1e-5, atol=1e-6)


def test_learning_rate_is_traced_not_baked(digits):
    """One compiled step serves every learning rate, and vmap runs several at once."""
    model, tx, state = _setup(digits)
    step = make_train_step(model, tx, skip_nonfinite=False)
    batch = {"x": jnp.asarray(digits.train.x[:64]), "y": jnp.asarray(digits.train.y[:64])}
    lrs = jnp.array([0.0, 1e-3, 1e-2], jnp.float32)
    states = jax.tree_util.tree_map(lambda a: jnp.stack([a] * 3), state)
    new, metrics, _ = jax.vmap(step, in_axes=(0, None, None, 0))(states, batch, jax.random.key(0),
                                                                 {"learning_rate": lrs})
    kernel = new["params"]["encoder"]["code"]["kernel"]
    np.testing.assert_array_equal(kernel[0], state["params"]["encoder"]["code"]["kernel"])  # lr 0: unchanged
    delta = lambda i: float(jnp.abs(kernel[i] - kernel[0]).max())
    assert 5 < delta(2) / delta(1) < 15


def test_skip_nonfinite_keeps_params(digits):
    model, tx, state = _setup(digits)
    step = jax.jit(make_train_step(model, tx, skip_nonfinite=True))
    bad = {"x": jnp.full((8, 8, 8, 1), jnp.nan), "y": jnp.zeros(8, jnp.int32)}
    new, metrics, finite = step(state, bad, jax.random.key(0), {"learning_rate": jnp.float32(1e-3)})
    assert not bool(finite)
    chex.assert_trees_all_equal((new["params"], new["opt_state"]), (state["params"], state["opt_state"]))
    assert int(new["step"]) == int(state["step"]) + 1


def test_eval_means_are_exact_with_a_remainder(digits):
    model, tx, state = _setup(digits)
    x, y = jnp.asarray(digits.test.x), jnp.asarray(digits.test.y)  # 360 = 3 x 100 + 60
    terms = make_eval_fn(model, batch_size=100)(state["params"], x, y, {}, jax.random.key(0))
    x_hat = model.reconstruct(state["params"], {"x": x})
    np.testing.assert_allclose(terms["mse"], float(jnp.mean((x_hat - x) ** 2)), rtol=1e-5)


def test_schedules_and_bad_optimizer_options():
    with pytest.raises(ConfigError, match="unknown optimizer"):
        make_optimizer("adagrad", total_steps=10)
    with pytest.raises(ConfigError, match="unknown schedule"):
        make_optimizer("adam", total_steps=10, schedule="step")
    with pytest.raises(ConfigError, match="no effect with optimizer 'adam'; set optim.name=adamw"):
        make_optimizer("adam", total_steps=10, weight_decay=1e-4)
    with pytest.raises(ConfigError, match="no effect with optimizer 'adamw'; set optim.name=sgd"):
        make_optimizer("adamw", total_steps=10, momentum=0.9)
    tx = make_optimizer("sgd", total_steps=10, schedule="cosine")
    params = {"w": jnp.ones(())}
    state = tx.init(params)
    sizes = []
    for _ in range(10):
        updates, state = tx.update({"w": jnp.ones(())}, state, params)
        sizes.append(float(updates["w"]))
    assert sizes[0] == pytest.approx(1.0) and sizes[-1] < 0.05 and all(np.diff(sizes) <= 0)


def _recording_step(state, batch, key, hp):
    """A stand-in step that records what the epoch hands it: the batch's labels and the step key."""
    del hp
    metrics = {"y": batch["y"], "key": jax.random.key_data(key)}
    return {**state, "step": state["step"] + 1}, metrics, jnp.bool_(True)


def test_each_step_gets_fold_in_loop_key_step_and_each_epoch_its_own_order():
    n, b = 50, 10
    x, y = jnp.zeros((n, 2, 2, 1)), jnp.arange(n, dtype=jnp.int32)  # labels = example indices
    data_key, loop_key = jax.random.key(3), jax.random.key(4)
    epoch = jax.jit(epoch_body(_recording_step, num_examples=n, batch_size=b), donate_argnums=(0,))
    state = {"step": jnp.zeros((), jnp.int32)}
    orders, keys = [], []
    for e in range(2):
        state, (metrics, _) = epoch(state, x, y, {}, data_key, loop_key, e)
        orders.append(np.asarray(metrics["y"]))
        keys.append(np.asarray(metrics["key"]))
    for e in range(2):
        expected = np.asarray(jax.random.permutation(jax.random.fold_in(data_key, e), n)).reshape(n // b, b)
        np.testing.assert_array_equal(orders[e], expected)
    assert not np.array_equal(orders[0], orders[1])
    steps = np.arange(2 * n // b)
    expected_keys = np.stack([np.asarray(jax.random.key_data(jax.random.fold_in(loop_key, s))) for s in steps])
    np.testing.assert_array_equal(np.concatenate(keys), expected_keys)


@pytest.mark.parametrize("name, kwargs, expected", [
    ("constant", {}, [1.0, 1.0, 1.0, 1.0]),
    ("linear", {"final_fraction": 0.1}, [1.0, 0.775, 0.55, 0.1]),
    ("cosine", {"final_fraction": 0.0}, [1.0, 0.8535534, 0.5, 0.0]),
    ("warmup_cosine", {"warmup_steps": 2, "final_fraction": 0.0}, [0.0, 0.5, 1.0, 0.0]),
])
def test_schedule_values(name, kwargs, expected):
    from aejax.train.optim import make_schedule

    kwargs = {"warmup_steps": 0, "final_fraction": 0.0, **kwargs}
    schedule = make_schedule(name, decay_steps=4 if name == "warmup_cosine" else 8, **kwargs)
    steps = [0, 1, 2, 4] if name == "warmup_cosine" else [0, 2, 4, 8]
    np.testing.assert_allclose([float(schedule(s)) for s in steps], expected, rtol=1e-6, atol=1e-7)


def test_decay_is_a_duration_after_which_the_schedule_holds_its_final_fraction():
    from aejax.train.optim import schedule_steps
    from aejax.config import OptimOptions

    assert schedule_steps(OptimOptions(schedule="cosine", decay="50%"), steps_per_epoch=10, total_steps=100) == (0, 50)
    assert schedule_steps(OptimOptions(schedule="warmup_cosine", warmup="2 epochs", decay="3 epochs"),
                          steps_per_epoch=10, total_steps=100) == (20, 30)
    tx = make_optimizer("sgd", total_steps=8, schedule="linear", decay=4, final_fraction=0.25)
    params, grads = {"w": np.ones(1, np.float32)}, {"w": np.ones(1, np.float32)}
    state, seen = tx.init(params), []
    for _ in range(6):
        updates, state = tx.update(grads, state, params)
        seen.append(float(updates["w"][0]))
    np.testing.assert_allclose(seen, [1.0, 0.8125, 0.625, 0.4375, 0.25, 0.25], rtol=1e-6)


# -- the step with and without jit, for every update path ---------------------------------------------

STEP_KINDS = {"undercomplete": {}, "vae": {}, "sparse": {"sparsity": "topk", "k": 2}, "aae": {"disc_hidden": (8,)}}


@functools.lru_cache(maxsize=None)
def _tiny(kind, optimizer="adam"):
    """A tiny model of `kind`, its optimizer, a batch, the initial state and hp (built once per kind)."""
    model = model_from_options(kind, input_shape=(8, 8, 1), num_classes=10, code_size=4, hidden=(16,),
                               **STEP_KINDS[kind])
    tx = make_optimizer(optimizer, total_steps=10, schedule="constant")
    batch = {"x": jax.random.uniform(jax.random.key(0), (16, 8, 8, 1)), "y": jnp.arange(16, dtype=jnp.int32) % 10}
    state = init_train_state(model, tx, jax.jit(model.init)(jax.random.key(1), batch))
    hp = as_hp({**model.default_hp(), "learning_rate": 1e-2})
    return model, tx, batch, state, hp


class StepJitAndEagerTest(chex.TestCase):
    """The one update path run eagerly and jitted: plain kinds (gradient_step) and CustomUpdate kinds
    (the sparse kind's dead-unit counters, the AAE's three updates)."""

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*STEP_KINDS)
    def test_two_steps_equal_the_jitted_steps(self, kind):
        model, tx, batch, state, hp = _tiny(kind)
        step = make_train_step(model, tx, skip_nonfinite=False)
        reference = jax.jit(step)
        got = want = state
        for i in range(2):
            got, metrics, finite = self.variant(step)(got, batch, jax.random.key(i), hp)
            want, _, _ = reference(want, batch, jax.random.key(i), hp)
            assert bool(finite) and np.isfinite(float(metrics["loss"]))
        chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)
        assert int(got["step"]) == 2
        moved = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), got["params"], state["params"])
        assert all(jax.tree_util.tree_leaves(moved)), moved  # every parameter was updated

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("undercomplete", "vae")
    def test_a_plain_sgd_step_is_params_minus_lr_times_the_gradient(self, kind):
        model, tx, batch, state, hp = _tiny(kind, optimizer="sgd")
        key = jax.random.key(5)
        new, metrics, _ = self.variant(make_train_step(model, tx, skip_nonfinite=False))(state, batch, key, hp)
        (loss, _), grads = jax.jit(jax.value_and_grad(lambda p: model.loss(p, batch, key, hp, step=state["step"]),
                                                      has_aux=True))(state["params"])
        expected = jax.tree_util.tree_map(lambda p, g: p - 1e-2 * g, state["params"], grads)
        chex.assert_trees_all_close(new["params"], expected, rtol=1e-5, atol=1e-7)
        chex.assert_trees_all_close(metrics["loss"], loss, rtol=1e-6)
        chex.assert_trees_all_close(metrics["grad_norm"], optax_norm(grads), rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("undercomplete", "sparse")  # gradient_step's guard and a CustomUpdate's
    def test_skip_nonfinite_keeps_params_and_optimizer_state_bitwise(self, kind):
        model, tx, batch, state, hp = _tiny(kind)
        bad = {**batch, "x": batch["x"].at[0, 0, 0, 0].set(jnp.nan)}
        new, _, finite = self.variant(make_train_step(model, tx, skip_nonfinite=True))(state, bad, jax.random.key(0), hp)
        assert not bool(finite)
        chex.assert_trees_all_equal((new["params"], new["opt_state"]), (state["params"], state["opt_state"]))
        assert int(new["step"]) == 1


def optax_norm(tree):
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(tree)))
