"""Sparse, contractive and denoising autoencoders: the contract, their terms, bad input, short fits on digits."""

import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.config import get_experiment_config
from aejax.errors import ConfigError, DataError
from aejax.evaluate import load_run
from aejax.evaluate.sparsity import sparsity_task
from aejax.models import model_from_options
from aejax.models.common import as_hp
from aejax.objectives import contractive_penalty
from aejax.train import fit, make_optimizer
from aejax.train.step import init_train_state, make_train_step

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPE = (8, 8, 1)


def _build(kind, **options):
    base = {"input_shape": SHAPE, "num_classes": 10, "code_size": 12, "hidden": (16,)}
    return model_from_options(kind, **{**base, **options})


def _batch(n=16, seed=0):
    x = jax.random.uniform(jax.random.key(seed), (n, *SHAPE))
    return {"x": x, "y": jnp.zeros(n, jnp.int32)}


def _hp(model, **values):
    return as_hp({**model.default_hp(), "learning_rate": 1e-3, **values})


KINDS = [("sparse", {"sparsity": "kl"}), ("sparse", {"sparsity": "l1"}), ("sparse", {"sparsity": "topk", "k": 3}),
         ("contractive", {}), ("contractive", {"method": "hutchinson", "num_probes": 2}),
         ("denoising", {"corruption": "gaussian"}), ("denoising", {"corruption": "masking"}),
         ("denoising", {"corruption": "salt_and_pepper"})]


@pytest.mark.parametrize("kind, options", KINDS)
def test_contract_shapes_and_scalar_aux(kind, options):
    model = _build(kind, **options)
    batch = _batch()
    params = model.init(jax.random.key(0), batch)
    hp = _hp(model)
    model.check_hp(hp)
    loss, aux = jax.jit(model.loss)(params, batch, jax.random.key(1), hp)
    assert loss.shape == () and np.isfinite(float(loss))
    assert aux and all(v.shape == () for v in aux.values())
    assert model.encode(params, batch).shape == (16, 12)
    assert model.reconstruct(params, batch).shape == batch["x"].shape


@pytest.mark.parametrize("kind, options, name, values", [
    ("sparse", {"sparsity": "kl"}, "rho", [0.02, 0.1, 0.3]),
    ("contractive", {}, "contractive_weight", [0.0, 0.5, 2.0]),
    ("denoising", {}, "noise_level", [0.0, 0.2, 0.4]),
])
def test_hp_is_vmappable(kind, options, name, values):
    model = _build(kind, **options)
    batch = _batch()
    params = model.init(jax.random.key(0), batch)
    hp = _hp(model)
    stacked = {**hp, name: jnp.asarray(values, jnp.float32)}
    axes = {k: (0 if k == name else None) for k in hp}
    losses = jax.vmap(lambda h: model.loss(params, batch, jax.random.key(1), h)[0], in_axes=(axes,))(stacked)
    single = [float(model.loss(params, batch, jax.random.key(1), {**hp, name: jnp.float32(v)})[0]) for v in values]
    np.testing.assert_allclose(np.asarray(losses), single, rtol=1e-5)


def test_sparse_kl_loss_matches_hand_computation():
    model = _build("sparse", sparsity="kl")
    batch = _batch()
    params = model.init(jax.random.key(0), batch)
    hp = _hp(model, sparsity_weight=0.3, rho=0.1)
    loss, aux = model.loss(params, batch, jax.random.key(1), hp)
    h = np.asarray(model.encode(params, batch), np.float64)
    rho_hat = h.mean(axis=0)
    kl = np.sum(0.1 * np.log(0.1 / rho_hat) + 0.9 * np.log(0.9 / (1 - rho_hat)))
    np.testing.assert_allclose(float(aux["sparsity"]), kl, rtol=1e-4)
    np.testing.assert_allclose(float(loss), float(aux["recon"]) + 0.3 * kl, rtol=1e-5)
    np.testing.assert_allclose(float(aux["mean_activation"]), h.mean(), rtol=1e-5)


