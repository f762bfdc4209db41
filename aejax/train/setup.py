"""One run setup: a config becomes everything a run needs, built in one place.

`setup_run(config)` loads the dataset, builds the model from its NetSpec and options, the
`hp` pytree, the optimizer, the run's keys and the training options, and checks them all
before anything compiles. `fit`, `load_run` (evaluation), the benchmark and the sweep call
it; nothing else unpacks a config, and nothing below it receives one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from aejax.config import DATA_COMMON, FeedOptions, OptimOptions, TrainOptions, duration, resolve_config
from aejax.data import Dataset, check_images, load_dataset, restrict_to_class
from aejax.data.subsets import SUBSET_KEYS, Rows, choose_rows, view
from aejax.errors import ConfigError
from aejax.models import Autoencoder, kind_durations, model_from_options
from aejax.models.common import as_hp
from aejax.train.feed import streams_from_host
from aejax.train.optim import make_optimizer, schedule_steps
from aejax.train.step import TrainState, at_precision, init_train_state, make_train_step


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


def check_options(train: TrainOptions, feed: FeedOptions, num_train: int) -> None:
    """Values config.train and the feed options may not take, `num_train` the training split's size (types checked)."""
    if train.epochs < 1:
        raise ConfigError(f"train.epochs must be >= 1, got {train.epochs}.")
    if not 1 <= train.batch_size <= num_train:
        raise ConfigError(f"train.batch_size must lie in [1, {num_train}] (the training split's size), "
                          f"got {train.batch_size}.")
    if train.eval_batch_size < 1 or train.keep_checkpoints < 1:
        raise ConfigError("train.eval_batch_size and train.keep_checkpoints must be >= 1.")
    if train.epochs_per_call < 0:
        raise ConfigError(f"train.epochs_per_call must be >= 0, got {train.epochs_per_call}; use 0 to let the loop "
                          "choose, 1 for one epoch per device call.")
    for key in ("eval_every", "checkpoint_every"):
        if duration(f"train.{key}", getattr(train, key)).amount <= 0:
            raise ConfigError(f"train.{key} must be a positive duration, got {getattr(train, key)!r}.")
    if train.matmul_precision not in MATMUL_PRECISIONS:
        raise ConfigError(f"train.matmul_precision must be one of {list(MATMUL_PRECISIONS)}, got "
                          f"{train.matmul_precision!r}.")
    devices = jax.device_count()
    if train.data_parallel and train.batch_size % devices:
        raise ConfigError(f"train.data_parallel splits each batch over the {devices} devices, so "
                          f"train.batch_size must be a multiple of {devices}, got {train.batch_size}.")
    if feed.device_bytes_limit < 0 or feed.stream_chunk_steps < 0:
        raise ConfigError(f"data.device_bytes_limit and data.stream_chunk_steps must be >= 0 (0: automatic), "
                          f"got {feed.device_bytes_limit} and {feed.stream_chunk_steps}.")


# train.matmul_precision -> jax.default_matmul_precision's name (None: the backend's default)
MATMUL_PRECISIONS = {"default": None, "bfloat16": "bfloat16", "tf32": "tensorfloat32", "highest": "highest"}


