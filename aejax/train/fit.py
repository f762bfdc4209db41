"""`fit(config, workdir)`: a config -> trained params, metrics, checkpoints, figures, summary.

Three parts: `setup_run` (aejax.train.setup) builds the run from the config; `train_epochs`
runs the epoch loop on arrays and functions (no config); `final_report` evaluates every
split and writes summary.json and figures.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from typing import Any, Callable

import jax
import ml_collections
import numpy as np

from aejax.config import config_from_json, config_to_json
from aejax.data import Dataset
from aejax.errors import CheckpointError, ConfigError, NonFiniteError
from aejax.train.checkpoint import Checkpointer
from aejax.train.distributed import host, is_primary
from aejax.train.feed import epoch_metrics
from aejax.train.metrics import MetricsWriter, NullWriter
from aejax.train.setup import RunKeys, RunSetup, setup_run
from aejax.train.tracking import MlflowRun, flatten, log_training_end

log = logging.getLogger("aejax")

EXIT_INTERRUPTED = 130


# Keys that say how a run is shown, saved or where its data lie, not what it computes.
NOT_IDENTITY = ("train.progress", "train.figures", "train.tensorboard", "train.checkpoint_every",
                "data.on_device", "data.device_bytes_limit", "data.stream_chunk_steps", "data.mmap",
                "train.eval_every", "train.epochs_per_call", "train.async_metrics",
                "train.keep_checkpoints", "data.dir", "train.mlflow", "train.mlflow_uri", "train.mlflow_experiment")


def check_run_identity(config: ml_collections.ConfigDict, workdir: str, *, extend: bool = False) -> dict | None:
    """Compares `config` with the run already in `workdir` (its config.json), before anything is touched.

    Returns None for a new workdir or the same configuration, {"train.epochs": [old, new]} when
    `extend` allows more epochs; raises ConfigError naming the differing keys otherwise.
    """
    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:  # resolved again, so options added to aejax since the run was started take their defaults
        saved = flatten(json.loads(config_to_json(config_from_json(text))))
    except ConfigError:
        saved = flatten(json.loads(text))
    new = flatten(json.loads(config_to_json(config)))
    diff = {k: (saved.get(k), new.get(k)) for k in sorted(set(saved) | set(new))
            if saved.get(k) != new.get(k) and k not in NOT_IDENTITY}
    if not diff:
        return None
    old_epochs, new_epochs = diff.get("train.epochs", (None, None))
    if set(diff) == {"train.epochs"} and new_epochs > old_epochs:
        if extend:
            return {"train.epochs": [old_epochs, new_epochs]}
        hint = "use a new --workdir, or --extend to train this run on to more epochs (the schedule is rebuilt)."
    else:
        hint = "use a new --workdir, or run the original command to resume it."
    changes = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
    raise ConfigError(f"{workdir} holds a run of another configuration ({changes}); {hint}")


def fit(config: ml_collections.ConfigDict, workdir: str, *, dataset: Dataset | None = None,
        extend: bool = False) -> dict[str, Any]:
    """Trains the configured model in `workdir`, resuming from its newest good checkpoint.

    Writes config.json, metrics.jsonl, tensorboard/, checkpoints/, figures/*.png and
    summary.json. Returns the summary dict (flat `split/metric` keys and timings) with the
    final "params" and the "model" added. A workdir holds one configuration: a different one
    is a ConfigError before anything is written, except more epochs with `extend=True`
    (recorded in history.jsonl). Raises NonFiniteError when a loss or gradient goes
    non-finite (unless train.skip_nonfinite), StopRequested after SIGTERM/SIGINT (a
    checkpoint is saved first).
    """
    wall_start = time.perf_counter()
    extension = check_run_identity(config, workdir, extend=extend)
    run = setup_run(config, dataset=dataset)  # everything is checked here, before any compile
    os.makedirs(workdir, exist_ok=True)
    if is_primary():
        if extension is not None:
            with open(os.path.join(workdir, "history.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps({"extended": extension}) + "\n")
        with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
            f.write(config_to_json(config))
    opts = run.train
    tracker = start_tracking(config, workdir) if opts.mlflow and is_primary() else None
    ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), keep=opts.keep_checkpoints)
    try:
        state, start_epoch = restore_or_init(run, ckpt, workdir)
        state = run.replicate(state)
        resume_step = int(host(state["step"]))
        writer = (MetricsWriter(workdir, resume_step=resume_step, tensorboard=opts.tensorboard, tracker=tracker)
                  if is_primary() else NullWriter())
        evaluate, splits = run.eval_fn(), run.device_splits()  # built once: the final report reuses them
        try:
            state, epoch_times = train_epochs(
                state, feed=run.feed_fn(), evaluate=evaluate, val_data=splits[1],
                hp=run.hp, keys=run.keys, start_epoch=start_epoch, epochs=opts.epochs,
                steps_per_epoch=run.steps_per_epoch, batch_size=opts.batch_size,
                save=lambda epoch, s: ckpt.save(epoch, run.checkpoint_tree(s, epoch)), checkpointer=ckpt,
                writer=writer, checkpoint_every=opts.checkpoint_every, skip_nonfinite=opts.skip_nonfinite,
                progress=opts.progress, eval_every=opts.eval_every, epochs_per_call=opts.epochs_per_call,
                async_metrics=opts.async_metrics)
        except BaseException as e:
            if tracker is not None:
                tracker.finish("KILLED" if isinstance(e, (KeyboardInterrupt, SystemExit)) else "FAILED")
            raise
        finally:
            writer.close()
    finally:
        ckpt.wait()
        ckpt.close()
    summary = final_report(run, state, workdir, evaluate=evaluate, splits=splits, epoch_times=epoch_times,
                           wall_start=wall_start)
    if tracker is not None:
        log_training_end(tracker, workdir, summary, step=int(summary["steps"]))
    return summary


def start_tracking(config: ml_collections.ConfigDict, workdir: str):
    """The workdir's MLflow run (created, or continued on resume), with the config as its parameters."""
    return MlflowRun.start(workdir, uri=config.train.mlflow_uri, experiment=config.train.mlflow_experiment,
                           params=config.to_dict())


def check_checkpoint_seed(run: RunSetup, tree, directory: str, remedy: str) -> None:
    """A restored tree must come from this run's seed (its init key is stored with it)."""
    if not np.array_equal(np.asarray(tree["rng"]), np.asarray(jax.random.key_data(run.keys.init))):
        raise CheckpointError(f"the checkpoints in {directory} come from a run with another seed; {remedy}")


def restore_or_init(run: RunSetup, ckpt: Checkpointer, workdir: str):
    """(state, first epoch to train): from the newest good checkpoint, or the initial state."""
    target = run.restore_target()
    restored = ckpt.restore_latest(target)
    if restored is None:
        return {"step": target["step"], "params": target["params"], "opt_state": target["opt_state"]}, 0
    start_epoch, tree = restored
    check_checkpoint_seed(run, tree, ckpt.directory, "use the original seed or a new --workdir.")
    state = {"step": tree["step"], "params": tree["params"], "opt_state": tree["opt_state"]}
    print(f"aejax: resuming from epoch {start_epoch} (step {int(state['step'])}) in {workdir}", flush=True)
    return state, int(start_epoch)


def train_epochs(state, *, feed: Callable, evaluate: Callable, val_data, hp, keys: RunKeys, start_epoch: int,
                 epochs: int, steps_per_epoch: int, batch_size: int, save: Callable[[int, Any], None],
                 checkpointer: Checkpointer, writer: MetricsWriter, checkpoint_every: int, skip_nonfinite: bool,
                 progress: bool, eval_every: int = 1, epochs_per_call: int = 1, async_metrics: bool = False):
    """The epoch loop: device calls of one or more epochs, one host transfer each, validation, logs, saves.

    Args:
      state: the train state to continue from (step `start_epoch * steps_per_epoch`).
      feed: feed(state, epochs) -> (state, parts), `aejax.train.feed` (on the device, or streamed).
      evaluate: evaluate(params, x, y, hp, key) -> dict of means.
      val_data: (val_x, val_y).
      save: save(epoch, state) writes a checkpoint (after the last epoch, every
        `checkpoint_every`, and when a stop signal arrived); orbax writes it in the background.
      eval_every: validation after every `eval_every`-th epoch and the last; other epochs' records
        hold the training terms only.
      epochs_per_call: epochs run in one device call when nothing needs the host between them (no
        validation, checkpoint or end in between).
      async_metrics: a call that neither validates nor saves leaves its metrics on the device; they
        are fetched (and written) after the next call was dispatched, so the device does not wait
        for the host's logging. A non-finite step is then reported one call later (no checkpoint
        is written in between, so the last good one is kept).
    Returns:
      (final state, wall seconds of each epoch trained here: a call's time shared by its epochs).
    """
    bar = _progress(progress, start_epoch, epochs)
    epoch_times: list[float] = []
    first_step = int(host(state["step"]))
    pending = None  # an unfetched call: (epochs, parts)
    mark = time.perf_counter()

    def record(group: range, parts, val: dict) -> None:
        nonlocal first_step, mark
        metrics, finite = epoch_metrics(parts, len(group))  # the call's one host transfer
        dt = (time.perf_counter() - mark) / len(group)
        for i, epoch in enumerate(group):
            m_i = {k: v[i] for k, v in metrics.items()}
            if not finite[i].all() and not skip_nonfinite:
                raise _nonfinite_error(m_i, finite[i], first_step, checkpointer)
            last_of_call = epoch == group[-1]
            rec = epoch_record(epoch, first_step + steps_per_epoch, m_i, finite[i], val if last_of_call else {},
                               skip_nonfinite=skip_nonfinite)
            epoch_times.append(dt)
            writer.write(rec, extra_scalars={"perf/examples_per_s": steps_per_epoch * batch_size / dt})
            bar.update(rec["train/loss"], rec.get("val/mse", float("nan")), steps_per_epoch * batch_size / dt)
            first_step += steps_per_epoch
        mark = time.perf_counter()

    try:
        with _SignalFlag() as stop:
            epoch = start_epoch
            while epoch < epochs:
                group = range(epoch, epoch + _call_length(epoch, epochs, epochs_per_call, eval_every,
                                                          checkpoint_every))
                state, parts = feed(state, group)
                end = group.stop
                last = end == epochs
                validates = last or end % eval_every == 0
                saves = last or end % checkpoint_every == 0 or stop.signum is not None
                if pending is not None:
                    record(*pending, {})
                    pending = None
                if async_metrics and not (validates or saves):
                    pending = (group, parts)
                else:
                    val = (evaluate(state["params"], *val_data, hp, jax.random.fold_in(keys.eval, end - 1))
                           if validates else {})
                    record(group, parts, val)
                    if saves:
                        save(end, state)
                if stop.signum is not None and not last:
                    if pending is not None:
                        record(*pending, {})
                        save(end, state)
                    checkpointer.wait()
                    raise StopRequested(f"stopped by signal {stop.signum} after epoch {end}; "
                                        f"a checkpoint is in {checkpointer.directory}; run the same command to resume.")
                epoch = end
    finally:
        bar.close()
    return state, epoch_times


def _call_length(epoch: int, epochs: int, epochs_per_call: int, eval_every: int, checkpoint_every: int) -> int:
    """Epochs in the device call that starts at `epoch` (0-based): up to `epochs_per_call`, ending at
    the next validation, checkpoint or the end, whichever comes first."""
    next_eval = (epoch // eval_every + 1) * eval_every
    next_save = (epoch // checkpoint_every + 1) * checkpoint_every
    return min(epoch + epochs_per_call, next_eval, next_save, epochs) - epoch


def epoch_record(epoch: int, step: int, metrics, finite, val, *, skip_nonfinite: bool) -> dict[str, Any]:
    """One metrics.jsonl line: train/* means over the epoch's finite steps, val/* means."""
    record = {"epoch": epoch + 1, "step": step}
    record.update({f"train/{k}": float(np.mean(v[finite])) if finite.any() else float("nan")
                   for k, v in metrics.items()})
    if skip_nonfinite:
        record["train/skipped_steps"] = int((~finite).sum())
    record.update({f"val/{k}": float(v) for k, v in val.items()})
    return record


def final_report(run: RunSetup, state, workdir: str, *, evaluate: Callable, splits, epoch_times: list[float],
                 wall_start: float) -> dict:
    """Evaluates the final params on every split (`splits` as `run.device_splits()` gives them, with the
    training loop's `evaluate`); writes summary.json and the figures."""
    terms = {}
    for split_name, (x, y) in zip(("train", "val", "test"), splits):
        terms[split_name] = evaluate(state["params"], x, y, run.hp, final_eval_key(run.keys.eval))
    return write_summary(run, host(state["params"]), workdir, split_terms=terms, steps=int(host(state["step"])),
                         epoch_times=epoch_times, wall_time_s=time.perf_counter() - wall_start)


def final_eval_key(eval_key: jax.Array) -> jax.Array:
    """The key of the final evaluation of every split, from the run's eval key."""
    return jax.random.fold_in(eval_key, 10**6)


def write_summary(run: RunSetup, params, workdir: str, *, split_terms: dict[str, dict], steps: int,
                  epoch_times: list[float], wall_time_s: float) -> dict:
    """summary.json (flat `split/metric` keys, steps, timings) and the figures; returns the summary
    with the final "params" and the "model" added."""
    summary: dict[str, Any] = {f"{split}/{k}": float(v) for split, terms in split_terms.items()
                               for k, v in terms.items()}
    if run.dataset.name != run.config.data.name or getattr(run.dataset, "source_hash", None):
        # the data the run really saw: a Dataset passed from Python, or files with their content hash
        summary["data/name"] = run.dataset.name
        summary["data/source"] = getattr(run.dataset, "source", None) or "in-memory arrays"
        summary["data/source_hash"] = getattr(run.dataset, "source_hash", None)
    warmup = _call_length(0, run.train.epochs, run.train.epochs_per_call, run.train.eval_every,
                          run.train.checkpoint_every)  # the epochs of the first, compiling call
    steady = epoch_times[warmup:] or epoch_times
    summary.update({
        "epochs": run.train.epochs,
        "steps": steps,
        "wall_time_s": wall_time_s,
        "perf/steps_per_s": run.steps_per_epoch / (sum(steady) / len(steady)) if steady else float("nan"),
    })
    if is_primary():
        if run.train.figures:
            from aejax.viz.figures import training_figures

            summary["figures"] = training_figures(run.model, params, run.dataset, workdir,
                                                  lr_warmup_steps=int(run.config.optim.warmup_steps))
        with open(os.path.join(workdir, "summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
    summary["params"] = params
    summary["model"] = run.model
    return summary


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