def test_sparse_l1_codes_are_relu_and_term_matches():
    model = _build("sparse", sparsity="l1")
    batch = _batch()
    params = model.init(jax.random.key(0), batch)
    loss, aux = model.loss(params, batch, jax.random.key(1), _hp(model, sparsity_weight=0.2))
    z = np.asarray(model.encode(params, batch))
    assert z.min() >= 0
    np.testing.assert_allclose(float(aux["sparsity"]), np.abs(z).sum(axis=1).mean(), rtol=1e-5)
    np.testing.assert_allclose(float(aux["l0"]), (z > 0).sum(axis=1).mean(), rtol=1e-6)


def test_topk_codes_have_exactly_k_nonzeros():
    model = _build("sparse", sparsity="topk", k=4)
    batch = _batch(64)
    params = model.init(jax.random.key(0), batch)
    z = np.asarray(model.encode(params, batch))
    assert np.all((z != 0).sum(axis=1) == 4)
    _, aux = model.loss(params, batch, jax.random.key(1), _hp(model))
    assert float(aux["l0"]) == 4.0


def test_topk_dead_unit_tracking_and_auxk_gradient():
    model = _build("sparse", sparsity="topk", k=2, aux_k=4, dead_window=3)
    batch = _batch(8)
    params = model.init(jax.random.key(0), batch)
    tx = make_optimizer("adam", total_steps=10)
    state = init_train_state(model, tx, params)
    assert state["opt_state"]["steps_since_fired"].shape == (12,)
    step = jax.jit(make_train_step(model, tx, skip_nonfinite=False))
    hp = _hp(model)
    expected = np.zeros(12, np.int64)  # the counter rule, replayed from the codes before each update
    for i in range(4):
        fired = np.asarray(jnp.any(model.encode(state["params"], batch) != 0, axis=0))
        expected = np.where(fired, 0, expected + 1)
        state, metrics, finite = step(state, batch, jax.random.key(i), hp)
        assert bool(finite)
    since = np.asarray(state["opt_state"]["steps_since_fired"])
    np.testing.assert_array_equal(since, expected)
    assert np.any(since >= 3), "with k=2 of 12 units on 8 examples some units stay silent"
    assert 0 < float(metrics["dead_fraction"]) < 1
    # The AuxK term reaches the encoder weights of dead units only through their pre-activations.
    dead = jnp.asarray(since >= 3)
    grads = jax.grad(lambda p: model.loss_with_dead(p, batch, None, hp, dead_K=dead)[0])(state["params"])
    g_code = np.asarray(grads["encoder"]["code"]["kernel"])
    assert np.abs(g_code[:, np.asarray(dead)]).sum() > 0
    no_aux = jax.grad(lambda p: model.loss_with_dead(p, batch, None, {**hp, "aux_weight": jnp.float32(0.0)},
                                                     dead_K=dead)[0])(state["params"])
    live_silent = np.asarray(dead) & ~np.asarray(jnp.any(model.encode(state["params"], batch) != 0, axis=0))
    assert np.abs(np.asarray(no_aux["encoder"]["code"]["kernel"])[:, live_silent]).sum() == 0


def test_contractive_loss_is_recon_plus_weighted_penalty():
    model = _build("contractive", hidden=(16,), method="jacrev")
    batch = _batch()
    params = model.init(jax.random.key(0), batch)
    loss, aux = model.loss(params, batch, jax.random.key(1), _hp(model, contractive_weight=0.7))
    encode = lambda x: jax.nn.sigmoid(model.encoder.apply({"params": params["encoder"]}, x))
    pen = float(jnp.mean(contractive_penalty(encode, batch["x"], method="jacfwd")))
    np.testing.assert_allclose(float(aux["jacobian_fro2"]), pen, rtol=1e-4)
    np.testing.assert_allclose(float(loss), float(aux["recon"]) + 0.7 * pen / 64, rtol=1e-5)