@dataclasses.dataclass(frozen=True)
class RunSetup:
    """A run, built: data, model, hp, optimizer, keys and options; it makes the step and the state (the programs
    that train one or more RunSetups are `aejax.train.population.Population`'s)."""

    config: ml_collections.ConfigDict
    dataset: Dataset
    model: Autoencoder
    hp: dict[str, jax.Array]
    tx: optax.GradientTransformation
    keys: RunKeys
    train: TrainOptions
    feed: FeedOptions = FeedOptions()
    warmup_steps: int = 0  # the optimizer's warm-up in steps, after clipping to the run (for the figures)
    rows: Rows | None = None  # the run's index tables into `whole` when its data options choose a subset
    whole: Dataset | None = None  # the dataset `rows` index (shared by the members of a population)

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
        return self.checkpoint_tree(jax.eval_shape(self.init_state), 0)

    def metric_names(self) -> list[str]:
        """The terms an evaluation reports (val/NAME, test/NAME): the loss, the model's aux terms and "mse"."""
        params = jax.eval_shape(self.init_state)["params"]
        aux = jax.eval_shape(lambda p: self.model.loss(p, self.sample_batch(), self.keys.eval, self.hp)[1], params)
        return ["loss", *aux, "mse"]

    def train_step(self):
        """step(state, batch, key, hp) -> (state, metrics, finite): the one update path, its matrix
        products at `train.matmul_precision`."""
        step = make_train_step(self.model, self.tx, skip_nonfinite=self.train.skip_nonfinite)
        return at_precision(step, MATMUL_PRECISIONS[self.train.matmul_precision])

    @functools.cached_property
    def streams(self) -> bool:
        """True when the training split streams from host memory instead of living on the device."""
        train = self.dataset.train
        return streams_from_host(train.x, train.y, on_device=self.feed.on_device,
                                 bytes_limit=self.feed.device_bytes_limit)


def source_key(data: ml_collections.ConfigDict) -> str:
    """What decides the loaded arrays: config.data without the options that only choose rows (a sweep loads
    each dataset once per key)."""
    return json.dumps({k: v for k, v in data.to_dict().items() if k not in SUBSET_KEYS}, sort_keys=True, default=repr)


def whole_dataset(data: ml_collections.ConfigDict, loaded: Dataset | None = None) -> Dataset:
    """The dataset config.data names, whole (`loaded`: the same, loaded already): the one a run's index tables
    index. A standardized dataset (tabular, sequences) with data.normal_class is restricted here instead
    (`aejax.data.restrict_to_class` re-standardizes it on the class: its arrays change)."""
    if loaded is None:
        not_source = {"name", *DATA_COMMON, *(f.name for f in dataclasses.fields(FeedOptions))}
        loaded = load_dataset(data.name, **{k: v for k, v in data.to_dict().items() if k not in not_source})
    if data.normal_class >= 0 and loaded.scaling is not None:
        return restrict_to_class(loaded, data.normal_class)
    return loaded


def data_rows(data: ml_collections.ConfigDict, whole: Dataset) -> Rows | None:
    """The run's index tables into `whole` (`aejax.data.subsets.choose_rows`), or None: the whole splits."""
    normal = data.normal_class if whole.normal_class is None else -1  # a restricted dataset holds the class already
    return choose_rows(whole.train.y, whole.val.y, whole.num_classes, normal_class=normal, folds=data.folds,
                       fold=data.fold, train_examples=data.train_examples)


def config_dataset(data: ml_collections.ConfigDict) -> Dataset:
    """The run's own dataset: the one config.data names, its training and validation splits restricted to the rows
    the run sees (one class for the one-class protocol, a fold, a nested subset), the test split whole."""
    whole = whole_dataset(data)
    return view(whole, data_rows(data, whole), normal_class=data.normal_class)


def model_options(config: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int) -> dict[str, Any]:
    """config.model as `model_from_options` takes it: durations in steps (a KL warm-up clipped to the run)."""
    kind = config.model.kind
    options = {k: v for k, v in config.model.to_dict().items() if k != "kind"}
    for name in kind_durations(kind):
        if name in options:
            steps = duration(f"model.{name}", options[name], kind).steps(steps_per_epoch=steps_per_epoch,
                                                                         total_steps=total_steps)
            if name.endswith("warmup") and steps > total_steps:  # one line on stderr when it has to be shortened
                print(f"aejax: model.{name} ({steps} steps) is longer than the run's {total_steps} steps; clipped to "
                      f"{total_steps} steps.", file=sys.stderr, flush=True)
                steps = total_steps
            options[name] = steps
    return options


