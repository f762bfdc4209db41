"""The one training loop: a population of R >= 1 runs of one structure, trained as one program.

`fit` is a population of one (the single run's programs); a sweep group is a population of R (the
same programs vmapped over a leading run axis of params, optimizer state, hp and keys, sharded over
a "runs" mesh axis on several devices); a search acts on it between device calls through one hook
(`Scheduler`). Every `train.*` and `data.*` option means the same for R = 1 and R > 1. Each member
writes its own workdir: config.json, metrics.jsonl, tensorboard/, checkpoints/, summary.json.

One turn of the loop dispatches a device call (epochs up to the next epoch-counted checkpoint,
scheduler decision or the end, at most `train.epochs_per_call`: by default one, or as many as fill
about `CALL_SECONDS` once the second call was timed, for a run long enough to pay for that program's
compile; a call of several epochs validates inside after the epochs `train.eval_every` names, any
other call ends at each validation), then, on the host: the
records (with `train.async_metrics`, those of the previous call, while this one runs), members that
went non-finite stopped, the checkpoint if due (every `train.checkpoint_every` epochs or that much
wall-clock time, after the last epoch, and on a stop signal), the scheduler's decision. Compiles are
timed apart from the calls (`compile_seconds`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Protocol, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from aejax import platform
from aejax.config import config_from_json, config_to_json, duration
from aejax.errors import CheckpointError, ConfigError, NonFiniteError
from aejax.train.checkpoint import Checkpointer
from aejax.train.distributed import host, is_primary, replicated
from aejax.train.feed import CHUNK_BYTES, DeviceEpochs, HostStream, chunk_steps_for, epoch_metrics, free_device_bytes
from aejax.train.metrics import MetricsWriter, NullWriter, read_metrics
from aejax.train.setup import MATMUL_PRECISIONS, RunSetup
from aejax.train.step import compile_seconds, make_eval_fn, make_split_sums
from aejax.train.tracking import MlflowRun, flatten, log_training_end

CALL_SECONDS = 0.5  # a device call's length that train.epochs_per_call=0 aims at (the host looks once per call)
MAX_EPOCHS_PER_CALL = 64
COMPILE_PAYBACK = 2.0  # longer calls only for a run that trains on for this many times their program's compile
# figures(model, params, dataset, workdir, *, records, lr_warmup_steps) -> paths (`aejax.viz.training_figures`)
FigureHook = Callable[..., list]
# Keys that say how a run is shown, saved, fed or timed, not what it computes.
NOT_IDENTITY = ("train.progress", "train.figures", "train.tensorboard", "train.checkpoint_every",
                "train.keep_checkpoints", "train.eval_every", "train.epochs_per_call", "train.async_metrics",
                "train.mlflow", "train.mlflow_uri", "train.mlflow_experiment", "train.deterministic",
                "data.on_device", "data.device_bytes_limit", "data.stream_chunk_steps", "data.mmap", "data.dir")


@dataclasses.dataclass(frozen=True)
class Cadence:
    """When a periodic action is due: every `epochs` epochs or `seconds` of wall-clock time, and after the last."""

    epochs: int | None = None
    seconds: float | None = None

    @classmethod
    def of(cls, key: str, value, *, total_epochs: int) -> "Cadence":
        """The cadence config key `key` holds (a duration: epochs, a share of the run, or wall-clock time)."""
        d = duration(key, value)
        return cls(seconds=d.amount) if d.unit == "seconds" else cls(epochs=d.epochs(epochs=total_epochs))

    def due(self, end: int, *, last: bool, seconds_since: float = 0.0) -> bool:
        """Is it time after 1-based epoch `end`, `seconds_since` the action last ran?"""
        return (last or (self.epochs is not None and end % self.epochs == 0)
                or (self.seconds is not None and seconds_since >= self.seconds))

    def next_end(self, epoch: int) -> int | None:
        """The first epoch end after 0-based `epoch` at which an epoch-counted cadence is due (None: by time)."""
        return None if self.epochs is None else (epoch // self.epochs + 1) * self.epochs


@dataclasses.dataclass(frozen=True)
class Decision:
    """A scheduler's decision: `keep` the members that train on (the others stop with status "stopped", their
    checkpoint, records and summary written); `copy_from` {member: parent}: the member takes the parent's
    params and optimizer state, keeping its own keys (exploit); `hp` {member: {name: value}} (explore)."""

    keep: Sequence[int]
    copy_from: dict[int, int] = dataclasses.field(default_factory=dict)
    hp: dict[int, dict[str, float]] = dataclasses.field(default_factory=dict)


class Scheduler(Protocol):
    """Acts on a population between device calls (successive halving, population-based training)."""

    def next_decision(self, epoch: int) -> int | None:
        """The first epoch end after 0-based `epoch` at which `decide` runs (device calls end there)."""

    def decide(self, end: int, members: Sequence[int], val: dict[str, np.ndarray]) -> Decision:
        """After validation at epoch end `end`: `members` (indices) are the live ones, `val` their val/* means."""

    def commit(self, end: int) -> None:
        """The decision at `end` took effect (stopped members summarized, every live member's checkpoint at `end`
        on disk): record it, so that a resumed search does not take it again."""


class StopRequested(Exception):
    """SIGTERM or SIGINT arrived; a checkpoint was written and the run stopped."""


def stack(trees: Sequence[Any]):
    """Stacks pytrees of equal structure on a new leading axis (on the host: no per-shape compiles)."""
    return jax.tree_util.tree_map(lambda *leaves: np.stack([np.asarray(x) for x in leaves]), *trees)


def member(tree, r: int):
    """Member r of a stacked pytree (pass host arrays: `jax.device_get` the tree once first)."""
    return jax.tree_util.tree_map(lambda leaf: leaf[r], tree)


def max_members(run: RunSetup) -> int:
    """A rough count of members that fit at once: each one's state (params, optimizer state, gradients) and
    batch activations against half the device's free memory (the host's on a CPU)."""
    state = jax.eval_shape(run.init_state)
    state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(state))
    widest = max((x.size for x in jax.tree_util.tree_leaves(state["params"])), default=1)
    per_member = 4 * state_bytes + 16 * run.train.batch_size * int(np.sqrt(widest)) * 4
    free = free_device_bytes() or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return max(1, int(0.5 * free // max(per_member, 1)))


# -- a workdir: its lock, its identity, its member -------------------------------------------------

@contextlib.contextmanager
def workdir_lock(workdir: str):
    """Makes `workdir` and holds its lock file while training (one clear line when it cannot), so that two
    trainings never write one workdir side by side."""
    import fcntl

    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ConfigError(f"the workdir {workdir} is a file, not a directory; pass another --workdir.")
    try:
        os.makedirs(workdir, exist_ok=True)
        handle = open(os.path.join(workdir, ".lock"), "a+", encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot write to the workdir {workdir} ({err.strerror}); pass a --workdir you can "
                          "write to.") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            raise ConfigError(f"{workdir} is being trained by {handle.read().strip() or 'another process'}; wait "
                              "for it to finish, or pass another --workdir.") from None
        handle.truncate(0)
        handle.write(f"aejax process {os.getpid()}")
        handle.flush()
        yield


def check_run_identity(config, workdir: str, *, extend: bool = False) -> dict | None:
    """Compares `config` with the run already in `workdir` (its config.json), before anything is touched.

    Returns None for a new workdir or the same configuration (`NOT_IDENTITY` keys never count),
    {"train.epochs": [old, new]} when `extend` allows more epochs; else a ConfigError naming the keys.
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
    hint = "use a new --workdir, or run the original command to resume it."
    if set(diff) == {"train.epochs"} and new_epochs > old_epochs:
        if extend:
            return {"train.epochs": [old_epochs, new_epochs]}
        hint = "use a new --workdir, or --extend to train this run on to more epochs (the schedule is rebuilt)."
    changes = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
    raise ConfigError(f"{workdir} holds a run of another configuration ({changes}); {hint}")


def is_finished(config, workdir: str) -> bool:
    """A finished run of this configuration is in `workdir`: the run-identity rule holds and summary.json says it
    is done or was stopped by a search (not paused)."""
    path = os.path.join(workdir, "summary.json")
    try:
        if check_run_identity(config, workdir) is not None or not os.path.isfile(path):
            return False
    except ConfigError:
        return False
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("status", "done") in ("done", "stopped")


@dataclasses.dataclass
class _Member:
    run: RunSetup
    workdir: str
    status: str = "training"  # then "done", "stopped" or "failed"
    failure: NonFiniteError | None = None
    epochs_done: int = 0
    saved_epoch: int = -1
    summary: dict | None = None
    tracker: Any = None
    writer: Any = None

    def start(self, extension: dict | None, parent_tracker) -> None:
        """config.json (and history.jsonl), the MLflow run and the checkpointer: before training."""
        if is_primary():
            if extension is not None:
                with open(os.path.join(self.workdir, "history.jsonl"), "a", encoding="utf-8") as f:
                    f.write(json.dumps({"extended": extension}) + "\n")
            write_atomically(os.path.join(self.workdir, "config.json"), config_to_json(self.run.config))
            if os.path.exists(os.path.join(self.workdir, "failed.json")):  # an earlier failure of this configuration
                os.remove(os.path.join(self.workdir, "failed.json"))
            if self.run.train.mlflow:
                cfg = self.run.config.train
                self.tracker = MlflowRun.start(self.workdir, uri=cfg.mlflow_uri, experiment=cfg.mlflow_experiment,
                                               params=self.run.config.to_dict(), parent=parent_tracker)
        self.checkpointer = Checkpointer(os.path.join(self.workdir, "checkpoints"),
                                         keep=self.run.train.keep_checkpoints)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.checkpointer.wait()
        self.checkpointer.close()

    def fail(self, err: NonFiniteError) -> None:
        self.status, self.failure = "failed", err
        if is_primary():
            with open(os.path.join(self.workdir, "failed.json"), "w", encoding="utf-8") as f:
                json.dump({"error": str(err), "step": err.step, "terms": list(err.terms)}, f, indent=2)


def restore_members(members: Sequence[_Member]) -> tuple[list[dict], int]:
    """Every member's state at one common epoch: the newest one every member has a readable checkpoint for (a
    damaged one is reported and an older one used); checkpoints past it are deleted (a member a kill left one
    save ahead, a damaged one): training is deterministic, so they come back identical."""
    common = set.intersection(*(set(m.checkpointer.steps()) for m in members))
    targets = [m.run.restore_target() for m in members]
    epoch, trees = 0, None
    while common and trees is None:
        epoch, first = members[0].checkpointer.restore_latest(targets[0], steps=common)
        try:
            trees = [first] + [m.checkpointer.restore(epoch, t) for m, t in zip(members[1:], targets[1:])]
        except CheckpointError as err:  # damaged for another member: the next older common epoch
            if "structurally different" in str(err):
                raise
            print(f"aejax: warning: {err}; falling back to the previous checkpoint.", file=sys.stderr, flush=True)
            common, epoch = {e for e in common if e < epoch}, 0
    for m in members:
        for step in m.checkpointer.steps():
            if step > epoch:
                m.checkpointer.delete(step)
    if trees is None:
        return [m.run.init_state() for m in members], 0
    for m, tree in zip(members, trees):
        if not np.array_equal(np.asarray(tree["rng"]), np.asarray(jax.random.key_data(m.run.keys.init))):
            raise CheckpointError(f"the checkpoints in {m.checkpointer.directory} come from a run with another "
                                  "seed; use the original seed or a new --workdir.")
    where = (f"in {members[0].workdir}" if len(members) == 1
             else f"for {len(members)} runs ({os.path.dirname(members[0].workdir)})")
    print(f"aejax: resuming from epoch {epoch} (step {int(trees[0]['step'])}) {where}", flush=True)
    return [{k: tree[k] for k in ("step", "params", "opt_state")} for tree in trees], int(epoch)


def train_population(runs: Sequence[RunSetup], workdirs: Sequence[str], *, runs_axis: bool | None = None,
                     scheduler: Scheduler | None = None, extend: bool = False, parent_tracker: Any = None,
                     progress: bool | None = None, figures: FigureHook | None = None,
                     until: int | None = None) -> list[dict]:
    """Trains `runs` (one structure: they differ in hp, seed and injected optimizer values) in `workdirs`.

    Args:
      runs_axis: vmap over a leading run axis (default: with several runs); a lone run without it runs the
        single run's programs (what `fit` does).
      scheduler: decides between calls which members go on and which take another's state.
      extend: members may have more train.epochs than the runs in their workdirs (history.jsonl).
      parent_tracker: an MLflow run (a sweep's) the members' runs are nested under.
      progress: a progress bar over epochs (default: train.progress).
      figures: draws a member's figures when train.figures (`aejax.viz.training_figures`, which `aejax.fit`,
        `aejax.run_sweep` and the command line hand in: train does not import viz).
      until: pause after this epoch (before train.epochs): validated, checkpointed and summarized with status
        "paused"; the same call with a later `until` (or none) trains on from there, exactly.
    Returns:
      Each member's summary (flat split/metric keys, "status", "params" and "model" added), or
      {"failed": NonFiniteError} for a member whose loss went non-finite (failed.json says so too).
    Raises StopRequested after SIGTERM/SIGINT (every live member's checkpoint saved first).
    """
    runs_axis = len(runs) > 1 if runs_axis is None else runs_axis
    if not runs_axis and len(runs) != 1:
        raise ConfigError(f"{len(runs)} runs need a run axis (runs_axis=True).")
    if runs_axis and jax.process_count() > 1:
        raise ConfigError("a population of several runs trains in one process; run one process per sweep shard "
                          "(--shard K/N) instead.")
    wall_start = time.perf_counter()
    members = [_Member(run, w) for run, w in zip(runs, workdirs)]
    with contextlib.ExitStack() as cleanup:
        for m in members:
            if is_primary():
                cleanup.enter_context(workdir_lock(m.workdir))
            os.makedirs(m.workdir, exist_ok=True)
        extensions = [check_run_identity(m.run.config, m.workdir, extend=extend) for m in members]
        for m, extension in zip(members, extensions):  # every workdir was checked before any is written
            m.start(extension, parent_tracker)
            cleanup.callback(m.close)
        loop = _Loop(members, *restore_members(members), runs_axis=runs_axis, scheduler=scheduler,
                     progress=runs[0].train.progress if progress is None else progress, figures=figures,
                     wall_start=wall_start, until=min(until or runs[0].train.epochs, runs[0].train.epochs))
        try:
            loop.run()
        except BaseException as e:
            killed = isinstance(e, (KeyboardInterrupt, SystemExit, StopRequested))
            for m in members:
                if m.tracker is not None and m.status == "training":
                    m.tracker.finish("KILLED" if killed else "FAILED")
            raise
        loop.summarize(loop.live(), status="done" if loop.until == runs[0].train.epochs else "paused")
    return [{"failed": m.failure} if m.status == "failed" else m.summary for m in members]


# -- the loop --------------------------------------------------------------------------------------

@dataclasses.dataclass
class _Call:
    epochs: range
    parts: Any
    val: Callable[[], dict[int, dict[str, np.ndarray]]]  # fetches {position in epochs: validation means by slot}


class _Loop:
    """The population's device side (placement, feed, evaluation) and the turns of the loop."""

    def __init__(self, members: list[_Member], states: list[dict], start_epoch: int, *, runs_axis: bool,
                 scheduler: Scheduler | None, progress: bool, figures: FigureHook | None, wall_start: float,
                 until: int):
        self.members, self.runs_axis, self.scheduler, self.figures = members, runs_axis, scheduler, figures
        self.wall_start = wall_start  # a population's members train together: their wall time is the loop's
        self.until = until
        lead = self.lead = members[0].run
        opts = self.opts = lead.train
        self.epoch, self.first_step, self.epoch_times = start_epoch, start_epoch * lead.steps_per_epoch, []
        self.calls, self.warmup_epochs = 0, 0  # the first call's epochs: its first run warms up (like the bare scan's)
        self.first_compile = 0.0  # seconds the first call compiled
        self.eval_cadence = Cadence.of("train.eval_every", opts.eval_every, total_epochs=opts.epochs)
        self.save_cadence = Cadence.of("train.checkpoint_every", opts.checkpoint_every, total_epochs=opts.epochs)
        devices = np.asarray(jax.devices())
        self.mesh = None  # ("runs", "data"): members spread over "runs", or each member's batches over "data"
        if len(devices) > 1 and (runs_axis or opts.data_parallel):
            self.mesh = jax.sharding.Mesh(devices.reshape((1, -1) if opts.data_parallel else (-1, 1)), ("runs", "data"))
        self.per_call = opts.epochs_per_call or 1  # 0: chosen after the first call (`_choose_call_length`)
        example_bytes = 4 * int(np.prod(lead.dataset.input_shape))
        self.evaluate = make_eval_fn(
            lead.model, batch_size=opts.eval_batch_size, runs_axis=runs_axis,
            host_chunk_batches=max(1, CHUNK_BYTES // (example_bytes * opts.eval_batch_size)) if lead.streams else 0,
            precision=MATMUL_PRECISIONS[opts.matmul_precision])
        data = lead.dataset
        self.splits = [(s.x, s.y) if name == "train" and lead.streams else (self._shared(s.x), self._shared(s.y))
                       for name, s in (("train", data.train), ("val", data.val), ("test", data.test))]
        width = self._width(len(members))  # slot -> member; padding slots repeat the last member
        self.slots = list(range(len(members))) + [len(members) - 1] * (width - len(members))
        if runs_axis:
            pick = lambda items: stack([items[r] for r in self.slots])
            key_data = lambda name: np.asarray([jax.random.key_data(getattr(m.run.keys, name)) for m in members])
            self.state, self.hp = self._per_member(pick(states)), self._per_member(pick([m.run.hp for m in members]))
            self.keys = {name: self._per_member(jax.random.wrap_key_data(key_data(name)[self.slots]))
                         for name in ("data", "loop", "eval")}
        else:
            self.state, self.hp = self._per_member(states[0]), self._per_member(lead.hp)
            self.keys = {f.name: getattr(lead.keys, f.name) for f in dataclasses.fields(lead.keys)}
        self.feed = self._make_feed(len(members))
        for m in members:
            m.epochs_done = start_epoch
            m.writer = (MetricsWriter(m.workdir, resume_step=self.first_step, tensorboard=opts.tensorboard,
                                      tracker=m.tracker) if is_primary() else NullWriter())
        self.bar = _Progress(progress, start_epoch, opts.epochs)

    def _shared(self, tree):
        """`tree` on the device, whole for every member (replicated over the mesh)."""
        return jax.device_put(tree) if self.mesh is None else replicated(tree, self.mesh)

    def _per_member(self, tree):
        """`tree` on the device; with a run axis, sharded over the mesh's "runs" axis."""
        if self.mesh is None or not self.runs_axis:
            return self._shared(tree)
        return jax.device_put(tree, jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec("runs")))

    def _make_feed(self, members: int):
        lead, spec = self.lead, jax.sharding.PartitionSpec
        x, y = self.splits[0]
        common = dict(data_key=self.keys["data"], loop_key=self.keys["loop"], batch_size=self.opts.batch_size,
                      runs_axis=self.runs_axis)
        if lead.streams:
            chunk = chunk_steps_for(lead.feed.stream_chunk_steps, example_bytes=4 * int(np.prod(x.shape[1:])),
                                    batch_size=self.opts.batch_size, steps_per_epoch=lead.steps_per_epoch,
                                    members=members)
            return HostStream(lead.train_step(), x, y, self.hp, chunk_steps=chunk, **common)
        data_parallel = self.mesh is not None and self.opts.data_parallel
        sums = make_split_sums(lead.model, batch_size=self.opts.eval_batch_size,
                               precision=MATMUL_PRECISIONS[self.opts.matmul_precision])
        return DeviceEpochs(lead.train_step(), x, y, self.hp, **common, eval_key=self.keys["eval"],
                            val=self.splits[1], split_sums=sums,
                            capacity=self.opts.epochs_per_call or MAX_EPOCHS_PER_CALL,
                            batch_sharding=jax.sharding.NamedSharding(self.mesh, spec("data")) if data_parallel else None,
                            spmd_axis_name="runs" if self.mesh is not None and self.runs_axis else None)

    def _width(self, live: int) -> int:
        """Slots for `live` members: the next power of two with a run axis (a few compiled widths as a search
        stops members), a multiple of the mesh's "runs" axis."""
        if not self.runs_axis:
            return live
        width = min(2 ** math.ceil(math.log2(max(live, 1))), len(self.members))
        runs_devices = 1 if self.mesh is None else self.mesh.shape["runs"]
        return -(-max(width, live) // runs_devices) * runs_devices

    def live(self) -> list[tuple[int, _Member]]:
        """(slot, member) of the members still training, each at its first slot."""
        first = {}
        for s, r in enumerate(self.slots):
            first.setdefault(r, s)
        return [(s, self.members[r]) for r, s in first.items() if self.members[r].status == "training"]

    # -- the turns --
    def run(self) -> None:
        opts, pending, last_save = self.opts, None, time.perf_counter()
        self.mark, self.compiled = time.perf_counter(), compile_seconds()
        with _SignalFlag() as stop, contextlib.closing(self.bar):
            while self.epoch < self.until and self.live():
                epochs = range(self.epoch, self._call_end(self.epoch))
                end, last = epochs.stop, epochs.stop == self.until
                decides = self.scheduler is not None and self.scheduler.next_decision(self.epoch) == end
                due = [self.eval_cadence.due(e + 1, last=e + 1 == self.until) or (decides and e + 1 == end)
                       for e in epochs]
                self.state, parts, val = self.feed(self.state, epochs, due)
                call = _Call(epochs, parts, self._validation(val, due))
                if pending is not None:  # the previous call's host work, while this one runs
                    self._record(pending)
                save = ((decides and getattr(self.scheduler, "save_at_decisions", True))  # False: the hook's
                        or self.save_cadence.due(end, last=last, seconds_since=time.perf_counter() - last_save))
                pending = call if opts.async_metrics and not (last or save or decides) else None
                if pending is None:
                    val = self._record(call)
                    if decides and self.live():
                        self._decide(end, val)
                    if save or stop.signum is not None:  # a signal that came during the records saves here
                        self._save(end)
                        last_save = time.perf_counter()
                    if decides:  # the decision's effects are on disk: the scheduler may record it as done
                        for m in self.members:
                            m.checkpointer.wait()
                        self.scheduler.commit(end)
                self.epoch = end
                if stop.signum is not None and self.epoch < self.until and self.live():
                    if pending is not None:
                        self._record(pending)
                    self._save(self.epoch)  # the newest state, whatever was saved before it
                    for m in self.members:
                        m.checkpointer.wait()
                    live = [m.checkpointer.directory for _, m in self.live()]
                    where = live[0] if len(live) == 1 else f"each run's checkpoints/ ({len(live)} runs)"
                    raise StopRequested(f"stopped by signal {stop.signum} after epoch {self.epoch}; its checkpoint "
                                        f"is in {where}; run the same command to resume.")
            if pending is not None:
                self._record(pending)

    def _call_end(self, epoch: int) -> int:
        """The end (exclusive, 0-based) of the device call that starts at `epoch` (a feed that cannot validate
        inside its calls ends them at the validations too)."""
        inside = isinstance(self.feed, DeviceEpochs) and (self.per_call > 1 or self.feed.validates)
        ends = [epoch + self.per_call, self.until, self.save_cadence.next_end(epoch),
                self.scheduler and self.scheduler.next_decision(epoch),
                None if inside else self.eval_cadence.next_end(epoch)]
        return min(e for e in ends if e)

    def _validation(self, sums, due: list[bool]) -> Callable[[], dict[int, dict[str, np.ndarray]]]:
        """The function that fetches a call's validation means, {position in the call: {term: [slots]}}: from the
        sums the call computed inside (`sums`), or a validation dispatched now, after the call (a call that does
        not validate inside ends at its one validation)."""
        n = len(self.splits[1][1])
        if sums is not None:
            def fetch():
                fetched = host(sums)
                return {i: {k: np.atleast_1d(np.asarray(v[..., i], np.float64)) / n for k, v in fetched.items()}
                        for i, d in enumerate(due) if d}
            return fetch
        if not due[-1]:
            return dict
        fold = _FOLD_RUNS if self.runs_axis else _FOLD
        means = self.evaluate(self.state["params"], *self.splits[1], self.hp,
                              fold(self.keys["eval"], np.int32(len(due) - 1 + self.epoch)), fetch=False)
        return lambda: {len(due) - 1: {k: np.atleast_1d(np.asarray(v, np.float64)) for k, v in means().items()}}

    def _choose_call_length(self, seconds_per_epoch: float) -> None:
        """train.epochs_per_call=0: from the second call's time (the first one's warms up), as many epochs per call
        as fill about `CALL_SECONDS`, at most `MAX_EPOCHS_PER_CALL` (one program runs every call length), when the
        run has at least two such calls left and trains on for at least `COMPILE_PAYBACK` times the first call's
        compile (the long program compiles about as long); else one epoch per call."""
        if self.opts.epochs_per_call or not isinstance(self.feed, DeviceEpochs) or self.calls != 2:
            return
        per_call = min(MAX_EPOCHS_PER_CALL, int(CALL_SECONDS / max(seconds_per_epoch, 1e-9)))
        left = self.until - self.epoch
        if per_call > 1 and left >= 2 * per_call and left * seconds_per_epoch >= COMPILE_PAYBACK * self.first_compile:
            self.per_call = per_call

    def _record(self, call: _Call) -> dict[str, np.ndarray] | None:
        """Fetches a call's metrics (and validation), writes every live member's records, stops the members that
        went non-finite; returns the validation means by slot."""
        steps, live = self.lead.steps_per_epoch, self.live()
        metrics, finite = epoch_metrics(call.parts, len(call.epochs), steps, runs_axis=self.runs_axis)
        vals = call.val()
        now, compiled = time.perf_counter(), compile_seconds()
        seconds = (now - self.mark - (compiled - self.compiled)) / len(call.epochs)  # compiles timed apart
        self.first_compile = compiled - self.compiled if self.calls == 0 else self.first_compile
        self.mark, self.compiled = now, compiled
        rate = len(live) * steps * self.opts.batch_size / max(seconds, 1e-12)
        for i, epoch in enumerate(call.epochs):
            for s, m in live:
                m_i = {k: v[s, i] for k, v in metrics.items()}
                if m.status != "training":
                    continue
                if not finite[s, i].all() and not self.opts.skip_nonfinite:
                    m.fail(_nonfinite_error(m_i, finite[s, i], self.first_step, m.checkpointer))
                    continue
                val_s = {k: v[s] for k, v in vals[i].items()} if i in vals else {}
                record = epoch_record(epoch, self.first_step + steps, m_i, finite[s, i], val_s,
                                      skip_nonfinite=self.opts.skip_nonfinite)
                m.writer.write(record, extra_scalars={"perf/examples_per_s": rate})
                if hasattr(self.scheduler, "on_record"):  # a scheduler that reads the records (aejax.train.hooks)
                    self.scheduler.on_record(self.members.index(m), record)
                m.epochs_done = epoch + 1
            alive = [s for s, m in live if m.status == "training"]
            self.epoch_times.append(seconds)
            self.bar.update(float(np.mean(metrics["loss"][alive, i])) if alive else float("nan"),
                            float(np.mean(vals[i]["mse"][alive])) if i in vals and alive else float("nan"), rate)
            self.first_step += steps
        self.calls += 1
        self.warmup_epochs = self.warmup_epochs or len(call.epochs)
        self._choose_call_length(seconds)
        return vals.get(len(call.epochs) - 1)

    def _save(self, epoch: int, which: Sequence[_Member] | None = None) -> None:
        """Checkpoints of the live members (or of `which`) at `epoch`, each once."""
        slots = [(s, m) for s, m in self.live() if (which is None or m in which) and m.saved_epoch != epoch]
        state = host(self.state) if self.runs_axis and slots else self.state
        for s, m in slots:
            m.writer.sync()  # the records up to the checkpoint on disk first
            m.checkpointer.save(epoch, m.run.checkpoint_tree(member(state, s) if self.runs_axis else state, epoch))
            m.saved_epoch = epoch

    def _decide(self, end: int, val: dict[str, np.ndarray]) -> None:
        """Applies a scheduler's decision: the stopped members finish; the kept ones take their parents' state
        (one gather on the run axis) and new hp, compacted to a few padded widths: no compile per size."""
        live = self.live()
        ids = [self.members.index(m) for _, m in live]
        decision = self.scheduler.decide(end, ids, {f"val/{k}": v[[s for s, _ in live]] for k, v in val.items()})
        named = set(decision.keep) | set(decision.copy_from) | set(decision.copy_from.values()) | set(decision.hp)
        if not named <= set(ids):
            raise ValueError(f"the scheduler named members {sorted(named - set(ids))} that are not live ({ids}).")
        stopped = [(s, m) for r, (s, m) in zip(ids, live) if r not in decision.keep]
        self._save(end, [m for _, m in stopped])
        self.summarize(stopped, status="stopped")  # waits for their checkpoints
        if not self.runs_axis:  # a run alone (fit's on_epoch hook) goes on or stops: nothing to gather
            return
        slot_of = dict(zip(ids, (s for s, _ in live)))
        kept = [r for r in ids if r in decision.keep]
        pad = self._width(len(kept)) - len(kept)
        take = lambda tree, slots: jax.tree_util.tree_map(
            lambda a: jnp.take(a, jnp.asarray(slots + slots[:1] * pad), axis=0), tree)
        hp = take(self.hp, [slot_of[r] for r in kept])
        for i, r in enumerate(kept):
            for name, value in decision.hp.get(r, {}).items():
                hp[name] = hp[name].at[i].set(value)
        self.state = self._per_member(take(self.state, [slot_of[decision.copy_from.get(r, r)] for r in kept]))
        self.hp = self._per_member(hp)
        self.keys = {name: self._per_member(take(k, [slot_of[r] for r in kept])) for name, k in self.keys.items()}
        self.slots = kept + kept[:1] * pad
        self.feed.update(self.hp, self.keys["data"], self.keys["loop"], self.keys["eval"])

    def summarize(self, slots: list[tuple[int, _Member]], *, status: str) -> None:
        """Evaluates every split for the members at `slots` and writes their summaries."""
        if not slots:
            return
        for _, m in slots:
            m.checkpointer.wait()
        final_keys = (jax.vmap(final_eval_key) if self.runs_axis else final_eval_key)(self.keys["eval"])
        terms = {name: self.evaluate(self.state["params"], x, y, self.hp, final_keys)
                 for name, (x, y) in zip(("train", "val", "test"), self.splits)}
        params, steps = host(self.state["params"]), np.atleast_1d(host(self.state["step"]))
        for s, m in slots:
            m.summary = write_summary(
                m.run, member(params, s) if self.runs_axis else params, m.workdir,
                split_terms={split: {k: np.atleast_1d(v)[s] for k, v in t.items()} for split, t in terms.items()},
                steps=int(steps[s]), epoch_times=self.epoch_times[self.warmup_epochs:] or self.epoch_times,
                status=status, epochs=m.epochs_done,
                wall_time_s=time.perf_counter() - self.wall_start, figures=self.figures)
            m.status = status
            if m.tracker is not None:
                log_training_end(m.tracker, m.workdir, m.summary, step=int(m.summary["steps"]))


_FOLD = jax.jit(jax.random.fold_in)  # the validation's key, one cached program instead of eager ops per epoch
_FOLD_RUNS = jax.jit(jax.vmap(jax.random.fold_in, in_axes=(0, None)))


def final_eval_key(eval_key: jax.Array) -> jax.Array:
    """The key of the final evaluation of every split, from the run's eval key."""
    return jax.random.fold_in(eval_key, 10**6)


def epoch_record(epoch: int, step: int, metrics, finite, val, *, skip_nonfinite: bool) -> dict[str, Any]:
    """One metrics.jsonl line: train/* means over the epoch's finite steps, val/* means."""
    record = {"epoch": epoch + 1, "step": step}
    record.update({f"train/{k}": float(np.mean(v[finite])) if finite.any() else float("nan")
                   for k, v in metrics.items()})
    if skip_nonfinite:
        record["train/skipped_steps"] = int((~finite).sum())
    record.update({f"val/{k}": float(v) for k, v in val.items()})
    return record


def write_summary(run: RunSetup, params, workdir: str, *, split_terms: dict[str, dict], steps: int,
                  epoch_times: list[float], wall_time_s: float, status: str = "done", epochs: int | None = None,
                  figures: FigureHook | None = None) -> dict:
    """summary.json (flat `split/metric` keys, status, epochs trained, steps, timings, device, the data read; the
    steady steps/s from `epoch_times`, which the loop gives without its first call, compile and warm-up)
    and the figures (`figures`, when train.figures); returns it with the final "params" and the "model"."""
    summary: dict[str, Any] = {f"{split}/{k}": float(v) for split, terms in split_terms.items()
                               for k, v in terms.items()}
    data = run.dataset
    if data.name != run.config.data.name or data.source or data.source_hash:  # what the run really read
        summary.update({"data/name": data.name, "data/source": data.source or "in-memory arrays"})
        if data.source_hash:
            summary["data/source_hash"] = data.source_hash
    summary.update({"status": status, "epochs": run.train.epochs if epochs is None else epochs, "steps": steps,
                    "wall_time_s": wall_time_s, "device": platform.device_kind(),
                    "deterministic": platform.deterministic_active(),
                    "perf/steps_per_s": run.steps_per_epoch * len(epoch_times) / sum(epoch_times)
                    if epoch_times else float("nan")})
    if is_primary():
        if run.train.figures and figures is not None:
            summary["figures"] = figures(run.model, params, data, workdir, lr_warmup_steps=run.warmup_steps,
                                         records=read_metrics(os.path.join(workdir, "metrics.jsonl")))
        write_atomically(os.path.join(workdir, "summary.json"), json.dumps(summary, indent=2, sort_keys=True))
    return {**summary, "params": params, "model": run.model}


def write_atomically(path: str, text: str) -> None:
    """`text` into `path` through a temporary file and a rename: a kill leaves the old file or the new one."""
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


class _SignalFlag:
    """Turns SIGTERM/SIGINT into a flag checked between device calls (a second signal interrupts at once)."""

    def __init__(self):
        self.signum, self._old = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


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


class _Progress:
    """A tqdm bar over epochs showing the training loss, validation MSE and examples/s."""

    def __init__(self, enabled: bool, start: int, total: int):
        from tqdm import tqdm

        self._bar = tqdm(total=total, initial=start, unit="epoch", dynamic_ncols=True, file=sys.stderr,
                         disable=not enabled)

    def update(self, loss: float, val_mse: float, examples_per_s: float) -> None:
        self._bar.set_postfix(loss=f"{loss:.4g}", val_mse=f"{val_mse:.4g}", ex_s=f"{examples_per_s:,.0f}",
                              refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


__all__ = ["Cadence", "Decision", "NOT_IDENTITY", "Scheduler", "StopRequested", "check_run_identity",
           "epoch_record", "final_eval_key", "is_finished", "max_members", "member", "restore_members", "stack",
           "train_population", "workdir_lock", "write_summary"]
