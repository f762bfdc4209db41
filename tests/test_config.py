import os

import pytest

import ml_collections

from aejax.config import (base_config, get_experiment_config, parse_overrides, resolve_config,
                          resolve_experiment)
from aejax.errors import ConfigError, ExperimentNotFoundError

from conftest import REPO


def test_experiment_by_name_and_path():
    by_name = resolve_experiment("digits_ae")
    assert by_name == resolve_experiment(os.path.join(REPO, "experiments", "digits_ae.py"))


def test_unknown_key_says_did_you_mean():
    config = get_experiment_config("digits_ae")
    with pytest.raises(ConfigError, match="unknown config key 'model.code_sise'; did you mean 'model.code_size'"):
        resolve_config(config, {"model.code_sise": 3})


def test_override_types():
    config = get_experiment_config("digits_ae", parse_overrides(["model.code_size=8", "hp.learning_rate=1",
                                                                  "model.hidden=(32, 16)", "model.net=conv"]))
    assert config.model.code_size == 8 and config.hp.learning_rate == 1.0
    assert config.model.hidden == (32, 16) and config.model.net == "conv"
    with pytest.raises(ConfigError, match="holds int values"):
        get_experiment_config("digits_ae", {"model.code_size": "wide"})
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["model.code_size"])


def test_config_is_locked():
    config = get_experiment_config("digits_ae")
    with pytest.raises(AttributeError):
        config.model.new_field = 1


def test_missing_experiment_lists_places_and_suggests():
    with pytest.raises(ExperimentNotFoundError) as err:
        resolve_experiment("digits_aee")
    assert "no experiment 'digits_aee'" in str(err.value) and "Did you mean 'digits_ae'" in str(err.value)


def test_every_option_of_the_kind_net_and_optimizer_is_settable_without_being_listed():
    """digits_vae lists neither hp.sigma nor model.conv_impl nor optim.b2, yet all are known, with defaults."""
    config = get_experiment_config("digits_vae", {"model.likelihood": "gaussian", "hp.sigma": 0.1,
                                                  "model.net": "conv", "model.conv_impl": "xla", "optim.b2": 0.99})
    assert config.model.likelihood == "gaussian" and config.hp.sigma == 0.1
    assert config.model.conv_impl == "xla" and config.optim.b2 == 0.99
    plain = get_experiment_config("digits_vae")
    assert plain.hp.free_bits == 0.0 and plain.model.dynamic_binarization is False  # defaults filled in
    with pytest.raises(ConfigError, match="did you mean 'hp.sigma'"):
        get_experiment_config("digits_vae", {"hp.sigmaa": 0.1})


def test_changing_the_kind_picks_that_kinds_defaults():
    config = get_experiment_config("digits_ae", {"model.kind": "vae"})
    assert config.model.likelihood == "bernoulli" and config.hp.beta == 1.0  # the VAE's, not the AE's "mse"
    sparse = get_experiment_config("digits_ae", {"model.kind": "sparse", "model.sparsity": "l1"})
    assert sparse.hp.sparsity_weight == 1e-3  # the L1 default, chosen after model.sparsity was set
    # an option of the old kind that the new one does not take is dropped, not an error
    vae = get_experiment_config("digits_denoising", {"model.kind": "vae"})
    assert "corruption" not in vae.model and "noise_level" not in vae.hp


def test_a_typo_in_an_experiment_file_is_an_error():
    config = base_config(kind="sparse")
    config.model.sparsty = "kl"
    with pytest.raises(ConfigError, match="unknown config key 'model.sparsty'; did you mean 'model.sparsity'"):
        resolve_config(config)
    config = base_config()
    config.trian = ml_collections.ConfigDict({"epochs": 3})
    with pytest.raises(ConfigError, match="unknown config section 'trian'"):
        resolve_config(config)


def test_variants_are_overrides_of_one_file():
    beta4 = get_experiment_config("fmnist_vae:beta4")
    by_hand = get_experiment_config("fmnist_vae", {"hp.beta": 4.0, "hp.free_bits": 0.05, "model.kl_schedule": "linear",
                                                   "model.kl_warmup": "5 epochs", "train.epochs": 16,
                                                   "train.checkpoint_every": 4})
    assert beta4.to_dict() == by_hand.to_dict()
    assert get_experiment_config("fmnist_vae:cvae").model.kind == "cvae"
    assert resolve_experiment("fmnist_vae:cvae") == resolve_experiment("fmnist_vae")
    with pytest.raises(ConfigError, match="unknown variant 'beta5'.*did you mean 'beta4'"):
        get_experiment_config("fmnist_vae:beta5")
    with pytest.raises(ConfigError, match="has no variants"):
        get_experiment_config("digits_ae:small")


def test_a_resolved_config_resolves_to_itself():
    config = get_experiment_config("fmnist_aae")
    assert resolve_config(config).to_dict() == config.to_dict()


