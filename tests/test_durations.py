"""Durations (aejax.durations): nearest rounding with halves up, whole steps and epochs, units in any case."""

import pytest

from aejax.config import duration, get_experiment_config
from aejax.durations import Duration, parse
from aejax.errors import ConfigError


@pytest.mark.parametrize("total, expected", [(25, 3), (35, 4), (95, 10), (15, 2), (14, 1), (10, 1), (4, 0)])
def test_a_share_of_the_run_rounds_to_the_nearest_step_halves_up(total, expected):
    assert Duration(10.0, "percent").steps(steps_per_epoch=1, total_steps=total) == expected


def test_epochs_and_steps_round_halves_up():
    assert Duration(0.5, "epochs").steps(steps_per_epoch=5, total_steps=50) == 3  # 2.5 -> 3, not 2
    assert Duration(1.5, "epochs").steps(steps_per_epoch=3, total_steps=50) == 5  # 4.5 -> 5
    assert Duration(12.0, "steps").steps(steps_per_epoch=5, total_steps=50) == 12


def test_the_warmup_of_digits_is_ten_percent_of_95_steps_rounded_up():
    from aejax.train.setup import setup_run

    config = get_experiment_config("digits_ae", {"optim.schedule": "warmup_cosine", "optim.warmup": "10%",
                                                 "train.epochs": 5})
    run = setup_run(config)
    assert run.total_steps == 95 and run.warmup_steps == 10


@pytest.mark.parametrize("text, amount, unit", [("1E3 steps", 1000.0, "steps"), ("1e3 STEPS", 1000.0, "steps"),
                                                ("3 Epochs", 3.0, "epochs"), ("5 Minutes", 300.0, "seconds"),
                                                ("10 PERCENT", 10.0, "percent"), ("90 S", 90.0, "seconds")])
def test_units_are_case_insensitive(text, amount, unit):
    assert parse(text, key="k", default_unit="steps", units=("steps", "epochs", "percent", "seconds")) == Duration(
        amount, unit)


@pytest.mark.parametrize("key, value, message", [
    ("optim.warmup", "2.5 steps", r"optim.warmup='2.5 steps': optim.warmup counts whole steps"),
    ("optim.warmup", 2.5, r"counts whole steps"),
    ("train.checkpoint_every", "1.5 epochs", r"train.checkpoint_every='1.5 epochs': .* counts whole epochs"),
    ("train.eval_every", 1.5, r"counts whole epochs"),
])
def test_fractions_where_only_whole_steps_or_epochs_make_sense_are_one_line(key, value, message):
    with pytest.raises(ConfigError, match=message) as error:
        duration(key, value)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="counts whole"):
        get_experiment_config("digits_ae", {key: value, "optim.schedule": "warmup_cosine"})


def test_fractions_of_epochs_and_shares_stay_where_they_mean_steps():
    assert duration("optim.warmup", "0.5 epochs") == Duration(0.5, "epochs")
    assert duration("optim.warmup", "2.5%") == Duration(2.5, "percent")
    assert duration("train.eval_every", "12.5%") == Duration(12.5, "percent")
    assert duration("optim.warmup", "3 steps") == Duration(3.0, "steps") and duration("optim.warmup", 3.0).amount == 3
