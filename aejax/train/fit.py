"""`fit(config, workdir)`: data + model -> trained params, metrics, checkpoints, figures, summary.

This is the entry point that unpacks the config; everything it calls takes plain arguments.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from aejax.config import config_to_json
from aejax.data import Dataset, check_images, load_dataset
from aejax.errors import CheckpointError, ConfigError, NonFiniteError
from aejax.models import build_model
from aejax.models.common import as_hp
from aejax.train.checkpoint import Checkpointer
from aejax.train.metrics import MetricsWriter
from aejax.train.optim import make_optimizer
from aejax.train.step import init_train_state, make_epoch_fn, make_eval_fn, make_train_step

log = logging.getLogger("aejax")

EXIT_INTERRUPTED = 130


@dataclasses.dataclass
class RunKeys:
    """The run's keys, all derived from the seed: init, data order, per-step loop, evaluation."""

    init: jax.Array
    data: jax.Array
    loop: jax.Array
    eval: jax.Array

    @classmethod
    def from_seed(cls, seed: int) -> "RunKeys":
        return cls(*jax.random.split(jax.random.key(seed), 4))


class StopRequested(Exception):
    """SIGTERM or SIGINT arrived; a checkpoint was written and the run stopped."""


class _SignalFlag:
    """Turns SIGTERM/SIGINT into a flag checked between epochs (an epoch is one device call)."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        if hasattr(signal, "SIGTERM") and _in_main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        del frame
        if self.signum is not None:  # a second signal: give up waiting
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def model_options(config: ml_collections.ConfigDict, dataset: Dataset) -> dict[str, Any]:
    options = config.model.to_dict()
    kind = options.pop("kind")
    return {"kind": kind, "input_shape": dataset.input_shape, "num_classes": dataset.num_classes, **options}


def build_hp(model, config: ml_collections.ConfigDict) -> dict[str, jax.Array]:
    """The `hp` pytree: the model's defaults updated by config.hp; validated by the model."""
    values = {**model.default_hp(), **config.hp.to_dict()}
    if not np.isfinite(values["learning_rate"]) or values["learning_rate"] <= 0:
        raise ConfigError(f"hp.learning_rate must be a positive number, got {values['learning_rate']}.")
    model.check_hp(values)
    return as_hp(values)


def check_train_options(train: ml_collections.ConfigDict, num_train: int) -> None:
    if train.epochs < 1:
        raise ConfigError(f"train.epochs must be >= 1, got {train.epochs}.")
    if not 1 <= train.batch_size <= num_train:
        raise ConfigError(f"train.batch_size must lie in [1, {num_train}] (the training split's size), "
                          f"got {train.batch_size}.")
    if train.eval_batch_size < 1 or train.checkpoint_every < 1:
        raise ConfigError("train.eval_batch_size and train.checkpoint_every must be >= 1.")


