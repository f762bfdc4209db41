"""Training a group of runs that share their structure as one vmapped, jit-compiled program.

The members of a group differ only in continuous values (`hp`, which holds the learning rate)
and the seed. Their train states, hp, and data and loop keys are stacked on a leading run axis
R; the epoch is the same `epoch_body` a single run jits, vmapped over that axis, so each member
draws its own batch order and step keys exactly as it would alone. On several devices the run
axis is sharded over a `jax.sharding.Mesh` with a "runs" axis. Each member keeps its own
workdir with what `aejax train` writes: config.json, metrics.jsonl, checkpoints/, figures/,
summary.json. A member whose loss or gradient goes non-finite is stopped alone (its last good
checkpoint is kept and `failed.json` names the step and the terms); the others go on.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from aejax.config import config_to_json
from aejax.train.checkpoint import Checkpointer
from aejax.train.fit import (StopRequested, _nonfinite_error, _progress, _SignalFlag, check_checkpoint_seed,
                             check_run_identity,
                             epoch_record, final_eval_key, write_summary)
from aejax.train.metrics import MetricsWriter
from aejax.train.setup import RunSetup
from aejax.train.step import epoch_body, make_eval_fn


def stack(trees: Sequence[Any]):
    """Stacks pytrees of equal structure on a new leading axis (on the host: no per-shape compiles)."""
    return jax.tree_util.tree_map(lambda *leaves: np.stack([np.asarray(x) for x in leaves]), *trees)


def member(tree, r: int):
    """Member r of a stacked pytree (pass host arrays: `jax.device_get` the tree once first)."""
    return jax.tree_util.tree_map(lambda leaf: leaf[r], tree)


def runs_mesh(num_members: int):
    """A Mesh over every device with one "runs" axis, or None on one device."""
    devices = jax.devices()
    if len(devices) < 2:
        return None
    return jax.sharding.Mesh(np.asarray(devices), ("runs",))


def _place(tree, mesh, *, runs_axis: bool):
    if mesh is None:
        return tree
    spec = jax.sharding.PartitionSpec("runs") if runs_axis else jax.sharding.PartitionSpec()
    return jax.device_put(tree, jax.sharding.NamedSharding(mesh, spec))


def _restore_members(runs: Sequence[RunSetup], ckpts: Sequence[Checkpointer], workdirs: Sequence[str]):
    """Every member at one common epoch: the newest epoch all of them have a checkpoint for.

    A kill during a save can leave some members one checkpoint ahead; their newer checkpoints are
    deleted and recomputed (training is deterministic, so they come back identical).
    """
    targets = [run.restore_target() for run in runs]
    latest = [max(c.steps(), default=0) for c in ckpts]
    common = min(latest)
    states = []
    for run, ckpt, target, workdir in zip(runs, ckpts, targets, workdirs):
        for step in [s for s in ckpt.steps() if s > common]:
            ckpt.delete(step)
        if common == 0:
            states.append({"step": target["step"], "params": target["params"], "opt_state": target["opt_state"]})
            continue
        tree = ckpt.restore(common, target)
        check_checkpoint_seed(run, tree, ckpt.directory, "use a new sweep --workdir.")
        states.append({"step": tree["step"], "params": tree["params"], "opt_state": tree["opt_state"]})
    if common:
        print(f"aejax: resuming {len(runs)} runs from epoch {common} ({os.path.dirname(workdirs[0])})", flush=True)
    return states, common


def train_group(runs: Sequence[RunSetup], workdirs: Sequence[str], *, progress: bool = False) -> list[dict]:
    """Trains `runs` (same structure) as one vmapped program; returns each member's summary.

    A failed member's entry is {"failed": message}. Raises StopRequested after SIGTERM/SIGINT
    (every member's checkpoint saved first).
    """
    wall_start = time.perf_counter()
    lead = runs[0]
    opts = lead.train
    mesh = runs_mesh(len(runs))
    count = len(runs)
    if mesh is not None and count % mesh.size:  # pad with copies of the last member; their outputs are dropped
        runs = list(runs) + [runs[-1]] * (mesh.size - count % mesh.size)
    for run, workdir in zip(runs[:count], workdirs):  # every member's workdir checked before any is written
        check_run_identity(run.config, workdir)
    for run, workdir in zip(runs[:count], workdirs):
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
            f.write(config_to_json(run.config))
    ckpts = [Checkpointer(os.path.join(w, "checkpoints"), keep=opts.keep_checkpoints) for w in workdirs]
    writers = []
    try:
        states, start_epoch = _restore_members(runs[:count], ckpts, workdirs)
        states += states[-1:] * (len(runs) - count)
        state = _place(stack(states), mesh, runs_axis=True)
        hp = _place(stack([run.hp for run in runs]), mesh, runs_axis=True)
        data_keys, loop_keys, eval_keys = (
            _place(jax.random.wrap_key_data(np.stack([np.asarray(jax.random.key_data(getattr(run.keys, name)))
                                                      for run in runs])), mesh, runs_axis=True)
            for name in ("data", "loop", "eval"))
        splits = [(_place(jnp.asarray(s.x), mesh, runs_axis=False), _place(jnp.asarray(s.y), mesh, runs_axis=False))
                  for s in (lead.dataset.train, lead.dataset.val, lead.dataset.test)]
        body = epoch_body(lead.train_step(), num_examples=len(lead.dataset.train), batch_size=opts.batch_size)
        epoch_fn = jax.jit(jax.vmap(body, in_axes=(0, None, None, 0, 0, 0, None)), donate_argnums=(0,))
        evaluate = make_eval_fn(lead.model, batch_size=opts.eval_batch_size, runs_axis=True)
        writers = [MetricsWriter(w, resume_step=start_epoch * lead.steps_per_epoch, tensorboard=opts.tensorboard)
                   for w in workdirs]
        failed: dict[int, str] = {}
        epoch_times: list[float] = []
        bar = _progress(progress, start_epoch, opts.epochs)
        try:
            with _SignalFlag() as stop:
                for epoch in range(start_epoch, opts.epochs):
                    t0 = time.perf_counter()
                    state, (metrics, finite) = epoch_fn(state, *splits[0], hp, data_keys, loop_keys,
                                                        jnp.asarray(epoch, jnp.int32))
                    metrics, finite = jax.device_get((metrics, finite))
                    val_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(eval_keys, epoch)
                    val = evaluate(state["params"], *splits[1], hp, val_keys)
                    dt = time.perf_counter() - t0
                    epoch_times.append(dt)
                    last = epoch + 1 == opts.epochs
                    save = last or (epoch + 1) % opts.checkpoint_every == 0 or stop.signum is not None
                    step = (epoch + 1) * lead.steps_per_epoch
                    host_state = jax.device_get(state) if save else None
                    for r in range(count):
                        if r in failed:
                            continue
                        m_r = {k: v[r] for k, v in metrics.items()}
                        if not finite[r].all() and not opts.skip_nonfinite:
                            failed[r] = str(_nonfinite_error(m_r, finite[r], step - lead.steps_per_epoch, ckpts[r]))
                            _write_failure(workdirs[r], failed[r])
                            continue
                        record = epoch_record(epoch, step, m_r, finite[r], {k: v[r] for k, v in val.items()},
                                              skip_nonfinite=opts.skip_nonfinite)
                        writers[r].write(record, extra_scalars={"perf/examples_per_s":
                                                                count * lead.steps_per_epoch * opts.batch_size / dt})
                        if save:
                            ckpts[r].save(epoch + 1, runs[r].checkpoint_tree(member(host_state, r), epoch + 1))
                    loss = np.mean([np.mean(metrics["loss"][r]) for r in range(count) if r not in failed] or [np.nan])
                    mse = np.mean([val["mse"][r] for r in range(count) if r not in failed] or [np.nan])
                    bar.update(float(loss), float(mse), count * lead.steps_per_epoch * opts.batch_size / dt)
                    if len(failed) == count:
                        break
                    if stop.signum is not None and not last:
                        for c in ckpts:
                            c.wait()
                        raise StopRequested(f"stopped by signal {stop.signum} after epoch {epoch + 1}; checkpoints "
                                            "are saved; run the same command to resume.")
        finally:
            bar.close()
        for c in ckpts:
            c.wait()
        terms = {}
        final_keys = jax.vmap(final_eval_key)(eval_keys)
        for split_name, (x, y) in zip(("train", "val", "test"), splits):
            terms[split_name] = evaluate(state["params"], x, y, hp, final_keys)
        wall = time.perf_counter() - wall_start
        host_state = jax.device_get(state)
        summaries = []
        for r in range(count):
            if r in failed:
                summaries.append({"failed": failed[r]})
                continue
            split_terms = {s: {k: v[r] for k, v in t.items()} for s, t in terms.items()}
            summary = write_summary(runs[r], member(host_state["params"], r), workdirs[r], split_terms=split_terms,
                                    steps=int(host_state["step"][r]), epoch_times=epoch_times,
                                    wall_time_s=wall)  # the group's wall time: its members trained together
            summaries.append(summary)
        return summaries
    finally:
        for w in writers:
            w.close()
        for c in ckpts:
            c.wait()
            c.close()


def _write_failure(workdir: str, message: str) -> None:
    with open(os.path.join(workdir, "failed.json"), "w", encoding="utf-8") as f:
        json.dump({"error": message}, f, indent=2)