def test_contractive_single_sigmoid_layer_uses_the_closed_form():
    closed = _build("contractive", hidden=(), method="closed_form")
    auto = _build("contractive", hidden=(), method="auto")
    rev = _build("contractive", hidden=(), method="jacrev")
    batch = _batch()
    params = closed.init(jax.random.key(0), batch)
    values = [float(m.loss(params, batch, jax.random.key(1), _hp(m))[1]["jacobian_fro2"]) for m in (closed, auto, rev)]
    np.testing.assert_allclose(values, values[2], rtol=1e-5)


def test_denoising_loss_compares_with_the_clean_input():
    model = _build("denoising", corruption="masking")
    batch = _batch()
    params = model.init(jax.random.key(0), batch)
    key = jax.random.key(3)
    loss, aux = model.loss(params, batch, key, _hp(model, noise_level=0.5))
    x_tilde = model.corrupt(batch["x"], 0.5, key=key)
    x_hat = model.reconstruct(params, {"x": x_tilde})
    np.testing.assert_allclose(float(loss), float(jnp.mean(jnp.square(x_hat - batch["x"]))), rtol=1e-5)
    np.testing.assert_allclose(float(aux["input_mse"]), float(jnp.mean(jnp.square(x_tilde - batch["x"]))), rtol=1e-5)
    # A different step key draws different noise.
    assert float(model.loss(params, batch, jax.random.key(4), _hp(model, noise_level=0.5))[0]) != float(loss)


# -- bad input: one clear error each, before any compile ------------------------------------------------


def test_k_not_below_code_width_is_an_error():
    with pytest.raises(ConfigError, match="code width"):
        _build("sparse", sparsity="topk", k=12)


def test_rho_outside_unit_interval_is_an_error():
    model = _build("sparse", sparsity="kl")
    for rho in (0.0, 1.0, 1.3):
        with pytest.raises(ConfigError, match="hp.rho"):
            model.check_hp({**model.default_hp(), "rho": rho})


def test_negative_sparsity_weight_is_an_error():
    model = _build("sparse", sparsity="l1")
    with pytest.raises(ConfigError, match="sparsity_weight"):
        model.check_hp({**model.default_hp(), "sparsity_weight": -1.0})


def test_unknown_sparsity_is_an_error():
    with pytest.raises(ConfigError, match="unknown sparsity 'l2'"):
        _build("sparse", sparsity="l2")


def test_negative_sigma_is_an_error():
    model = _build("denoising", corruption="gaussian")
    with pytest.raises(ConfigError, match="sigma must be >= 0"):
        model.check_hp({"noise_level": -0.1})


def test_fraction_above_one_is_an_error():
    model = _build("denoising", corruption="salt_and_pepper")
    with pytest.raises(ConfigError, match=r"must lie in \[0, 1\]"):
        model.check_hp({"noise_level": 1.5})


def test_denoising_data_outside_unit_range_is_an_error():
    model = _build("denoising")
    with pytest.raises(DataError, match=r"rescale the images to \[0, 1\]"):
        model.check_data(np.full((2, *SHAPE), 2.0, np.float32))


def test_unknown_method_is_an_error():
    with pytest.raises(ConfigError, match="unknown contractive method 'exact'"):
        _build("contractive", method="exact")


def test_closed_form_on_a_deep_encoder_is_an_error():
    with pytest.raises(ConfigError, match="single sigmoid layer"):
        _build("contractive", hidden=(16,), method="closed_form")
    with pytest.raises(ConfigError, match="single sigmoid layer"):
        _build("contractive", net="conv", hidden=(), channels=(4,), method="closed_form")


def test_negative_contractive_weight_is_an_error():
    model = _build("contractive")
    with pytest.raises(ConfigError, match="contractive_weight"):
        model.check_hp({"contractive_weight": -0.1})


def test_bad_hp_in_a_config_fails_in_fit_before_training(tmp_path):
    config = get_experiment_config(os.path.join(REPO, "experiments", "digits_denoising.py"),
                                   {"hp.noise_level": -0.2, "train.progress": False})
    with pytest.raises(ConfigError, match="sigma must be >= 0"):
        fit(config, str(tmp_path))
    assert not os.path.exists(tmp_path / "metrics.jsonl")