def setup_run(config: ml_collections.ConfigDict, *, dataset: Dataset | None = None, whole: Dataset | None = None,
              inject_optim: tuple[str, ...] = (), resolved: bool = False) -> RunSetup:
    """Builds and checks everything a run needs from a config (no compile happens here).

    Args:
      config: an experiment's `get_config()`, or a config from `aejax.config.get_experiment_config` /
        `resolve_config` (resolved here if it is not: resolving is idempotent).
      dataset: use this dataset as it is instead of loading config.data (your own arrays, or another run's).
      inject_optim: optimizer values carried as arrays in the optimizer state (`aejax.train.optim.INJECTABLE`).
      whole: the dataset config.data names, loaded already (`whole_dataset`; a sweep shares it between runs);
        the options that choose rows index it (`RunSetup.rows`).
      resolved: `config` came from `resolve_config` (or `get_experiment_config`) already: not resolved again.
    """
    config = config if resolved else resolve_config(config)
    rows = None
    if dataset is None:
        whole = whole if whole is not None else whole_dataset(config.data)
        rows = data_rows(config.data, whole)
        if rows is not None and (not config.data.on_device or _memory_mapped(whole.train.x)):
            raise ConfigError("data options that choose rows (data.normal_class, data.folds, data.train_examples) "
                              "train from index tables over the split on the device; set data.on_device=True and "
                              "data.mmap=False.")
        dataset = view(whole, rows, normal_class=config.data.normal_class)
    splits = {"train": dataset.train, "val": dataset.val, "test": dataset.test}
    for name, split in splits.items():  # shapes first: the model is built from them
        if not _memory_mapped(split.x):  # those were checked chunk by chunk when opened
            check_images(split.x, what=f"{name} images")
    train = TrainOptions(**config.train.to_dict())
    steps_per_epoch = max(1, len(dataset.train) // max(train.batch_size, 1))  # checked below, after the data
    total_steps = steps_per_epoch * max(train.epochs, 1)
    model = model_from_options(config.model.kind, input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                               **model_options(config, steps_per_epoch, total_steps))
    for split in splits.values():  # a memory-mapped split's values were checked when opened: its first rows here
        head = slice(1024) if _memory_mapped(split.x) else slice(None)
        model.check_data(split.x[head], split.y[head])
    feed = FeedOptions(**{f.name: config.data[f.name] for f in dataclasses.fields(FeedOptions)})
    check_options(train, feed, len(dataset.train))
    hp = config.hp.to_dict()
    if not np.isfinite(hp["learning_rate"]) or hp["learning_rate"] <= 0:
        raise ConfigError(f"hp.learning_rate must be a positive number, got {hp['learning_rate']}.")
    model.check_hp(hp)
    optim = config.optim.to_dict()  # durations in steps, a warm-up clipped to the run (the figures show it)
    warmup, decay = schedule_steps(OptimOptions(**optim), steps_per_epoch=steps_per_epoch, total_steps=total_steps)
    tx = make_optimizer(total_steps=total_steps, inject=inject_optim, schedule_arrays=rows is not None,
                        **{**optim, "warmup": warmup, "decay": decay})
    run = RunSetup(config, dataset, model, as_hp(hp), tx, RunKeys.from_seed(config.seed), train, feed, warmup,
                   rows, whole if rows is not None else None)
    if run.streams and train.data_parallel and jax.device_count() > 1:
        raise ConfigError("a training split streamed from the host (data.on_device=False, data.mmap=True, or too "
                          "large for the device) cannot be split over devices yet; set train.data_parallel=False.")
    return run


def _memory_mapped(x) -> bool:
    """True for rows of a memory-mapped file (`aejax.data.lazy.Rows`), which are read a chunk at a time."""
    return callable(getattr(x, "chunks", None))


__all__ = ["MATMUL_PRECISIONS", "RunKeys", "RunSetup", "config_dataset", "data_rows", "setup_run",
           "source_key", "whole_dataset"]
