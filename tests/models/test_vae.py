"""VAE, beta-VAE and conditional VAE: the contract, determinism, gradients, schedules and bad input."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from aejax.errors import ConfigError, DataError
from aejax.models import model_from_options
from aejax.models.common import as_hp
from aejax.train.step import init_train_state, make_train_step

SHAPE = (8, 8, 1)


def _data(n=16, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return {"x": jax.random.uniform(k1, (n, *SHAPE)), "y": jax.random.randint(k2, (n,), 0, 10)}


def _model(kind="vae", **options):
    options = {"code_size": 4, "hidden": (32,), **options}
    return model_from_options(kind, input_shape=SHAPE, num_classes=10, **options)


def _hp(model, **extra):
    return as_hp({**model.default_hp(), "learning_rate": 1e-3, **extra})


def _elbo_numpy(model, params, batch, key, hp):
    """Batch-mean one-sample ELBO, log p(x|z) - KL, written out in float64 numpy from the posterior,
    the noise the loss draws (the second half of split(key)) and the raw decoder output."""
    mean, logvar = (np.asarray(a, np.float64) for a in model.posterior(params, batch))
    eps = np.asarray(jax.random.normal(jax.random.split(key)[1], mean.shape), np.float64)
    z = mean + np.exp(0.5 * logvar) * eps
    out = np.asarray(model.decoder_output(params, jnp.asarray(z, jnp.float32)), np.float64).reshape(len(z), -1)
    x = np.asarray(batch["x"], np.float64).reshape(len(z), -1)
    if model.likelihood in ("bernoulli", "continuous_bernoulli"):
        lam = 1.0 / (1.0 + np.exp(-out))
        log_px = x * np.log(lam) + (1 - x) * np.log1p(-lam)
        if model.likelihood == "continuous_bernoulli":
            log_px += np.log(2 * np.arctanh(1 - 2 * lam) / (1 - 2 * lam))
    else:
        sigma = (np.full(x.shape[1:], float(hp["sigma"])) if model.likelihood == "gaussian"
                 else np.exp(np.asarray(model.log_sigma(params), np.float64)).reshape(-1))
        log_px = -0.5 * ((x - out) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    kl = 0.5 * np.sum(mean ** 2 + np.exp(logvar) - logvar - 1, axis=-1)
    return float(np.mean(log_px.sum(-1) - kl))


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned", "continuous_bernoulli"])
def test_loss_aux_and_shapes(likelihood):
    model = _model(likelihood=likelihood)
    batch = _data()
    params = model.init(jax.random.key(1), batch)
    loss, aux = model.loss(params, batch, jax.random.key(2), _hp(model))
    assert loss.shape == () and np.isfinite(loss)
    assert {"recon", "kl", "elbo"} <= set(aux) and all(v.shape == () for v in aux.values())
    np.testing.assert_allclose(float(aux["elbo"]), _elbo_numpy(model, params, batch, jax.random.key(2), _hp(model)),
                               rtol=1e-4)
    assert np.isclose(loss, aux["recon"] + aux["kl"], rtol=1e-6)  # beta = 1, no free bits
    assert model.encode(params, batch).shape == (16, 4)
    assert model.reconstruct(params, batch).shape == batch["x"].shape
    assert model.elbo(params, batch, key=jax.random.key(3), hp=_hp(model)).shape == (16,)
    if likelihood == "gaussian_learned":
        assert params["log_sigma"].shape == SHAPE


def test_same_key_same_samples_different_key_different_samples():
    model = _model()
    params = model.init(jax.random.key(0), _data())
    a = model.sample(params, 5, key=jax.random.key(7))
    b = model.sample(params, 5, key=jax.random.key(7))
    c = model.sample(params, 5, key=jax.random.key(8))
    assert a.shape == (5, *SHAPE)
    assert np.array_equal(a, b) and not np.allclose(a, c)
    batch = _data()
    l1 = model.loss(params, batch, jax.random.key(3), _hp(model))[0]
    l2 = model.loss(params, batch, jax.random.key(3), _hp(model))[0]
    l3 = model.loss(params, batch, jax.random.key(4), _hp(model))[0]
    assert l1 == l2 and l1 != l3
    # encode and reconstruct are deterministic (the posterior mean)
    assert np.array_equal(model.reconstruct(params, batch), model.reconstruct(params, batch))
    mean, _ = model.posterior(params, batch)
    assert np.array_equal(model.encode(params, batch), mean)


def test_gradients_flow_through_the_reparameterization_to_the_variance_head():
    model = _model()
    batch = _data()
    params = model.init(jax.random.key(0), batch)
    hp = _hp(model)

    def recon_only(p):  # the reconstruction term depends on logvar only through z = mu + sigma * eps
        return model.loss(p, batch, jax.random.key(5), hp)[1]["recon"]

    g = jax.grad(recon_only)(params)
    kernel = g["encoder"]["code"]["kernel"]  # [hidden, 2K]: mean columns then log-variance columns
    assert np.abs(np.asarray(kernel[:, :4])).sum() > 0
    assert np.abs(np.asarray(kernel[:, 4:])).sum() > 0
    # the noise is not differentiated: the gradient equals that of the same loss with eps a constant array
    _, k_z = jax.random.split(jax.random.key(5))
    eps = jax.random.normal(k_z, (16, 4))

    def recon_fixed_noise(p):
        mean, logvar = model.posterior(p, batch)
        z = mean + jnp.exp(0.5 * logvar) * eps
        return jnp.mean(model.nll(p, model.decoder_output(p, z), batch["x"], hp))

    g_fixed = jax.grad(recon_fixed_noise)(params)
    chex.assert_trees_all_close(g, g_fixed, rtol=1e-5, atol=1e-5)


def test_beta_is_an_array_hyperparameter_that_vmaps():
    model = _model()
    batch = _data()
    params = model.init(jax.random.key(0), batch)
    hp = _hp(model)
    betas = jnp.array([0.0, 1.0, 4.0])
    vm = jax.vmap(lambda b: model.loss(params, batch, jax.random.key(1), {**hp, "beta": b})[0])(betas)
    one = [model.loss(params, batch, jax.random.key(1), {**hp, "beta": b})[0] for b in betas]
    assert np.allclose(vm, one, rtol=1e-6)
    aux = model.loss(params, batch, jax.random.key(1), hp)[1]
    assert np.isclose(vm[2], aux["recon"] + 4.0 * aux["kl"], rtol=1e-5)


def test_linear_warmup_follows_the_trainers_global_step():
    model = _model(kl_schedule="linear", kl_warmup=4)
    batch = _data()
    params = model.init(jax.random.key(0), batch)
    tx = optax.scale_by_adam()
    state = init_train_state(model, tx, params)
    assert jax.tree_util.tree_structure(state["opt_state"]) == jax.tree_util.tree_structure(tx.init(params))
    step = jax.jit(make_train_step(model, tx, skip_nonfinite=False))
    weights = []
    for i in range(6):
        state, metrics, finite = step(state, batch, jax.random.key(i), _hp(model))
        weights.append(float(metrics["kl_weight"]))
        assert bool(finite)
    assert np.allclose(weights, [0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    assert int(state["step"]) == 6
    # the weight is a function of the global step the trainer passes, not of a counter of the model's
    later = {**state, "step": jnp.asarray(2, jnp.int32)}
    assert float(step(later, batch, jax.random.key(0), _hp(model))[1]["kl_weight"]) == 0.5
    # the loss the trainer evaluates (validation/test) always uses the full KL weight
    assert float(model.loss(state["params"], batch, jax.random.key(0), _hp(model))[1]["kl_weight"]) == 1.0


def test_cyclical_schedule_restarts():
    model = _model(kl_schedule="cyclical", kl_cycle=4, kl_ramp_fraction=0.5)
    assert np.allclose(model.kl_weight_at(jnp.arange(9)), [0, 0.5, 1, 1, 0, 0.5, 1, 1, 0])


def test_conditional_vae_uses_labels_and_samples_per_class():
    model = _model("cvae")
    batch = _data()
    params = model.init(jax.random.key(0), batch)
    loss, _ = model.loss(params, batch, jax.random.key(1), _hp(model))
    assert np.isfinite(loss)
    other = {**batch, "y": (batch["y"] + 1) % 10}
    assert not np.allclose(model.encode(params, batch), model.encode(params, other))
    z = jnp.zeros((2, 4))
    a = model.decode(params, z, jnp.array([0, 0]))
    b = model.decode(params, z, jnp.array([0, 3]))
    assert np.allclose(a[0], b[0]) and not np.allclose(a[1], b[1])
    s = model.sample(params, 10, key=jax.random.key(2), labels=jnp.arange(10))
    assert s.shape == (10, *SHAPE)
    assert np.array_equal(s, model.sample(params, 10, key=jax.random.key(2), labels=jnp.arange(10)))


# --- bad input: one clear error each ---------------------------------------------------------

def test_bernoulli_likelihood_rejects_data_outside_unit_interval():
    x = np.full((4, *SHAPE), 0.5, np.float32)
    x[0, 0, 0, 0] = 1.5
    for likelihood in ("bernoulli", "continuous_bernoulli"):
        with pytest.raises(DataError, match=r"\[0, 1\]"):
            _model(likelihood=likelihood).check_data(x, np.zeros(4, np.int32))
    _model(likelihood="gaussian").check_data(x, np.zeros(4, np.int32))  # fine for a Gaussian


def test_negative_beta_and_free_bits_are_config_errors():
    model = _model()
    with pytest.raises(ConfigError, match="beta"):
        model.check_hp({**model.default_hp(), "beta": -1.0})
    with pytest.raises(ConfigError, match="free_bits"):
        model.check_hp({**model.default_hp(), "free_bits": -0.1})
    g = _model(likelihood="gaussian")
    with pytest.raises(ConfigError, match="sigma"):
        g.check_hp({**g.default_hp(), "sigma": 0.0})


def test_conditional_model_rejects_missing_or_miscounted_labels():
    model = _model("cvae")
    x = np.full((4, *SHAPE), 0.5, np.float32)
    with pytest.raises(DataError, match="needs labels"):
        model.check_data(x, None)
    with pytest.raises(DataError, match=r"shape \[4\]"):
        model.check_data(x, np.zeros(3, np.int32))
    with pytest.raises(DataError, match=r"\[0, 10\)"):
        model.check_data(x, np.array([0, 1, 2, 10]))
    with pytest.raises(DataError, match="integers"):
        model.check_data(x, np.zeros(4, np.float32))
    params = model.init(jax.random.key(0), {"x": x})
    with pytest.raises(DataError, match="needs labels"):
        model.loss(params, {"x": x}, jax.random.key(0), _hp(model))
    with pytest.raises(DataError, match="needs labels"):
        model.sample(params, 3, key=jax.random.key(0))
    with pytest.raises(DataError, match=r"shape \[3\]"):
        model.sample(params, 3, key=jax.random.key(0), labels=jnp.arange(4))


def test_bad_structural_options_are_config_errors():
    with pytest.raises(ConfigError, match="likelihood"):
        _model(likelihood="poisson")
    with pytest.raises(ConfigError, match="kl_warmup"):
        _model(kl_schedule="linear")
    with pytest.raises(ConfigError, match="schedule"):
        _model(kl_schedule="sigmoid")
    with pytest.raises(ConfigError, match="binarization"):
        _model(likelihood="gaussian", dynamic_binarization=True)
    with pytest.raises(ConfigError, match="2 classes"):
        model_from_options("cvae", input_shape=SHAPE, num_classes=1, code_size=4)
    with pytest.raises(ConfigError, match="unconditional"):
        m = _model()
        m.sample(m.init(jax.random.key(0), _data()), 2, key=jax.random.key(0), labels=jnp.arange(2))


def test_kl_warmup_counter_survives_a_resume_bitwise(tmp_path):
    """The schedule follows the checkpointed global step: resuming from epoch 2 reaches the same
    parameters after epoch 4 as an uninterrupted run."""
    import shutil

    from aejax.config import get_experiment_config
    from aejax.train import fit

    overrides = {"train.epochs": 4, "train.checkpoint_every": 2, "model.kl_warmup": 60,
                 "train.progress": False, "train.tensorboard": False, "train.figures": False}
    config = get_experiment_config("digits_vae", overrides)
    whole = fit(config, str(tmp_path / "whole"))
    shutil.copytree(tmp_path / "whole", tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "4")  # as if killed after epoch 2
    resumed = fit(config, str(tmp_path / "resumed"))
    chex.assert_trees_all_equal(whole["params"], resumed["params"])
    assert whole["steps"] == resumed["steps"] == 4 * (1257 // 64)


def test_importance_weights_average_to_the_elbo_when_the_posterior_is_narrow():
    """E_q[log p(x, z) - log q(z|x)] is the ELBO: the Monte Carlo mean of the log importance weights
    matches the mean of `elbo` (analytic KL) within Monte Carlo error. The log-variance is set near -3
    so that sampling with a wrong standard deviation (exp(logvar) instead of exp(logvar / 2)) moves
    the mean by more than a nat."""
    model = _model()
    batch = _data()
    params = model.init(jax.random.key(1), batch)
    code = params["encoder"]["code"]  # [hidden, 2K] head: K means, then K log-variances
    params = {**params, "encoder": {**params["encoder"], "code": {**code, "bias": code["bias"].at[4:].set(-3.0)}}}
    assert np.all(np.asarray(model.posterior(params, batch)[1]) < -2)
    hp = _hp(model)
    s, r = 2000, 400
    lw_SxB = np.asarray(model.log_importance_weights(params, batch, key=jax.random.key(3), num_samples=s, hp=hp))
    elbo_RxB = np.asarray(jax.vmap(lambda k: model.elbo(params, batch, key=k, hp=hp))(
        jax.random.split(jax.random.key(4), r)))
    d_B = lw_SxB.mean(0) - elbo_RxB.mean(0)
    se_B = np.sqrt(lw_SxB.var(0) / s + elbo_RxB.var(0) / r)
    assert np.all(np.abs(d_B) < 4.5 * se_B), (d_B, se_B)
    assert abs(d_B.mean()) < 4 * np.sqrt(np.sum(se_B ** 2)) / len(d_B), (d_B.mean(), se_B)