def test_setup_run_takes_an_experiment_files_own_config():
    from aejax import setup_run
    from aejax.config import load_experiment

    raw = load_experiment(os.path.join(REPO, "experiments", "digits_ae.py")).get_config()
    run = setup_run(raw)  # the file's get_config() as it is: resolved inside, not an AttributeError
    assert run.config.to_dict() == resolve_config(raw).to_dict()
    assert run.steps_per_epoch == len(run.dataset.train) // raw.train.batch_size


@pytest.mark.parametrize("override, message", [
    ({"model.rnn_hidden": 7}, "model.rnn_hidden is an option of net lstm/gru; this run's net is mlp."),
    ({"data.train_size": 100}, "data.train_size is an option of dataset synthetic_series/series_anomalies/"
                               "synthetic_audio; this run's dataset is digits."),
    ({"model.k": 4}, "model.k is used by kind sparse only with sparsity='topk'; this run has sparsity='kl'."),
    ({"optim.momentum": 0.9}, "optim.momentum is used only with optim.name='sgd'; this run has optim.name='adam'."),
    ({"optim.warmup": 10}, "optim.warmup is used only with optim.schedule='warmup_cosine'"),
    ({"hp.beta": 2.0}, "hp.beta is a hyperparameter of kind vae/cvae; this run's kind is sparse."),
    ({"data.dir": "/tmp"},
     "data.dir is an option of dataset fashion_mnist/olivetti_faces; this run's dataset is digits."),
    ({"train.mlflow_uri": "x"}, "train.mlflow_uri is used only with train.mlflow=True"),
    ({"optim.warmup_steps": 10}, "optim.warmup_steps is now optim.warmup"),
])
def test_an_option_the_run_would_not_use_is_an_error_naming_who_uses_it(override, message):
    with pytest.raises(ConfigError) as err:
        get_experiment_config("digits_sparse", override)
    assert message in str(err.value)


def test_the_resolved_config_holds_only_what_the_run_uses():
    config = get_experiment_config("digits_ae").to_dict()
    assert set(config["model"]) == {"kind", "net", "code_size", "hidden", "activation", "dtype", "likelihood"}
    assert set(config["data"]) == {"name", "normal_class", "folds", "fold", "train_examples", "on_device",
                                   "device_bytes_limit", "stream_chunk_steps", "val_size", "test_size", "split_seed"}
    assert "momentum" not in config["optim"] and "warmup" not in config["optim"]  # adam, cosine
    mae = get_experiment_config("fmnist_mae").to_dict()["model"]
    assert mae["net"] == "transformer" and "code_size" not in mae and "hidden" not in mae
    with pytest.raises(ConfigError, match="model.code_size is not an option of kind mae"):
        get_experiment_config("fmnist_mae", {"model.code_size": 8})
    with pytest.raises(ConfigError, match="kind 'mae' always builds a transformer net"):
        get_experiment_config("fmnist_mae", {"model.net": "mlp"})
    # an experiment file's option that only another choice uses is dropped with that choice changed
    topk = get_experiment_config("digits_sparse", {"model.sparsity": "topk"}).to_dict()["model"]
    assert topk["k"] == 8


def test_durations_take_a_unit_and_are_converted_in_one_place():
    from aejax.config import duration
    from aejax.train.setup import setup_run

    config = get_experiment_config("digits_vae", {"model.kl_warmup": "2 epochs", "optim.schedule": "warmup_cosine",
                                                  "optim.warmup": "10%", "train.epochs": 10})
    assert config.model.kl_warmup == "2 epochs"  # config.json keeps what was written
    run = setup_run(config)
    spe = run.steps_per_epoch
    assert run.model.kl_warmup == 2 * spe and run.warmup_steps == round(0.1 * 10 * spe)
    assert duration("train.checkpoint_every", "90 s").amount == 90.0
    for bad, message in [("2 fortnights", "is not a duration"), ("-3 epochs", "is not a duration"),
                         ("5 minutes", "in seconds is not accepted here")]:
        with pytest.raises(ConfigError, match=message):
            get_experiment_config("digits_vae", {"model.kl_warmup": bad})


def test_a_warmup_longer_than_a_shortened_run_is_clipped_with_one_line(capfd):
    from aejax.train.setup import setup_run

    run = setup_run(get_experiment_config("digits_vae", {"optim.schedule": "warmup_cosine", "optim.warmup": "5 epochs",
                                                         "train.epochs": 1}))
    assert run.warmup_steps == run.steps_per_epoch - 1
    lines = [line for line in capfd.readouterr().err.splitlines() if "clipped" in line]
    assert len(lines) == 2 and "optim.warmup (95 steps)" in lines[1] and "clipped to 18 steps" in lines[1]
    assert "model.kl_warmup (500 steps) is longer than the run's 19 steps" in lines[0]  # one line each
    assert run.model.kl_warmup == run.total_steps


def test_weight_decay_with_sgd_is_an_unused_option_in_one_line():
    with pytest.raises(ConfigError, match=r"optim.weight_decay is used only with optim.name='adamw'; this run has "
                                          r"optim.name='sgd'") as error:
        get_experiment_config("digits_ae", {"optim.name": "sgd", "optim.weight_decay": 1e-4})
    assert "\n" not in str(error.value)
