"""Throughput of aejax's training loop against a bare `lax.scan` of the same step, in one run."""

from __future__ import annotations

import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from aejax.config import apply_overrides
from aejax.data import load_dataset
from aejax.models import build_model
from aejax.train.fit import RunKeys, build_hp, fit, model_options
from aejax.train.optim import make_optimizer
from aejax.train.step import epoch_batch_indices, init_train_state, make_train_step


def bare_scan_steps_per_s(config: ml_collections.ConfigDict, dataset, *, epochs: int) -> float:
    """Steps/s of `jit(lax.scan(step))` over pre-drawn batch indices: no validation, logging or checkpoints."""
    model = build_model(**model_options(config, dataset))
    hp = build_hp(model, config)
    steps_per_epoch = len(dataset.train) // config.train.batch_size
    tx = make_optimizer(config.optim.name, total_steps=steps_per_epoch * epochs, schedule=config.optim.schedule)
    keys = RunKeys.from_seed(config.seed)
    x, y = jax.device_put(dataset.train.x), jax.device_put(dataset.train.y)
    state = init_train_state(model, tx, model.init(keys.init, {"x": x[:1], "y": y[:1]}))
    step = make_train_step(model, tx, skip_nonfinite=False)

    @jax.jit
    def run(state, idx_SxB):
        def body(state, idx_B):
            batch = {"x": jnp.take(x, idx_B, axis=0), "y": jnp.take(y, idx_B, axis=0)}
            state, metrics, finite = step(state, batch, jax.random.fold_in(keys.loop, state["step"]), hp)
            return state, (metrics["loss"], finite)
        return jax.lax.scan(body, state, idx_SxB)

    indices = [epoch_batch_indices(keys.data, e, num_examples=len(x), batch_size=config.train.batch_size)
               for e in range(epochs + 1)]
    state, out = run(state, indices[0])  # compile and warm up
    jax.block_until_ready(out)
    start = time.perf_counter()
    for idx in indices[1:]:
        state, out = run(state, idx)
    jax.block_until_ready((state, out))
    return steps_per_epoch * epochs / (time.perf_counter() - start)


def benchmark_loop(config: ml_collections.ConfigDict, *, epochs: int = 6) -> dict[str, Any]:
    """Trains `config` for `epochs` with fit() and with a bare scan; returns both throughputs.

    fit's figure is its steady state (epochs after the first, which compiles), and it
    includes everything fit does per epoch: the host transfer of metrics, validation,
    metrics.jsonl and TensorBoard writes and checkpoint saves.
    """
    config = apply_overrides(config, {"train.epochs": epochs, "train.progress": False, "train.figures": False})
    dataset = load_dataset(config.data.name, data_dir=config.data.dir or None, val_size=config.data.val_size,
                           test_size=config.data.test_size, split_seed=config.data.split_seed)
    bare = bare_scan_steps_per_s(config, dataset, epochs=epochs - 1)
    with tempfile.TemporaryDirectory() as workdir:
        summary = fit(config, workdir, dataset=dataset)
    ours = summary["perf/steps_per_s"]
    return {"dataset": config.data.name, "model": f"{config.model.kind}/{config.model.net}",
            "batch_size": config.train.batch_size, "epochs": epochs, "backend": jax.default_backend(),
            "fit_steps_per_s": ours, "bare_scan_steps_per_s": bare, "fit_over_bare": ours / bare}
