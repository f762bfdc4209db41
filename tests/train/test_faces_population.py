"""The per-person face models (issue 30) are one population whose members differ in their data (issue 29):
one training program for every enrolled person, each member equal to that person trained alone."""

import json
import os

import pytest
from test_retrace import compile_counts

from aejax.config import get_experiment_config
from aejax.sweep import run_sweep
from aejax.train import fit

SMALL = {"train.epochs": 2, "train.tensorboard": False, "train.figures": False, "data.augment": 1,
         "train.batch_size": 4}


def _summary(workdir):
    with open(os.path.join(workdir, "summary.json"), encoding="utf-8") as f:
        return json.load(f)


def test_the_per_person_models_train_as_one_program_and_each_as_alone(tmp_path):
    with compile_counts() as counts:
        out = run_sweep("olivetti_person", str(tmp_path / "people"), overrides=SMALL, progress=False,
                        grid=["data.normal_class=0,1,2,3"])
    assert out["ran"] == 4 and out["groups"] == 1
    assert sum(n for name, n in counts.items() if "epoch_fn" in name) == 1, dict(counts)  # one training program
    alone = fit(get_experiment_config("olivetti_person", {**SMALL, "train.progress": False,
                                                          "data.normal_class": 2}), str(tmp_path / "alone"))
    member = _summary(str(tmp_path / "people" / "runs" / "normal_class=2"))
    for key in ("val/mse", "test/mse", "train/loss", "test/loss"):
        assert member[key] == pytest.approx(alone[key], rel=1e-5), key
    assert member["steps"] == alone["steps"]