def fit(config: ml_collections.ConfigDict, workdir: str, *, dataset: Dataset | None = None) -> dict[str, Any]:
    """Trains the configured model in `workdir`, resuming from its newest good checkpoint.

    Writes config.json, metrics.jsonl, tensorboard/, checkpoints/, figures/*.png and
    summary.json. Returns the summary dict (flat `split/metric` keys and timings).
    Raises NonFiniteError when a loss or gradient goes non-finite (unless
    train.skip_nonfinite), StopRequested after SIGTERM/SIGINT (a checkpoint is saved first).
    """
    wall_start = time.perf_counter()
    # Everything that can be checked is checked before any compile.
    dataset = dataset or load_dataset(config.data.name, data_dir=config.data.dir or None,
                                      val_size=config.data.val_size, test_size=config.data.test_size,
                                      split_seed=config.data.split_seed)
    for split_name in ("train", "val", "test"):  # shapes first: the model is built from them
        split = getattr(dataset, split_name)
        check_images(split.x, what=f"{split_name} images")
    model = build_model(**model_options(config, dataset))
    for split_name in ("train", "val", "test"):
        split = getattr(dataset, split_name)
        model.check_data(split.x, split.y)
    hp = build_hp(model, config)
    train_cfg = config.train
    check_train_options(train_cfg, len(dataset.train))
    steps_per_epoch = len(dataset.train) // train_cfg.batch_size
    total_steps = steps_per_epoch * train_cfg.epochs
    tx = make_optimizer(config.optim.name, total_steps=total_steps, schedule=config.optim.schedule,
                        warmup_steps=config.optim.warmup_steps, final_fraction=config.optim.final_fraction,
                        grad_clip=config.optim.grad_clip, weight_decay=config.optim.weight_decay,
                        momentum=config.optim.momentum)

    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
        f.write(config_to_json(config))

    keys = RunKeys.from_seed(config.seed)
    # Arrays go to the device once.
    train_x, train_y = jax.device_put(dataset.train.x), jax.device_put(dataset.train.y)
    val_x, val_y = jax.device_put(dataset.val.x), jax.device_put(dataset.val.y)
    sample = {"x": train_x[:1], "y": train_y[:1]}
    state = init_train_state(model, tx, model.init(keys.init, sample))

    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=train_cfg.keep_checkpoints)
    start_epoch = 0
    restored = ckpt.restore_latest(_checkpoint_tree(state, keys, 0))
    if restored is not None:
        start_epoch, tree = restored
        if not np.array_equal(np.asarray(tree["rng"]), np.asarray(jax.random.key_data(keys.init))):
            raise CheckpointError(f"the checkpoints in {ckpt.directory} come from a run with another seed; "
                                  "use the original seed or a new --workdir.")
        state = {"step": tree["step"], "params": tree["params"], "opt_state": tree["opt_state"]}
        print(f"aejax: resuming from epoch {start_epoch} (step {int(state['step'])}) in {workdir}", flush=True)
    writer = MetricsWriter(workdir, resume_step=int(state["step"]), tensorboard=train_cfg.tensorboard)

    step_fn = make_train_step(model, tx, skip_nonfinite=train_cfg.skip_nonfinite)
    epoch_fn = make_epoch_fn(step_fn, num_examples=len(dataset.train), batch_size=train_cfg.batch_size)
    evaluate = make_eval_fn(model, batch_size=train_cfg.eval_batch_size)

    progress = _progress(train_cfg.progress, start_epoch, train_cfg.epochs)
    epoch_times = []
    try:
        with _SignalFlag() as stop:
            for epoch in range(start_epoch, train_cfg.epochs):
                t0 = time.perf_counter()
                first_step = int(state["step"]) if epoch == start_epoch else first_step + steps_per_epoch
                state, (metrics, finite) = epoch_fn(state, train_x, train_y, hp, keys.data, keys.loop,
                                                    jnp.asarray(epoch, jnp.int32))
                metrics, finite = jax.device_get((metrics, finite))  # the epoch's one host transfer
                if not finite.all() and not train_cfg.skip_nonfinite:
                    raise _nonfinite_error(metrics, finite, first_step, ckpt)
                val = evaluate(state["params"], val_x, val_y, hp, jax.random.fold_in(keys.eval, epoch))
                record = {"epoch": epoch + 1, "step": first_step + steps_per_epoch}
                record.update({f"train/{k}": float(np.mean(v[finite])) if finite.any() else float("nan")
                               for k, v in metrics.items()})
                if train_cfg.skip_nonfinite:
                    record["train/skipped_steps"] = int((~finite).sum())
                record.update({f"val/{k}": v for k, v in val.items()})
                dt = time.perf_counter() - t0
                epoch_times.append(dt)
                writer.write(record, extra_scalars={"perf/examples_per_s": steps_per_epoch * train_cfg.batch_size / dt})
                last = epoch + 1 == train_cfg.epochs
                if last or (epoch + 1) % train_cfg.checkpoint_every == 0 or stop.signum is not None:
                    ckpt.save(epoch + 1, _checkpoint_tree(state, keys, epoch + 1))
                progress.update(record["train/loss"], record["val/mse"],
                                steps_per_epoch * train_cfg.batch_size / dt)
                if stop.signum is not None and not last:
                    ckpt.wait()
                    raise StopRequested(f"stopped by signal {stop.signum} after epoch {epoch + 1}; "
                                        f"a checkpoint is in {ckpt.directory}; run the same command to resume.")
        ckpt.wait()
    finally:
        progress.close()
        writer.close()
        ckpt.wait()
        ckpt.close()

    test_x, test_y = jax.device_put(dataset.test.x), jax.device_put(dataset.test.y)
    summary: dict[str, Any] = {}
    for split_name, (x, y) in {"train": (train_x, train_y), "val": (val_x, val_y), "test": (test_x, test_y)}.items():
        terms = evaluate(state["params"], x, y, hp, jax.random.fold_in(keys.eval, 10**6))
        summary.update({f"{split_name}/{k}": v for k, v in terms.items()})
    steady = epoch_times[1:] or epoch_times
    summary.update({
        "epochs": train_cfg.epochs,
        "steps": int(state["step"]),
        "wall_time_s": time.perf_counter() - wall_start,
        "perf/steps_per_s": steps_per_epoch / (sum(steady) / len(steady)) if steady else float("nan"),
    })
    if train_cfg.figures:
        from aejax.viz.figures import training_figures

        summary["figures"] = training_figures(model, state["params"], dataset, workdir)
    with open(os.path.join(workdir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    summary["params"] = state["params"]
    summary["model"] = model
    return summary


def _checkpoint_tree(state, keys: RunKeys, epoch: int) -> dict[str, Any]:
    # The data cursor is (epoch, step): batch order and step keys are functions of them and the seed.
    return {"step": state["step"], "params": state["params"], "opt_state": state["opt_state"],
            "rng": jax.random.key_data(keys.init), "epoch": np.asarray(epoch, np.int32)}


def _nonfinite_error(metrics, finite, first_step, ckpt) -> NonFiniteError:
    bad = int(np.argmin(finite))
    step = first_step + bad + 1  # 1-based: the update that produced the value
    terms = tuple(k for k, v in metrics.items() if not np.isfinite(v[bad]))
    kept = ckpt.steps()
    where = (f"the last good checkpoint (epoch {kept[-1]}) is kept in {ckpt.directory}" if kept
             else "no checkpoint was written before it")
    return NonFiniteError(
        f"training step {step} produced non-finite {', '.join(terms) or 'values'}; {where}. Lower hp.learning_rate, "
        "set optim.grad_clip, check the data, or set train.skip_nonfinite=True to skip such updates.",
        step=step, terms=terms)


class _progress:
    """A tqdm bar over epochs showing the training loss, validation MSE and examples/s."""

    def __init__(self, enabled: bool, start: int, total: int):
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=start, unit="epoch", dynamic_ncols=True, file=sys.stderr)

    def update(self, loss: float, val_mse: float, examples_per_s: float) -> None:
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4g}", val_mse=f"{val_mse:.4g}", ex_s=f"{examples_per_s:,.0f}")
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
