"""Property-based checks: invalid configs and data give the documented error, before any compile."""

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from aejax.config import get_experiment_config, resolve_config
from aejax.data import Dataset, Split
from aejax.errors import ConfigError, DataError
from aejax.train import fit

from conftest import digits_config

BASE = get_experiment_config("digits_ae")
KNOWN = set()


def _keys(config, prefix=""):
    for k, v in config.items():
        KNOWN.add(prefix + k)
        if hasattr(v, "items"):
            _keys(v, prefix + k + ".")


_keys(BASE)
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=24).filter(lambda k: k not in KNOWN))
def test_unknown_keys_are_config_errors(key):
    with pytest.raises(ConfigError, match=re.escape(key)):  # unknown, or "... is an option of net lstm/gru; ..."
        resolve_config(BASE, {key: 1})


@FAST
@given(st.sampled_from(["train.epochs", "train.batch_size", "train.eval_batch_size", "train.checkpoint_every"]),
       st.integers(-5, 0))
def test_nonpositive_counts_are_rejected_before_compile(tmp_path, key, value):
    with pytest.raises(ConfigError, match=key.split(".")[1]):
        fit(digits_config(**{key: value}), str(tmp_path / "w"))


@FAST
@given(st.one_of(st.floats(max_value=0.0), st.just(math.inf), st.just(math.nan)))
def test_bad_learning_rates(tmp_path, lr):
    with pytest.raises(ConfigError, match="learning_rate must be a positive number"):
        fit(digits_config(**{"hp.learning_rate": lr}), str(tmp_path / "w"))


def _dataset(x, y=None):
    y = np.zeros(len(x), np.int32) if y is None else y
    split = Split(x, y)
    return Dataset("custom", split, split, split, num_classes=10)


@FAST
@given(st.integers(0, 15), st.integers(0, 7), st.integers(0, 7), st.sampled_from([np.nan, np.inf, -np.inf]))
def test_non_finite_data_is_a_data_error(tmp_path, n, i, j, bad):
    x = np.random.default_rng(0).uniform(size=(16, 8, 8, 1)).astype(np.float32)
    x[n, i, j, 0] = bad
    with pytest.raises(DataError, match="NaN or infinite"):
        fit(digits_config(), str(tmp_path / "w"), dataset=_dataset(x))


@FAST
@given(st.lists(st.integers(1, 9), min_size=1, max_size=4).filter(lambda s: len(s) not in (2, 3)))
def test_wrong_shapes_are_data_errors(tmp_path, shape):  # per-example (T, C) is a sequence, (H, W, C) an image
    x = np.zeros((16, *shape), np.float32)
    with pytest.raises(DataError, match="shape \\[N, H, W, C\\]"):
        fit(digits_config(), str(tmp_path / "w"), dataset=_dataset(x))


@FAST
@given(st.floats(1.0001, 1e6) | st.floats(-1e6, -0.0001))
def test_bernoulli_needs_unit_interval(tmp_path, value):
    x = np.full((16, 8, 8, 1), 0.5, np.float32)
    x[3, 2, 1, 0] = value
    with pytest.raises(DataError, match="Bernoulli likelihood needs values in \\[0, 1\\]"):
        fit(digits_config(**{"model.likelihood": "bernoulli"}), str(tmp_path / "w"), dataset=_dataset(x))


@FAST
@given(st.integers(0, 40).filter(lambda n: n != 16))
def test_label_count_must_match(tmp_path, n):
    x = np.full((16, 8, 8, 1), 0.5, np.float32)
    with pytest.raises(DataError, match="labels must have shape \\[16\\]"):
        fit(digits_config(), str(tmp_path / "w"), dataset=_dataset(x, np.zeros(n, np.int32)))


@FAST
@given(st.integers(64, 10_000))
def test_latent_wider_than_input(tmp_path, code_size):
    with pytest.raises(ConfigError, match="narrower than its input"):
        fit(digits_config(**{"model.code_size": code_size}), str(tmp_path / "w"))


# -- Evaluation and corruption inputs (issue 21): one clear error, never a NaN headline or a numpy crash --


@FAST
@given(st.integers(4, 40).flatmap(lambda t: st.tuples(st.just(t), st.integers(t // 2 + 1, t + 5))))
def test_a_zscore_window_over_half_the_window_length_is_a_config_error(t_window):
    from aejax.evaluate.series import rolling_zscore_scores

    t, window = t_window
    with pytest.raises(ConfigError, match=r"2 <= zscore_window <= T / 2"):
        rolling_zscore_scores(np.zeros((3, t, 1)), window)


@pytest.mark.parametrize("corruption", ["white_snr", "pink_snr", "brown_snr"])
def test_snr_noise_on_scalar_examples_and_coloured_noise_on_one_step_are_config_errors(corruption):
    import jax
    import jax.numpy as jnp

    from aejax.data import corrupt

    with pytest.raises(ConfigError, match=r"at least one axis, \[B, D\]"):
        corrupt(corruption, jnp.ones((4,)), 0.0, key=jax.random.key(0))
    if corruption != "white_snr":
        with pytest.raises(ConfigError, match="at least 2 steps along axis 1"):
            corrupt(corruption, jnp.ones((4, 1, 2)), 0.0, key=jax.random.key(0))


@settings(FAST, max_examples=6)  # each draw compiles the scoring step once
@given(st.integers(1, 12), st.floats(-1.0, 1.0))
def test_a_test_split_of_silent_frames_is_a_data_error(tmp_path, n, value):
    import types

    from aejax.evaluate.denoising import denoising_task

    class Identity:
        name = "identity"

        def reconstruct(self, params, batch):
            return batch["x"]

    dataset = types.SimpleNamespace(test=types.SimpleNamespace(x=np.full((n, 16, 1), value, np.float32),
                                                               y=np.zeros(n, np.int32)), scaling=None)
    with pytest.raises(DataError, match=f"all {n} test frames are silent"):
        denoising_task(Identity(), None, dataset, {}, seed=0, out_dir=str(tmp_path))
