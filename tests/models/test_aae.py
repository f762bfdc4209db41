"""Adversarial autoencoder: three updates with separate optimizer states, priors, and code moments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.config import get_experiment_config
from aejax.errors import ConfigError, DataError
from aejax.models import model_from_options
from aejax.models.aae import mixture_means
from aejax.models.common import as_hp
from aejax.train.optim import make_optimizer
from aejax.train.step import init_train_state, make_train_step

SHAPE = (8, 8, 1)


def _data(n=32):
    k1, k2 = jax.random.split(jax.random.key(0))
    return {"x": jax.random.uniform(k1, (n, *SHAPE)), "y": jax.random.randint(k2, (n,), 0, 10)}


def _model(**options):
    options = {"code_size": 2, "hidden": (32,), "disc_hidden": (16,), **options}
    return model_from_options("aae", input_shape=SHAPE, num_classes=10, **options)


def _changed(a, b):
    return any(not np.allclose(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.mark.parametrize("encoder_kind", ["deterministic", "gaussian"])
def test_one_step_is_three_updates_with_separate_states(encoder_kind):
    model = _model(encoder_kind=encoder_kind)
    batch = _data()
    params = model.init(jax.random.key(1), batch)
    tx = make_optimizer("adam", total_steps=10)
    state = init_train_state(model, tx, params)
    assert set(state["opt_state"]) == {"ae", "disc", "gen"}
    step = jax.jit(make_train_step(model, tx, skip_nonfinite=False))

    # only the reconstruction update (adversarial learning rates 0): the discriminator stays put
    hp = as_hp({"learning_rate": 1e-2, "disc_learning_rate": 0.0, "gen_learning_rate": 0.0, "disc_r1": 1.0})
    new, metrics, finite = step(state, batch, jax.random.key(2), hp)
    assert bool(finite) and {"recon", "disc_loss", "gen_loss", "disc_acc", "disc_r1", "grad_norm"} <= set(metrics)
    assert _changed(new["params"]["decoder"], params["decoder"])
    assert not _changed(new["params"]["discriminator"], params["discriminator"])
    # only the adversarial updates: the decoder stays put, the discriminator and the encoder move
    hp = as_hp({"learning_rate": 0.0, "disc_learning_rate": 1e-2, "gen_learning_rate": 1e-2, "disc_r1": 0.0})
    new, _, _ = step(state, batch, jax.random.key(2), hp)
    assert not _changed(new["params"]["decoder"], params["decoder"])
    assert _changed(new["params"]["discriminator"], params["discriminator"])
    assert _changed(new["params"]["encoder"], params["encoder"])
    assert _changed(new["opt_state"]["gen"], state["opt_state"]["gen"])
    loss, aux = model.loss(params, batch, jax.random.key(3), as_hp(model.default_hp()))
    assert np.isfinite(loss) and np.isclose(loss, aux["recon"])


def test_mixture_prior_samples_and_moments():
    model = _model(prior="mixture")
    z = np.asarray(model.sample_prior(200_000, key=jax.random.key(0)))
    mean, cov = model.prior_moments()
    assert np.allclose(z.mean(0), mean, atol=0.03)
    assert np.allclose(np.cov(z, rowvar=False), cov, atol=0.1)
    assert np.allclose(cov, (0.5 ** 2 + 4.0 ** 2 / 2) * np.eye(2), atol=1e-5)
    labelled = _model(prior="mixture", label_prior=True)
    labels = jnp.arange(10).repeat(50)
    zl = np.asarray(labelled.sample_prior(500, key=jax.random.key(1), labels=labels))
    nearest = np.argmin(np.linalg.norm(zl[:, None] - np.asarray(mixture_means(10, 4.0))[None], axis=-1), axis=1)
    assert np.mean(nearest == np.asarray(labels)) > 0.95  # neighbours are 2.5 std apart
    a = labelled.sample_prior(5, key=jax.random.key(3), labels=jnp.arange(5))
    assert np.array_equal(a, labelled.sample_prior(5, key=jax.random.key(3), labels=jnp.arange(5)))
    assert not np.allclose(a, labelled.sample_prior(5, key=jax.random.key(4), labels=jnp.arange(5)))


def test_bad_options_and_data():
    with pytest.raises(ConfigError, match="code_size=2"):
        _model(prior="mixture", code_size=3)
    with pytest.raises(ConfigError, match="label_prior"):
        _model(prior="gaussian", label_prior=True)
    with pytest.raises(ConfigError, match="encoder kind"):
        _model(encoder_kind="flow")
    with pytest.raises(ConfigError, match="gen_learning_rate"):
        _model().check_hp({"disc_learning_rate": 1e-3, "gen_learning_rate": -1.0, "disc_r1": 0.0})
    with pytest.raises(ConfigError, match="disc_r1"):
        _model().check_hp({"disc_learning_rate": 1e-3, "gen_learning_rate": 1e-3, "disc_r1": -1.0})
    x = np.full((4, *SHAPE), 2.0, np.float32)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        _model().check_data(x, np.zeros(4, np.int32))
    with pytest.raises(DataError, match="needs labels"):
        _model(prior="mixture", label_prior=True).check_data(np.zeros((4, *SHAPE), np.float32), None)


@pytest.mark.slow
def test_trained_gaussian_aae_codes_match_the_prior_moments(tmp_path):
    """On digits (1257 training images, 60 epochs, 2-D codes, R1 = 1), every entry of the test codes' mean
    is within 0.15 of 0 and of their covariance within 0.3 of the identity (measured: 0.08 and 0.17)."""
    from aejax.evaluate import load_run
    from aejax.evaluate.generation import code_moments
    from aejax.train import fit

    config = get_experiment_config("fmnist_aae", {
        "data.name": "digits", "data.val_size": 180, "model.hidden": (256, 128), "model.code_size": 2,
        "model.prior": "gaussian", "train.epochs": 60, "train.batch_size": 64,
        "train.progress": False, "train.tensorboard": False, "train.figures": False})
    fit(config, str(tmp_path))
    run = load_run(str(tmp_path))
    codes = run.model.encode(run.params, {"x": run.dataset.test.x, "y": run.dataset.test.y})
    moments = code_moments(np.asarray(codes), *run.model.prior_moments())
    assert moments["code_mean_max_abs_err"] < 0.15, moments
    assert moments["code_cov_max_abs_err"] < 0.3, moments


def test_generator_updates_raise_the_discriminators_prior_logit_of_the_codes():
    """Only the generator update runs (the other learning rates are 0): the encoder moves its codes
    toward where the fixed discriminator says "prior", so -log D(code) falls step after step. A
    generator that ascended its loss instead would push it up."""
    model = _model()
    batch = _data()
    params = model.init(jax.random.key(1), batch)
    tx = make_optimizer("adam", total_steps=10, schedule="constant")
    state = init_train_state(model, tx, params)
    step = jax.jit(make_train_step(model, tx, skip_nonfinite=False))
    hp = as_hp({"learning_rate": 0.0, "disc_learning_rate": 0.0, "gen_learning_rate": 3e-3, "disc_r1": 0.0})

    def gen_loss(p):  # -log D(encoder codes) under the current discriminator, deterministic encoder
        return float(model.loss(p, batch, jax.random.key(9), hp)[1]["gen_loss"])

    losses = [gen_loss(state["params"])]
    for i in range(5):
        state, _, finite = step(state, batch, jax.random.key(10 + i), hp)
        assert bool(finite)
        losses.append(gen_loss(state["params"]))
    assert not _changed(state["params"]["discriminator"], params["discriminator"])
    assert np.all(np.diff(losses) < 0), losses
    assert losses[-1] < losses[0] - 1e-3, losses
