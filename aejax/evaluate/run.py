"""Loading a finished (or checkpointed) run back from its workdir for evaluation."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import ml_collections

from aejax.config import config_from_json
from aejax.data import Dataset
from aejax.errors import CheckpointError, ConfigError
from aejax.models import Autoencoder
from aejax.train.checkpoint import Checkpointer
from aejax.train.setup import setup_run


@dataclasses.dataclass
class LoadedRun:
    """What an evaluation task needs: the model, trained params, data, hp and the run's seed."""

    workdir: str
    config: ml_collections.ConfigDict
    dataset: Dataset
    model: Autoencoder
    params: Any
    hp: dict
    epoch: int
    seed: int


def load_run(workdir: str, *, dataset: Dataset | None = None) -> LoadedRun:
    """Rebuilds the run from WORKDIR/config.json (through `setup_run`) and restores its newest good checkpoint."""
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise ConfigError(f"{workdir} has no config.json; pass the workdir of an `aejax train` run.")
    with open(path, encoding="utf-8") as f:
        config = config_from_json(f.read())
    run = setup_run(config, dataset=dataset)
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=run.train.keep_checkpoints)
    try:
        restored = ckpt.restore_latest(run.restore_target())
    finally:
        ckpt.close()
    if restored is None:
        raise CheckpointError(f"{workdir} has no checkpoint yet; train it first with `aejax train`.")
    epoch, tree = restored
    return LoadedRun(workdir, config, run.dataset, run.model, jax.device_put(tree["params"]), run.hp, int(epoch),
                     run.seed)
