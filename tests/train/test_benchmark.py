import jax
import numpy as np

from aejax.train.benchmark import benchmark_loop, make_bare_scan
from aejax.train.setup import setup_run
from aejax.train.step import epoch_batch_indices

from conftest import digits_config


def test_benchmark_reports_both_throughputs():
    result = benchmark_loop(digits_config(), epochs=3)
    assert {"fit_steps_per_s", "bare_scan_steps_per_s", "fit_over_bare", "backend"} <= set(result)
    assert result["fit_steps_per_s"] > 0 and result["bare_scan_steps_per_s"] > 0
    assert result["fit_over_bare"] == result["fit_steps_per_s"] / result["bare_scan_steps_per_s"]


def test_bare_scan_and_fit_run_the_same_optimizer_and_step():
    """With warm-up, clipping and decoupled weight decay, the bare scan's first update and its epoch
    equal fit's (`RunSetup.epoch_fn`): one optimizer, one step, built once."""
    config = digits_config(**{"optim.name": "adamw", "optim.schedule": "warmup_cosine", "optim.warmup_steps": 5,
                              "optim.grad_clip": 0.5, "optim.weight_decay": 1e-2, "train.epochs": 2})
    run = setup_run(config)
    bare = make_bare_scan(run)
    state = run.init_state()
    idx = epoch_batch_indices(run.keys.data, 0, num_examples=len(run.dataset.train), batch_size=run.train.batch_size)
    first, _ = bare(run.init_state(), idx[:2])
    fit_state, _ = run.epoch_fn()(run.init_state(), jax.device_put(run.dataset.train.x),
                                  jax.device_put(run.dataset.train.y), run.hp, run.keys.data, run.keys.loop, 0)
    bare_state, _ = bare(state, idx)
    assert jax.tree_util.tree_structure(bare_state["opt_state"]) == jax.tree_util.tree_structure(fit_state["opt_state"])
    for a, b in zip(jax.tree_util.tree_leaves(bare_state), jax.tree_util.tree_leaves(fit_state)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # warm-up starts at a multiplier of 0: the first update leaves the params where they were, the second moves them
    init = run.init_state()["params"]
    one, _ = bare(run.init_state(), idx[:1])
    for a, b in zip(jax.tree_util.tree_leaves(one["params"]), jax.tree_util.tree_leaves(init)):
        np.testing.assert_array_equal(a, b)
    moved = [float(np.abs(a - b).max()) for a, b in zip(jax.tree_util.tree_leaves(first["params"]),
                                                        jax.tree_util.tree_leaves(init))]
    assert max(moved) > 0
