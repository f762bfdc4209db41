import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.data import load_dataset
from aejax.errors import ConfigError
from aejax.models import model_from_options
from aejax.train import init_train_state, make_epoch_fn, make_eval_fn, make_optimizer, make_train_step


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
    epoch = make_epoch_fn(step, num_examples=len(x), batch_size=100)
    scanned, (metrics, finite) = epoch(jax.tree_util.tree_map(jnp.copy, state), x, y, hp, data_key, loop_key, 0)
    assert metrics["loss"].shape == (len(x) // 100,) and finite.all()
    perm = jax.random.permutation(jax.random.fold_in(data_key, 0), len(x))
    manual = state
    for i in range(len(x) // 100):
        idx = perm[i * 100:(i + 1) * 100]
        manual, _, _ = jax.jit(step)(manual, {"x": x[idx], "y": y[idx]}, jax.random.fold_in(loop_key, i), hp)
    for a, b in zip(jax.tree_util.tree_leaves(scanned["params"]), jax.tree_util.tree_leaves(manual["params"])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


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
    for a, b in zip(jax.tree_util.tree_leaves(new["params"]), jax.tree_util.tree_leaves(state["params"])):
        np.testing.assert_array_equal(a, b)


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
    epoch = make_epoch_fn(_recording_step, num_examples=n, batch_size=b)
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

    schedule = make_schedule(name, total_steps=4 if name == "warmup_cosine" else 8, **kwargs)
    steps = [0, 1, 2, 4] if name == "warmup_cosine" else [0, 2, 4, 8]
    np.testing.assert_allclose([float(schedule(s)) for s in steps], expected, rtol=1e-6, atol=1e-7)