# -- short end-to-end fits on digits -------------------------------------------------------------------


def _short(name, **overrides):
    base = {"train.epochs": 8, "train.progress": False, "train.figures": False, "train.tensorboard": False,
            "train.checkpoint_every": 8}
    return get_experiment_config(os.path.join(REPO, "experiments", name), {**base, **overrides})


def _records(workdir):
    from aejax.train.metrics import read_metrics

    return read_metrics(os.path.join(workdir, "metrics.jsonl"))


def _sparsity(run):
    return sparsity_task(run.model, run.params, run.dataset, run.hp, seed=run.seed,
                         out_dir=os.path.join(run.workdir, "figures"))


def test_fit_sparse_kl_and_topk_on_digits(tmp_path):
    summary = fit(_short("digits_sparse.py", **{"train.epochs": 15}), str(tmp_path / "kl"))
    records = _records(tmp_path / "kl")
    assert records[-1]["train/loss"] < records[0]["train/loss"]
    assert abs(summary["test/mean_activation"] - 0.05) / 0.05 < 0.2
    kl = _sparsity(load_run(str(tmp_path / "kl")))
    assert kl["test/mean_activation_rel_error"] < 0.2
    summary = fit(_short("digits_sparse.py", **{"model.sparsity": "topk"}), str(tmp_path / "topk"))
    records = _records(tmp_path / "topk")
    assert records[-1]["train/recon"] < 0.7 * records[0]["train/recon"]
    assert summary["test/l0"] == 8.0
    # no unit can be dead in epoch 1 (19 steps < dead_window = 100); AuxK keeps most units alive later
    assert records[0]["train/dead_fraction"] == 0.0
    assert records[-1]["train/dead_fraction"] < 0.5
    # A full pass over the test split: exactly k nonzeros everywhere, and the dead-unit fraction.
    stats = _sparsity(load_run(str(tmp_path / "topk")))
    assert stats["test/l0_min"] == stats["test/l0_max"] == 8
    assert 0.0 <= stats["test/dead_fraction"] < 1.0
    firing = np.asarray(stats["firing_rate"])
    assert firing.shape == (64,) and stats["test/dead_fraction"] == np.mean(firing == 0)
    assert np.isclose(firing.sum(), 8.0)
    assert os.path.isfile(stats["figures"][0])


def test_fit_contractive_on_digits(tmp_path):
    summary = fit(_short("digits_contractive.py"), str(tmp_path / "cae"))
    records = _records(tmp_path / "cae")
    assert records[-1]["train/loss"] < 0.7 * records[0]["train/loss"]
    assert np.isfinite(summary["test/jacobian_fro2"])


def test_fit_denoising_on_digits(tmp_path):
    summary = fit(_short("digits_denoising.py"), str(tmp_path / "dae"))
    records = _records(tmp_path / "dae")
    assert records[-1]["train/loss"] < 0.7 * records[0]["train/loss"]
    # The denoised output is closer to the clean images than the corrupted input is.
    assert summary["test/recon"] < summary["test/input_mse"]


def test_dead_unit_counters_survive_a_resume_bitwise(tmp_path):
    """The top-k dead-unit counters live in the checkpointed optimizer state: resuming after epoch 1
    reaches the same parameters and metrics after epoch 2 as an uninterrupted run."""
    import shutil

    config = _short("digits_sparse.py", **{"model.sparsity": "topk", "model.dead_window": 5, "train.epochs": 2,
                                           "train.checkpoint_every": 1})
    whole = fit(config, str(tmp_path / "whole"))
    fit(config, str(tmp_path / "resumed"))
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "2")  # as if killed after epoch 1
    resumed = fit(config, str(tmp_path / "resumed"))
    chex.assert_trees_all_equal(whole["params"], resumed["params"])
    last_whole, last_resumed = _records(tmp_path / "whole")[-1], _records(tmp_path / "resumed")[-1]
    for key in ("train/loss", "train/dead_fraction", "train/sparsity", "val/loss"):
        assert last_whole[key] == last_resumed[key]
