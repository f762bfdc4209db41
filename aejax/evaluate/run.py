"""Loading a finished (or checkpointed) run back from its workdir for evaluation."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import ml_collections

from aejax.data import Dataset, load_dataset
from aejax.errors import CheckpointError, ConfigError
from aejax.models import build_model


@dataclasses.dataclass
class LoadedRun:
    """What an evaluation task needs: config, data, model, trained params, hp and the run's keys."""

    workdir: str
    config: ml_collections.ConfigDict
    dataset: Dataset
    model: Any
    params: Any
    hp: dict
    epoch: int


def load_run(workdir: str, *, dataset: Dataset | None = None) -> LoadedRun:
    """Rebuilds the model from WORKDIR/config.json and restores the newest good checkpoint."""
    from aejax.train.checkpoint import Checkpointer
    from aejax.train.fit import RunKeys, _checkpoint_tree, build_hp, model_options
    from aejax.train.optim import make_optimizer
    from aejax.train.step import init_train_state

    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise ConfigError(f"{workdir} has no config.json; pass the workdir of an `aejax train` run.")
    with open(path, encoding="utf-8") as f:
        config = ml_collections.ConfigDict(json.load(f))
    for section in config.values():  # JSON turned the config's tuples into lists
        if isinstance(section, ml_collections.ConfigDict):
            for name, value in section.items():
                if isinstance(value, list):
                    section[name] = tuple(value)
    dataset = dataset or load_dataset(config.data.name, data_dir=config.data.dir or None,
                                      val_size=config.data.val_size, test_size=config.data.test_size,
                                      split_seed=config.data.split_seed)
    model = build_model(**model_options(config, dataset))
    hp = build_hp(model, config)
    steps = len(dataset.train) // config.train.batch_size * config.train.epochs
    tx = make_optimizer(config.optim.name, total_steps=max(steps, 1), schedule=config.optim.schedule,
                        warmup_steps=config.optim.warmup_steps, final_fraction=config.optim.final_fraction,
                        grad_clip=config.optim.grad_clip, weight_decay=config.optim.weight_decay,
                        momentum=config.optim.momentum)
    keys = RunKeys.from_seed(config.seed)
    sample = {"x": dataset.train.x[:1], "y": dataset.train.y[:1]}
    state = init_train_state(model, tx, model.init(keys.init, sample))
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.train.keep_checkpoints)
    try:
        restored = ckpt.restore_latest(_checkpoint_tree(state, keys, 0))
    finally:
        ckpt.close()
    if restored is None:
        raise CheckpointError(f"{workdir} has no checkpoint yet; train it first with `aejax train`.")
    epoch, tree = restored
    return LoadedRun(workdir, config, dataset, model, jax.device_put(tree["params"]), hp, int(epoch))
