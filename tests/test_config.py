import os

import pytest

from aejax.config import apply_overrides, get_experiment_config, parse_overrides, resolve_experiment
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
