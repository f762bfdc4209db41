"""The loop options that cut fit's overhead (validation every N epochs, several epochs per device call,
metrics fetched one call later) change when the host looks, never what is trained: bitwise the same
parameters and the same numbers as the default loop."""

import json

import jax
import numpy as np
import pytest
from conftest import digits_config

from aejax.errors import ConfigError
from aejax.train import fit
from aejax.train.fit import _call_length
from aejax.train.setup import setup_run

BASE = {"model.kind": "vae", "train.epochs": 4, "model.hidden": (32,)}  # keys matter: a VAE samples
SPARSE = {"train.eval_every": 2, "train.checkpoint_every": 4}  # validation after epochs 2 and 4 only


def _records(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _assert_same_params(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a["params"]), jax.tree_util.tree_leaves(b["params"]), strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("default")
    return workdir, fit(digits_config(**BASE), str(workdir))


def _check_against_default(default, workdir, summary):
    """Same params and final numbers; each epoch's train/* as the default's, val/* only after epochs 2 and 4."""
    base_dir, base = default
    _assert_same_params(base, summary)
    assert {k: v for k, v in summary.items() if "/" in k and not k.startswith("perf/")} == \
        {k: v for k, v in base.items() if "/" in k and not k.startswith("perf/")}
    ours, theirs = _records(workdir), _records(base_dir)
    assert [r["epoch"] for r in ours] == [1, 2, 3, 4]
    for epoch, (a, b) in enumerate(zip(ours, theirs), start=1):
        expected = {k: v for k, v in b.items() if not k.startswith("val/") or epoch % 2 == 0}
        assert a == expected


def test_eval_every_validates_every_n_epochs_and_the_last(default, tmp_path):
    summary = fit(digits_config(**BASE, **SPARSE), str(tmp_path))
    _check_against_default(default, tmp_path, summary)


def test_epochs_per_call_scans_several_epochs_in_one_call(default, tmp_path):
    summary = fit(digits_config(**BASE, **SPARSE, **{"train.epochs_per_call": 2}), str(tmp_path))
    _check_against_default(default, tmp_path, summary)


def test_async_metrics_fetches_a_call_later_with_the_same_numbers(default, tmp_path):
    summary = fit(digits_config(**BASE, **SPARSE, **{"train.async_metrics": True}), str(tmp_path))
    _check_against_default(default, tmp_path, summary)


def test_a_call_ends_at_the_next_validation_checkpoint_or_end():
    # epoch (0-based), epochs, epochs_per_call, eval_every, checkpoint_every -> epochs in the call
    assert _call_length(0, 10, 1, 1, 5) == 1
    assert _call_length(0, 10, 4, 1, 5) == 1  # validation after every epoch: nothing to group
    assert _call_length(0, 10, 4, 5, 5) == 4
    assert _call_length(4, 10, 4, 5, 5) == 1  # epoch 5 validates
    assert _call_length(5, 10, 8, 10, 3) == 1  # epoch 6 saves
    assert _call_length(8, 10, 8, 100, 100) == 2  # the end


@pytest.mark.parametrize("override", [{"train.eval_every": 0}, {"train.epochs_per_call": -1}])
def test_bad_loop_options_are_config_errors(override):
    with pytest.raises(ConfigError, match="must be >= 1"):
        setup_run(digits_config(**override))
