"""Importance-weighted NLL estimates: chunked accumulation, bound ordering on a trained VAE, bad input."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.config import get_experiment_config
from aejax.errors import ConfigError
from aejax.evaluate import load_run
from aejax.evaluate.likelihood import dataset_iwae, iwae_bound, likelihood_task
from aejax.models import model_from_options


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    from aejax.train import fit

    workdir = str(tmp_path_factory.mktemp("digits_vae"))
    config = get_experiment_config("digits_vae", {"train.epochs": 30, "train.progress": False,
                                                  "train.tensorboard": False, "train.figures": False})
    fit(config, workdir)
    return load_run(workdir)


def _task(run, model=None, **options):
    """The likelihood task on a loaded run, in the task signature every evaluation task shares."""
    return likelihood_task(model or run.model, run.params, run.dataset, run.hp, seed=0,
                           out_dir=os.path.join(run.workdir, "figures"), **options)


@dataclasses.dataclass(frozen=True)
class _StubModel:
    """log w = N(0, 2^2) draws from the key: checks the chunked log-sum-exp against a direct one."""

    def log_importance_weights(self, params, batch, *, key, num_samples, hp=None):
        return 2.0 * jax.random.normal(key, (num_samples, batch["x"].shape[0]))


@pytest.mark.parametrize("k,chunk", [(1, 4), (12, 4), (13, 4), (10, 100)])
def test_chunked_logsumexp_equals_the_direct_computation(k, chunk):
    key = jax.random.key(3)
    batch = {"x": jnp.zeros((5, 2)), "y": jnp.zeros((5,), jnp.int32)}
    iwae, elbo = iwae_bound(_StubModel(), None, batch, key=key, num_samples=k, chunk_size=chunk)
    c = min(chunk, k)
    # example b, chunk i: the stub's draws of shape (c, 1) from fold_in(fold_in(key, b), i)
    draws = jnp.stack([jnp.concatenate([2.0 * jax.random.normal(jax.random.fold_in(jax.random.fold_in(key, b), i),
                                                                (c, 1))[:, 0] for i in range(-(-k // c))])[:k]
                       for b in range(5)], axis=1)
    assert np.allclose(iwae, jax.scipy.special.logsumexp(draws, axis=0) - np.log(k), atol=1e-5)
    assert np.allclose(elbo, draws.mean(0), atol=1e-5)


def test_per_example_values_do_not_depend_on_the_batching(vae_run):
    model, params, hp = vae_run.model, vae_run.params, vae_run.hp
    x, y = vae_run.dataset.test.x[:100], vae_run.dataset.test.y[:100]
    key = jax.random.key(5)
    runs = {bs: dataset_iwae(model, params, x, y, key=key, num_samples=12, chunk_size=5, batch_size=bs, hp=hp)
            for bs in (2, 5, 7, 100)}
    for bs in (2, 5, 7):
        np.testing.assert_allclose(runs[bs][0], runs[100][0], rtol=0, atol=1e-5)
        np.testing.assert_allclose(runs[bs][1], runs[100][1], rtol=0, atol=1e-5)
    # an example's value depends on its index only: the same image at two positions differs, and
    # iwae_bound on a slice with the slice's indices reproduces the whole-set values
    iw, _ = iwae_bound(model, params, {"x": x[40:43], "y": y[40:43]}, key=key, num_samples=12, chunk_size=5, hp=hp,
                       index=jnp.arange(40, 43))
    np.testing.assert_allclose(iw, runs[100][0][40:43], atol=1e-5)
    twice, _ = iwae_bound(model, params, {"x": x[:1].repeat(2, 0), "y": y[:1].repeat(2)}, key=key, num_samples=12,
                          hp=hp)
    assert twice[0] != twice[1]


def test_k_below_one_and_bad_chunks_are_config_errors(vae_run):
    batch = {"x": jnp.zeros((2, 8, 8, 1)), "y": jnp.zeros((2,), jnp.int32)}
    for k in (0, -3, 2.5):
        with pytest.raises(ConfigError, match="k must be an integer >= 1"):
            iwae_bound(_StubModel(), None, batch, key=jax.random.key(0), num_samples=k)
        with pytest.raises(ConfigError, match="k must be an integer >= 1"):
            _task(vae_run, num_samples=k)
    with pytest.raises(ConfigError, match="chunk_size"):
        _task(vae_run, num_samples=10, chunk_size=0)


def test_elbo_below_iwae_k_below_iwae_k_prime_on_a_trained_vae(vae_run):
    model, params, hp = vae_run.model, vae_run.params, vae_run.hp
    x, y = vae_run.dataset.test.x, vae_run.dataset.test.y
    n = len(x)
    # the analytic-KL ELBO, averaged over 20 posterior samples per example
    elbo = np.mean([np.asarray(model.elbo(params, {"x": x, "y": y}, key=jax.random.key(i), hp=hp))
                    for i in range(20)], axis=0)
    bounds = {k: dataset_iwae(model, params, x, y, key=jax.random.key(100 + k), num_samples=k, chunk_size=100,
                              hp=hp)[0] for k in (1, 5, 500)}
    se = lambda d: d.std() / np.sqrt(n)
    d1 = bounds[1] - elbo  # IWAE_1 is an unbiased estimate of the ELBO
    assert abs(d1.mean()) < 4 * se(d1), (d1.mean(), se(d1))
    for lo, hi in ((elbo, bounds[5]), (bounds[5], bounds[500])):
        d = hi - lo
        assert d.mean() > 3 * se(d), (d.mean(), se(d))  # strictly above, beyond Monte Carlo error
    # the gains shrink: 5 -> 500 samples gains less than 1 -> 5 did (the bound saturates toward log p(x))
    assert 0 < (bounds[500] - bounds[5]).mean() < (bounds[5] - elbo).mean()


def test_likelihood_task_reports_nll_bits_and_binarized_option(vae_run):
    res = _task(vae_run, num_samples=20, chunk_size=7, num_examples=50)
    assert res["num_examples"] == 50
    assert res["test/nll_iwae20"] > 0 and res["test/iwae_minus_elbo"] > 0
    assert np.isclose(res["test/bits_per_dim_iwae20"], res["test/nll_iwae20"] / (64 * np.log(2)))
    again = _task(vae_run, num_samples=20, chunk_size=7, num_examples=50)
    assert again["test/nll_iwae20"] == res["test/nll_iwae20"]  # same seed, same estimate
    rebatched = _task(vae_run, num_samples=20, chunk_size=7, num_examples=50, batch_size=3)
    assert np.isclose(rebatched["test/nll_iwae20"], res["test/nll_iwae20"], rtol=0, atol=1e-5)
    other = likelihood_task(vae_run.model, vae_run.params, vae_run.dataset, vae_run.hp, seed=123, out_dir="unused",
                            num_samples=20, chunk_size=7, num_examples=50)
    assert other["test/nll_iwae20"] != res["test/nll_iwae20"]
    binar = _task(vae_run, num_samples=5, num_examples=20, binarize=True)
    assert "test_bin/nll_iwae5" in binar


def test_k_5000_runs_in_chunks(vae_run):
    res = _task(vae_run, num_samples=5000, chunk_size=500, num_examples=4, batch_size=4)
    assert np.isfinite(res["test/nll_iwae5000"])


def test_tasks_reject_models_and_options_they_cannot_score(vae_run):
    gaussian = model_from_options("vae", input_shape=(8, 8, 1), num_classes=10, code_size=4, likelihood="gaussian")
    with pytest.raises(ConfigError, match="binarize needs the 'bernoulli' likelihood"):
        _task(vae_run, model=gaussian, num_samples=5, binarize=True)
    aae = model_from_options("aae", input_shape=(8, 8, 1), num_classes=10, code_size=2)
    with pytest.raises(ConfigError, match="defines no likelihood"):
        _task(vae_run, model=aae, num_samples=5)
    with pytest.raises(ConfigError, match="split"):
        _task(vae_run, num_samples=5, split="dev")
