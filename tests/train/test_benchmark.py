import json

import chex
import jax
import numpy as np
import pytest
from conftest import digits_config

from aejax.bench import (
    SuiteOptions,
    counted_mlp_step_flops,
    reference_config,
    run_suite,
    time_run_step,
)
from aejax.bench import suite as suite_module
from aejax.cli import main
from aejax.errors import ConfigError
from aejax.train.benchmark import make_bare_scan
from aejax.train.setup import setup_run
from aejax.train.step import epoch_body, epoch_batch_indices


@pytest.fixture(scope="module")
def suite_json(tmp_path_factory):
    """`aejax bench --quick --only loop,torch` on digits with torch hidden: the JSON and stdout."""
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    patch = pytest.MonkeyPatch()
    patch.setattr(suite_module, "torch_available", lambda: False)
    try:
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["bench", "--quick", "--only", "loop,torch", "--epochs", "2", "--json", str(path)])
    finally:
        patch.undo()
    assert code == 0
    return json.loads(path.read_text()), out.getvalue()


def test_suite_json_keeps_the_loop_figures_and_names_the_machine(suite_json):
    result, _ = suite_json
    assert result["fit_steps_per_s"] > 0 and result["bare_scan_steps_per_s"] > 0
    assert result["fit_over_bare"] == result["loop"]["fit_over_bare"]
    brackets = result["loop"]["bare_scan_steps_per_s_before_after_fit"]  # the bare scan timed before and after fit
    assert [np.mean(b) for b in brackets] == pytest.approx(result["loop"]["bare_scan_steps_per_s_repeats"])
    assert all(len(b) == 2 and min(b) > 0 for b in brackets)
    assert result["loop"]["model_widths"] == "64-512-32" and result["loop"]["optimizer"] == "adam"
    machine = result["machine"]
    assert {"device", "backend", "cpu_model", "cpu_cores", "jax", "flax", "optax"} <= set(machine)
    assert machine["jax"] == jax.__version__
    assert result["dataset"] == "digits" and "quick" in result["dataset_note"]
    assert result["matmul_peak_flops_per_s"] > 0


def test_suite_without_torch_says_the_reference_was_skipped(suite_json):
    result, stdout = suite_json
    assert "torch_steps_per_s" not in result["torch"] and "skipped" in result["torch"]["torch_skipped"]
    assert result["torch"]["bare_scan_steps_per_s"] > 0 and result["torch"]["jit_loop_steps_per_s"] > 0
    assert "the reference was skipped" in stdout and "| fit_steps_per_s |" in stdout


@pytest.fixture(scope="module")
def step_row():
    """One row of the kinds table: the 64-512-32 sigmoid MLP on digits, batch 32, 3 steps, one repeat."""
    run = setup_run(reference_config("digits", batch_size=32))
    flops = counted_mlp_step_flops((64, 512, 32, 512, 64), 32)
    return flops, time_run_step(run, steps=3, repeats=1, counted_flops=flops, peak_shapes=((64, 64, 64),))


def test_counted_mlp_flops_match_the_compiled_programs_cost_analysis(step_row):
    counted, row = step_row
    assert counted == 2 * 32 * (64 * 512 + 512 * 32) * 2 * 3 - 2 * 32 * 64 * 512
    # the cost analysis adds the elementwise work (sigmoids, loss, Adam) that the count leaves out
    assert counted <= row["cost_flops"] <= 1.2 * counted


def test_a_step_row_reports_compile_rate_and_efficiency_from_one_measurement(step_row):
    flops, row = step_row
    assert row["compile_s"] > 0 and row["finite"] and row["counted_flops"] == flops
    assert row["examples_per_s"] == pytest.approx(32 * row["steps_per_s"])
    assert row["step_flops_per_s"] == pytest.approx(flops * row["steps_per_s"])
    assert row["efficiency"] == pytest.approx(row["step_flops_per_s"] / row["matmul_peak_flops_per_s"])


@pytest.mark.parametrize("options, message", [
    ({"only": ("loop", "speed")}, "unknown benchmark section"),
    ({"repeats": 0}, "repeats must be >= 1"),
    ({"sweep_runs": (0,)}, "sweep sizes must be positive"),
])
def test_bad_suite_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        run_suite(SuiteOptions(**options))


def test_torch_reference_trains_when_torch_is_installed():
    pytest.importorskip("torch")
    from aejax.bench import torch_steps_per_s

    x = np.random.default_rng(0).uniform(size=(256, 64)).astype(np.float32)
    out = torch_steps_per_s(x, widths=(64, 32, 8, 32, 64), activation="sigmoid", batch_size=32,
                            learning_rate=1e-3, steps=5, repeats=1, threads=1)
    assert out["steps_per_s"] > 0 and np.isfinite(out["final_loss"]) and out["threads"] == 1


def test_bare_scan_and_fit_run_the_same_optimizer_and_step():
    """With warm-up, clipping and decoupled weight decay, the bare scan's first update and its epoch
    equal the loop's epoch (`epoch_body` of `RunSetup.train_step`): one optimizer, one step, built once."""
    config = digits_config(**{"optim.name": "adamw", "optim.schedule": "warmup_cosine", "optim.warmup": 5,
                              "optim.grad_clip": 0.5, "optim.weight_decay": 1e-2, "train.epochs": 2})
    run = setup_run(config)
    bare = make_bare_scan(run)
    state = run.init_state()
    idx = epoch_batch_indices(run.keys.data, 0, num_examples=len(run.dataset.train), batch_size=run.train.batch_size)
    first, _ = bare(run.init_state(), idx[:2])
    epoch = jax.jit(epoch_body(run.train_step(), num_examples=len(run.dataset.train),
                               batch_size=run.train.batch_size), donate_argnums=(0,))
    fit_state, _ = epoch(run.init_state(), jax.device_put(run.dataset.train.x), jax.device_put(run.dataset.train.y),
                         run.hp, run.keys.data, run.keys.loop, 0)
    bare_state, _ = bare(state, idx)
    chex.assert_trees_all_equal_structs(bare_state["opt_state"], fit_state["opt_state"])
    chex.assert_trees_all_close(bare_state, fit_state, rtol=1e-6, atol=1e-7)
    # warm-up starts at a multiplier of 0: the first update leaves the params where they were, the second moves them
    init = run.init_state()["params"]
    one, _ = bare(run.init_state(), idx[:1])
    chex.assert_trees_all_equal(one["params"], init)
    moved = [float(np.abs(a - b).max()) for a, b in zip(jax.tree_util.tree_leaves(first["params"]),
                                                        jax.tree_util.tree_leaves(init))]
    assert max(moved) > 0


def test_bench_command_rejects_malformed_numbers_before_running(capsys):
    assert main(["bench", "--quick", "--batch-sizes", "128,1k"]) == 2
    assert "--batch-sizes must be comma-separated integers" in capsys.readouterr().err
