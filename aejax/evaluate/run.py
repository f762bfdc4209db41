"""Loading a finished (or checkpointed) run back from its workdir for evaluation."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aejax.config import config_from_json
from aejax.data import Dataset
from aejax.errors import CheckpointError, ConfigError, DataError
from aejax.models import Autoencoder, Sampler
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
    epoch: int  # the epoch of the restored checkpoint: what an evaluation scores
    seed: int
    train_epochs: int | None = None  # the run's train.epochs
    finished: bool = True  # the checkpoint is the last epoch and summary.json was written

    def status(self) -> str:
        """Which epoch is loaded and whether the run is finished, in words: "epoch 3 of 10, unfinished (...)"."""
        of = f" of {self.train_epochs}" if self.train_epochs else ""
        if self.finished:
            return f"epoch {self.epoch}{of}, finished"
        why = (f"training stopped or still running at epoch {self.epoch}" if self.train_epochs and
               self.epoch < self.train_epochs else "no summary.json: the final evaluation was not written")
        return f"epoch {self.epoch}{of}, unfinished ({why})"

    def _batch(self, x, y=None) -> dict:
        x = np.asarray(x, np.float32)
        if x.shape[1:] != tuple(self.model.input_shape):
            raise DataError(f"expected arrays shaped [N, {', '.join(map(str, self.model.input_shape))}] for this "
                            f"run, got {x.shape}.")
        y = np.zeros(len(x), np.int32) if y is None else np.asarray(y, np.int32)
        return {"x": jnp.asarray(x), "y": jnp.asarray(y)}

    def encode(self, x, y=None) -> np.ndarray:
        """Codes [N, K] of images x [N, *input_shape] (labels y for a conditional kind)."""
        return np.asarray(self.model.encode(self.params, self._batch(x, y)))

    def reconstruct(self, x, y=None) -> np.ndarray:
        """Reconstructions of x in data space, shaped like x."""
        return np.asarray(self.model.reconstruct(self.params, self._batch(x, y)))

    def sample(self, num: int, *, seed: int = 0, labels=None) -> np.ndarray:
        """`num` samples from a generative kind's prior, decoded (labels [num] for a conditional one)."""
        if not isinstance(self.model, Sampler):
            raise ConfigError(f"model kind {self.model.name!r} cannot sample; train a vae, cvae or aae.")
        labels = None if labels is None else jnp.asarray(labels, jnp.int32)
        return np.asarray(self.model.sample(self.params, num, key=jax.random.key(seed), labels=labels))


def load_run(workdir: str, *, dataset: Dataset | None = None) -> LoadedRun:
    """Rebuilds the run from WORKDIR/config.json (through `setup_run`) and restores its newest good checkpoint.

    The run is `finished` when that checkpoint is of the last epoch (train.epochs) and summary.json exists;
    an unfinished run (stopped, still training, or extended with more epochs) loads its newest checkpoint.
    """
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
    train_epochs = int(run.train.epochs)
    finished = int(epoch) >= train_epochs and os.path.isfile(os.path.join(workdir, "summary.json"))
    return LoadedRun(workdir, config, run.dataset, run.model, jax.device_put(tree["params"]), run.hp, int(epoch),
                     run.seed, train_epochs=train_epochs, finished=finished)
