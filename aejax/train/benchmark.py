"""Throughput of aejax's training loop against a bare `lax.scan` of the same step, in one run.

Both sides come from one `setup_run`: the same model, hp, optimizer (warm-up, clipping,
weight decay and all) and the same step function; the bare side only drops what `fit` adds
around the scanned epoch (validation, logging, checkpoints).
"""

from __future__ import annotations

import math
import tempfile
import time
from typing import Any

import jax
import ml_collections

from aejax.config import resolve_config
from aejax.train.fit import fit
from aejax.train.setup import RunSetup, setup_run
from aejax.train.step import batch_at, epoch_batch_indices


def make_bare_scan(run: RunSetup):
    """jit(lax.scan(step)) over given [S, B] batch indices of the training split: run(state, idx) -> (state, loss_S)."""
    step = run.train_step()
    x, y = jax.device_put(run.dataset.train.x), jax.device_put(run.dataset.train.y)

    @jax.jit
    def bare(state, idx_SxB):
        def body(state, idx_B):
            batch = batch_at(x, y, idx_B)
            state, metrics, finite = step(state, batch, jax.random.fold_in(run.keys.loop, state["step"]), run.hp)
            return state, (metrics["loss"], finite)
        return jax.lax.scan(body, state, idx_SxB)

    return bare


def bare_scan_steps_per_s(run: RunSetup, *, epochs: int, bare=None) -> float:
    """Steps/s of the bare scan (`bare`, or a new `make_bare_scan(run)`) over `epochs` epochs after one warm-up
    (compiling, for a new one) epoch."""
    bare = make_bare_scan(run) if bare is None else bare
    indices = [epoch_batch_indices(run.keys.data, e, num_examples=len(run.dataset.train),
                                   batch_size=run.train.batch_size) for e in range(epochs + 1)]
    state, out = bare(run.init_state(), indices[0])  # compile and warm up
    jax.block_until_ready(out)
    start = time.perf_counter()
    for idx in indices[1:]:
        state, out = bare(state, idx)
    jax.block_until_ready((state, out))
    return run.steps_per_epoch * epochs / (time.perf_counter() - start)


def benchmark_loop(config: ml_collections.ConfigDict, *, epochs: int | None = None,
                   min_seconds: float = 2.0) -> dict[str, Any]:
    """Trains `config` for `epochs` with fit() (its steady rate, compiles timed apart) and with a bare scan; returns
    both throughputs. Without `epochs`, enough epochs for about `min_seconds` of the bare scan (at least 6): a
    short epoch (digits: 12 ms on a 2-core CPU) timed six times would measure noise. The bare scan is timed before
    and after fit and its figure is the mean of the two, so that a machine whose speed drifts moves both alike."""
    config = resolve_config(config, {"train.progress": False, "train.figures": False})
    if epochs is None:
        per_epoch = setup_run(config).steps_per_epoch / bare_scan_steps_per_s(setup_run(config), epochs=2)
        epochs = int(min(max(6, math.ceil(min_seconds / per_epoch) + 1), 2000))
    config = resolve_config(config, {"train.epochs": epochs})
    run = setup_run(config)
    bare_scan = make_bare_scan(run)
    before = bare_scan_steps_per_s(run, epochs=epochs - 1, bare=bare_scan)
    with tempfile.TemporaryDirectory() as workdir:
        summary = fit(config, workdir, dataset=run.dataset)
    after = bare_scan_steps_per_s(run, epochs=epochs - 1, bare=bare_scan)
    ours, bare = summary["perf/steps_per_s"], (before + after) / 2
    return {"dataset": config.data.name, "model": f"{config.model.kind}/{config.model.net}",
            "batch_size": config.train.batch_size, "epochs": epochs, "backend": jax.default_backend(),
            "fit_steps_per_s": ours, "bare_scan_steps_per_s": bare, "fit_over_bare": ours / bare,
            "bare_scan_steps_per_s_before_after_fit": [before, after]}
