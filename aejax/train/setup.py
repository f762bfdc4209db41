"""One run setup: a config becomes everything a run needs, built in one place.

`setup_run(config)` loads the dataset, builds the model from its NetSpec and options, the
`hp` pytree, the optimizer, the run's keys and the training options, and checks them all
before anything compiles. `fit`, `load_run` (evaluation), the benchmark and the sweep call
it; nothing else unpacks a config, and nothing below it receives one.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from aejax.data import Dataset, check_images, load_dataset, restrict_to_class
from aejax.errors import ConfigError
from aejax.models import Autoencoder, model_from_options
from aejax.models.common import as_hp
from aejax.train.distributed import replicated
from aejax.train.feed import CHUNK_BYTES, DeviceEpochs, HostStream, chunk_steps_for, streams_from_host
from aejax.train.optim import make_optimizer
from aejax.train.step import (TrainState, init_train_state, make_chunk_fn, make_epoch_fn, make_epochs_fn, make_eval_fn,
                              make_train_step)


@functools.lru_cache(maxsize=32)
def jitted_init(model: Autoencoder):
    """`model.init` compiled once per model structure (runs of a sweep share it; the values equal eager init's)."""
    return jax.jit(model.init)


@dataclasses.dataclass(frozen=True)
class RunKeys:
    """The run's keys, all derived from the seed: init, data order, per-step loop, evaluation."""

    init: jax.Array
    data: jax.Array
    loop: jax.Array
    eval: jax.Array

    @classmethod
    def from_seed(cls, seed: int) -> "RunKeys":
        return cls(*jax.random.split(jax.random.key(seed), 4))


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """config.train as plain values (see `aejax.config.TRAIN_DEFAULTS`)."""

    epochs: int
    batch_size: int
    eval_batch_size: int
    checkpoint_every: int
    keep_checkpoints: int
    skip_nonfinite: bool
    tensorboard: bool
    figures: bool
    progress: bool
    data_parallel: bool = False
    eval_every: int = 1  # validation every N epochs (and after the last)
    epochs_per_call: int = 1  # epochs scanned in one device call between evaluations and checkpoints
    async_metrics: bool = False  # fetch an epoch's metrics while the next epochs run
    mlflow: bool = False  # track the run in MLflow (aejax.train.tracking)
    mlflow_uri: str = ""  # "" = $MLFLOW_TRACKING_URI or ./mlruns; a path = a local file store
    mlflow_experiment: str = "aejax"

    def check(self, num_train: int) -> None:
        if self.epochs < 1:
            raise ConfigError(f"train.epochs must be >= 1, got {self.epochs}.")
        if not 1 <= self.batch_size <= num_train:
            raise ConfigError(f"train.batch_size must lie in [1, {num_train}] (the training split's size), "
                              f"got {self.batch_size}.")
        if self.eval_batch_size < 1 or self.checkpoint_every < 1:
            raise ConfigError("train.eval_batch_size and train.checkpoint_every must be >= 1.")
        if self.eval_every < 1 or self.epochs_per_call < 1:
            raise ConfigError(f"train.eval_every and train.epochs_per_call must be >= 1, got {self.eval_every} and "
                              f"{self.epochs_per_call}; use 1 for every epoch.")
        devices = jax.device_count()
        if self.data_parallel and self.batch_size % devices:
            raise ConfigError(f"train.data_parallel splits each batch over the {devices} devices, so "
                              f"train.batch_size must be a multiple of {devices}, got {self.batch_size}.")


@dataclasses.dataclass(frozen=True)
class FeedOptions:
    """How the training split reaches the device (config.data.on_device, device_bytes_limit,
    stream_chunk_steps; see `aejax.train.feed`)."""

    on_device: bool = True  # False: always stream from the host; True: on the device when it fits
    device_bytes_limit: int = 0  # the split's budget on the device in bytes; 0: half the free device memory
    stream_chunk_steps: int = 0  # batches per streamed chunk; 0: about 64 MiB

    def check(self) -> None:
        if self.device_bytes_limit < 0 or self.stream_chunk_steps < 0:
            raise ConfigError(f"data.device_bytes_limit and data.stream_chunk_steps must be >= 0 (0: automatic), "
                              f"got {self.device_bytes_limit} and {self.stream_chunk_steps}.")


@dataclasses.dataclass(frozen=True)
class RunSetup:
    """A run, built: data, model, hp, optimizer, keys and options; it makes the step, epoch and state."""

    config: ml_collections.ConfigDict
    dataset: Dataset
    model: Autoencoder
    hp: dict[str, jax.Array]
    tx: optax.GradientTransformation
    keys: RunKeys
    train: TrainOptions
    feed: FeedOptions = FeedOptions()

    @property
    def seed(self) -> int:
        return int(self.config.seed)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.dataset.train) // self.train.batch_size

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.train.epochs

    def sample_batch(self) -> dict[str, jax.Array]:
        """One training example as a batch (what `model.init` sees)."""
        return {"x": jnp.asarray(self.dataset.train.x[:1]), "y": jnp.asarray(self.dataset.train.y[:1])}

    def init_state(self) -> TrainState:
        """The state before the first step: step 0, initial params and optimizer state."""
        params = jitted_init(self.model)(self.keys.init, self.sample_batch())
        return init_train_state(self.model, self.tx, params)

    def checkpoint_tree(self, state: TrainState, epoch: int) -> dict[str, Any]:
        """What a checkpoint holds. The data cursor is (epoch, step): batch order and step keys are
        functions of them and the seed, so nothing else is needed to resume exactly."""
        return {"step": state["step"], "params": state["params"], "opt_state": state["opt_state"],
                "rng": np.asarray(jax.random.key_data(self.keys.init)), "epoch": np.asarray(epoch, np.int32)}

    def restore_target(self) -> dict[str, Any]:
        """The tree (shapes and dtypes) a checkpoint of this run restores into."""
        return self.checkpoint_tree(self.init_state(), 0)

    def train_step(self):
        """step(state, batch, key, hp) -> (state, metrics, finite): the one update path."""
        return make_train_step(self.model, self.tx, skip_nonfinite=self.train.skip_nonfinite)

    def data_mesh(self):
        """A Mesh with one "data" axis over every device when train.data_parallel (and there are
        several devices, on this process or on several joined by `aejax.train.distributed`), else None."""
        if not self.train.data_parallel or jax.device_count() < 2:
            return None
        return jax.sharding.Mesh(np.asarray(jax.devices()), ("data",))

    def replicate(self, tree):
        """`tree` on the device: replicated over the data mesh when there is one."""
        mesh = self.data_mesh()
        return jax.device_put(tree) if mesh is None else replicated(tree, mesh)

    def epoch_fn(self):
        """The jitted scanned epoch of `train_step` over this run's training split (each batch split
        over the data mesh when there is one)."""
        mesh = self.data_mesh()
        sharding = None if mesh is None else jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
        return make_epoch_fn(self.train_step(), num_examples=len(self.dataset.train),
                             batch_size=self.train.batch_size, batch_sharding=sharding)

    @functools.cached_property
    def streams(self) -> bool:
        """True when the training split streams from host memory instead of living on the device."""
        train = self.dataset.train
        return streams_from_host(train.x, train.y, on_device=self.feed.on_device,
                                 bytes_limit=self.feed.device_bytes_limit)

    def eval_fn(self):
        """evaluate(params, x, y, hp, key); a split left on the host (the streamed training split) is
        read in chunks of about the streaming chunk's size."""
        example_bytes = 4 * int(np.prod(self.dataset.input_shape))
        chunk_batches = max(1, CHUNK_BYTES // (example_bytes * self.train.eval_batch_size)) if self.streams else 0
        return make_eval_fn(self.model, batch_size=self.train.eval_batch_size, host_chunk_batches=chunk_batches)

    def feed_fn(self):
        """feed(state, epochs) -> (state, parts): the training split on the device (one epoch per call,
        or `train.epochs_per_call`) or streamed from the host in chunks (`aejax.train.feed`)."""
        train = self.dataset.train
        if not self.streams:
            mesh = self.data_mesh()
            sharding = None if mesh is None else jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
            epochs_fn = make_epochs_fn(self.train_step(), num_examples=len(train), batch_size=self.train.batch_size,
                                       batch_sharding=sharding)
            return DeviceEpochs(self.epoch_fn(), epochs_fn, self.replicate(train.x), self.replicate(train.y), self.hp,
                                data_key=self.keys.data, loop_key=self.keys.loop)
        chunk_steps = chunk_steps_for(self.feed.stream_chunk_steps, example_bytes=4 * int(np.prod(self.dataset.input_shape)),
                                      batch_size=self.train.batch_size, steps_per_epoch=self.steps_per_epoch)
        return HostStream(make_chunk_fn(self.train_step()), train.x, train.y, self.hp, data_key=self.keys.data,
                          loop_key=self.keys.loop, batch_size=self.train.batch_size, chunk_steps=chunk_steps)

    def device_splits(self):
        """((train_x, train_y), (val_x, val_y), (test_x, test_y)): on the device (replicated over a data
        mesh), except a streamed training split, which stays on the host."""
        d = self.dataset
        return tuple((s.x, s.y) if name == "train" and self.streams else (self.replicate(s.x), self.replicate(s.y))
                     for name, s in (("train", d.train), ("val", d.val), ("test", d.test)))


def build_hp(model: Autoencoder, hp_config: ml_collections.ConfigDict) -> dict[str, jax.Array]:
    """The `hp` pytree: the model's defaults updated by config.hp; validated by the model."""
    values = {**model.default_hp(), **hp_config.to_dict()}
    if not np.isfinite(values["learning_rate"]) or values["learning_rate"] <= 0:
        raise ConfigError(f"hp.learning_rate must be a positive number, got {values['learning_rate']}.")
    model.check_hp(values)
    return as_hp(values)


def optimizer(optim: ml_collections.ConfigDict, total_steps: int, inject: tuple[str, ...] = ()
              ) -> optax.GradientTransformation:
    return make_optimizer(optim.name, total_steps=total_steps, schedule=optim.schedule,
                          warmup_steps=optim.warmup_steps, final_fraction=optim.final_fraction,
                          grad_clip=optim.grad_clip, weight_decay=optim.weight_decay, momentum=optim.momentum,
                          b1=optim.b1, b2=optim.b2, eps=optim.eps, inject=inject)


def config_dataset(data: ml_collections.ConfigDict) -> Dataset:
    """The dataset config.data names, restricted to one class for the one-class protocol.

    Every data option but name, dir and normal_class goes to the source by name; a source ignores
    the options of the others (patch_size means nothing to digits).
    """
    options = {k: v for k, v in data.to_dict().items() if k not in ("name", "dir", "normal_class")}
    dataset = load_dataset(data.name, data_dir=data.dir or None, **options)
    if data.get("normal_class", -1) >= 0:  # the one-class protocol (aejax.data.restrict_to_class)
        dataset = restrict_to_class(dataset, data.normal_class)
    return dataset


def setup_run(config: ml_collections.ConfigDict, *, dataset: Dataset | None = None,
              inject_optim: tuple[str, ...] = ()) -> RunSetup:
    """Builds and checks everything a run needs from a resolved config (no compile happens here).

    Args:
      config: a config from `aejax.config.get_experiment_config` / `resolve_config`.
      dataset: use this dataset as it is instead of loading config.data (your own arrays, or the
        dataset of another run of the same data, as a sweep shares it).
      inject_optim: optimizer values carried as arrays in the optimizer state (a sweep group whose
        members differ in them; see `aejax.train.optim.INJECTABLE`).
    """
    dataset = dataset if dataset is not None else config_dataset(config.data)
    for split_name in ("train", "val", "test"):  # shapes first: the model is built from them
        if not _memory_mapped(getattr(dataset, split_name).x):  # those were checked chunk by chunk when opened
            check_images(getattr(dataset, split_name).x, what=f"{split_name} images")
    options = {k: v for k, v in config.model.to_dict().items() if k != "kind"}
    model = model_from_options(config.model.kind, input_shape=dataset.input_shape,
                               num_classes=dataset.num_classes, **options)
    for split_name in ("train", "val", "test"):
        split = getattr(dataset, split_name)
        if _memory_mapped(split.x):  # values were checked when opened (finite, in [0, 1]); shapes and labels here
            n = min(len(split), 1024)
            model.check_data(split.x[:n], split.y[:n])
        else:
            model.check_data(split.x, split.y)
    hp = build_hp(model, config.hp)
    train = TrainOptions(**config.train.to_dict())
    train.check(len(dataset.train))
    feed = FeedOptions(on_device=config.data.on_device, device_bytes_limit=config.data.device_bytes_limit,
                       stream_chunk_steps=config.data.stream_chunk_steps)
    feed.check()
    tx = optimizer(config.optim, (len(dataset.train) // train.batch_size) * train.epochs, inject_optim)
    run = RunSetup(config, dataset, model, hp, tx, RunKeys.from_seed(config.seed), train, feed)
    if run.streams and train.data_parallel and jax.device_count() > 1:
        raise ConfigError("a training split streamed from the host (data.on_device=False, data.mmap=True, or too "
                          "large for the device) cannot be split over devices yet; set train.data_parallel=False.")
    return run


def _memory_mapped(x) -> bool:
    """True for rows of a memory-mapped file (`aejax.data.lazy.Rows`), which are read a chunk at a time."""
    return callable(getattr(x, "chunks", None))


__all__ = ["RunKeys", "RunSetup", "TrainOptions", "build_hp", "config_dataset", "optimizer", "setup_run"]
