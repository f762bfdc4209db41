import os

import pytest

import ml_collections

from aejax.config import (apply_overrides, base_config, get_experiment_config, parse_overrides, resolve_config,
                          resolve_experiment)
from aejax.errors import ConfigError, ExperimentNotFoundError

from conftest import REPO


def test_experiment_by_name_and_path():
    by_name = resolve_experiment("digits_ae")
    assert by_name == resolve_experiment(os.path.join(REPO, "experiments", "digits_ae.py"))


def test_unknown_key_says_did_you_mean():
    config = get_experiment_config("digits_ae")
    with pytest.raises(ConfigError, match="unknown config key 'model.code_sise'; did you mean 'model.code_size'"):
        apply_overrides(config, {"model.code_sise": 3})


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
                                                  "model.conv_impl": "xla", "optim.b2": 0.99})
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
                                                   "model.kl_warmup_steps": 2145, "train.epochs": 16,
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
