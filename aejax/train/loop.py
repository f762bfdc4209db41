"""The one training loop: populations of R >= 1 runs, each trained as one program (`aejax.train.population`).

`fit` is a population of one; a sweep group is a population of R; a search is one or several
populations and a `Scheduler` that decides between device calls. `train` is the loop, one page in
big_vision's shape: for each stretch up to the next decision (or the end), a `for` over device calls
of each population, one "is it time?" test per call, and the host work in small functions below it:
the records (with `train.async_metrics`, those of the previous call while this one runs), members
that went non-finite stopped, checkpoints when due (every `train.checkpoint_every` epochs or that much
wall-clock time, after the last epoch, and on a stop signal), then the scheduler's decision, taken
once for every population and applied by one gather on each population's run axis. A call trains
`train.epochs_per_call` epochs (by default one, or as many as fill about `CALL_SECONDS` once the
second call was timed, for a run long enough to pay for that program's compile); compiles are timed
apart from the calls. Every `train.*` and `data.*` option means the same for R = 1 and R > 1. Each
member writes its own workdir: config.json, metrics.jsonl, tensorboard/, checkpoints/, summary.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Protocol, Sequence

import jax
import numpy as np

from aejax import platform
from aejax.config import config_from_json, config_to_json, duration, resolve_config
from aejax.errors import CheckpointError, CheckpointStructureError, ConfigError, NonFiniteError
from aejax.train.checkpoint import Checkpointer
from aejax.train.distributed import agree, is_primary
from aejax.train.feed import (CHUNK_BYTES, DeviceEpochs, HostStream, active_steps, chunk_steps_for, epoch_metrics,
                              free_device_bytes, split_bytes)
from aejax.train.metrics import MetricsWriter, NullWriter, progress_bar, read_metrics, write_atomically
from aejax.train.population import Population
from aejax.train.setup import MATMUL_PRECISIONS, RunSetup
from aejax.train.step import compile_seconds, make_eval_fn, make_split_sums
from aejax.train.tracking import MlflowRun, flatten, log_training_end

CALL_SECONDS = 0.5  # a device call's length that train.epochs_per_call=0 aims at (the host looks once per call)
MAX_EPOCHS_PER_CALL = 64
COMPILE_PAYBACK = 2.0  # longer calls only for a run that trains on for this many times their program's compile
# figures(model, params, dataset, workdir, *, records, lr_warmup_steps) -> paths (`aejax.viz.training_figures`)
FigureHook = Callable[..., list]
# Keys that say how a run is shown, saved, fed or timed, not what it computes: they never count in the
# run-identity rule (`check_run_identity`) and never split a sweep into groups (`aejax.sweep.runner`).
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
    """Acts on the populations between device calls (successive halving, population-based training)."""

    def next_decision(self, epoch: int) -> int | None:
        """The first epoch end after 0-based `epoch` at which `decide` runs (device calls end there)."""

    def decide(self, end: int, members: Sequence[int], val: dict[str, np.ndarray]) -> Decision:
        """After validation at epoch end `end`: `members` (indices over every population, in order) are the ones
        ranked there, `val` their val/* means (NaN for a member that failed since the last decision)."""

    def commit(self, end: int) -> None:
        """The decision at `end` took effect (stopped members summarized, every live member's checkpoint at `end`
        on disk): record it, so that a resumed search does not take it again."""


class StopRequested(Exception):
    """SIGTERM or SIGINT arrived; a checkpoint was written and the run stopped."""


def max_members(run: RunSetup) -> int:
    """A rough count of members that fit at once: each one's state (params, optimizer state, gradients) and
    batch activations against half the device's free memory (the host's on a CPU), less the training split,
    which the population holds once (members that see subsets index one shared copy of it)."""
    state = jax.eval_shape(run.init_state)
    state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(state))
    widest = max((x.size for x in jax.tree_util.tree_leaves(state["params"])), default=1)
    per_member = 4 * state_bytes + 16 * run.train.batch_size * int(np.sqrt(widest)) * 4
    free = free_device_bytes() or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    train = (run.whole or run.dataset).train
    shared = 0 if run.streams else split_bytes(train.x, train.y)
    return max(1, int((0.5 * free - shared) // max(per_member, 1)))


# -- a workdir: its lock, its identity -------------------------------------------------------------

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


def check_run_identity(config, workdir: str, *, extend: bool = False, ignore: Sequence[str] = ()) -> dict | None:
    """Compares `config` with the run already in `workdir` (its config.json), before anything is touched.

    Returns None for a new workdir or the same configuration (`NOT_IDENTITY` keys never count, nor `ignore`: the
    hp a search changes as it goes), {"train.epochs": [old, new]} when `extend` allows more epochs; else a
    ConfigError naming the keys.
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
            if saved.get(k) != new.get(k) and k not in NOT_IDENTITY and k not in ignore}
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


def finished_status(workdir: str) -> str | None:
    """The status in `workdir`'s summary.json when it is a finished one ("done", or "stopped" by a search), else
    None (no summary, or "paused"). Call it after the run-identity rule held for the workdir."""
    path = os.path.join(workdir, "summary.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        status = json.load(f).get("status", "done")
    return status if status in ("done", "stopped") else None


# -- a member: its files ---------------------------------------------------------------------------

@dataclasses.dataclass
class _Member:
    run: RunSetup
    workdir: str
    status: str = "training"  # then "done", "stopped" or "failed"
    saved_epoch: int = -1
    summary: dict | None = None  # what train_populations returns for the member
    tracker: Any = None
    writer: Any = None
    checkpointer: Any = None

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
        self.checkpointer.close()  # once every save is on disk

    def fail(self, metrics, finite, first_step: int) -> None:
        """Its epoch from global step `first_step` went non-finite: status "failed", the error in failed.json."""
        bad = int(np.argmin(finite))
        step = first_step + bad + 1  # 1-based: the update that produced the value
        terms = tuple(k for k, v in metrics.items() if not np.isfinite(v[bad]))
        kept = self.checkpointer.steps()
        where = (f"the last good checkpoint (epoch {kept[-1]}) is kept in {self.checkpointer.directory}" if kept
                 else "no checkpoint was written before it")
        err = NonFiniteError(
            f"training step {step} produced non-finite {', '.join(terms) or 'values'}; {where}. Lower "
            "hp.learning_rate, set optim.grad_clip, check the data, or set train.skip_nonfinite=True to skip such "
            "updates.", step=step, terms=terms)
        self.status, self.summary = "failed", {"failed": err}
        if is_primary():
            write_atomically(os.path.join(self.workdir, "failed.json"),
                             json.dumps({"error": str(err), "step": err.step, "terms": list(err.terms)}, indent=2))


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
        except CheckpointStructureError:
            raise
        except CheckpointError as err:  # damaged for another member: the next older common epoch
            print(f"aejax: warning: {err}; falling back to the previous checkpoint.", file=sys.stderr, flush=True)
            common, epoch = {e for e in common if e < epoch}, 0
    for m in members:
        for step in [s for s in m.checkpointer.steps() if s > epoch]:
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


# -- a population in training: its members, device side and clocks ---------------------------------

@dataclasses.dataclass
class _Team:
    """One population in the loop: its members (files), device side (`Population`, feed, evaluation, splits) and
    where it stands (epoch, call length, clocks)."""

    members: list[_Member]
    pop: Population
    feed: Any
    evaluate: Callable
    splits: dict  # {"train", "val", "test": (x, y)} (members that see subsets: the shared splits)
    epoch: int
    scan_steps: int  # the steps of an epoch's scan (members that see subsets: the longest member's)
    per_call: int
    offset: int = 0  # the index of its first member among every population's
    calls: list = dataclasses.field(default_factory=list)  # each call's (epochs, seconds per epoch, seconds compiled)
    since: tuple = (0.0, 0.0)  # (time.perf_counter(), compile_seconds()) when the call now timed began
    ranked: list = dataclasses.field(default_factory=list)  # members live when the stretch to a decision began
    last_val: dict = dataclasses.field(default_factory=dict)  # the newest validation means, {term: [slots]}
    on_record: Any = None  # a scheduler's on_record(member, record): it reads the records (`aejax.train.hooks`)
    figures: Any = None  # FigureHook for the summaries
    wall_start: float = 0.0  # the population's members train together: their wall time is the training's
    member_eval: Any = None  # members that see subsets: the single run's evaluation, called per member on its rows

    def live(self) -> list[tuple[int, _Member]]:
        """(slot, member) of the members still training, each at its first slot."""
        return [(s, self.members[r]) for r, s in self.pop.first_slots().items()
                if self.members[r].status == "training"]


def _build_team(members: list[_Member], states: list[dict], start: int, *, vmapped: bool, planned: int,
                **team_options) -> _Team:
    lead, opts = members[0].run, members[0].run.train
    keys = [{name: getattr(m.run.keys, name) for name in ("data", "loop", "eval")} for m in members]
    subsets = lead.rows is not None
    if any((m.run.rows is not None) != subsets or m.run.whole is not lead.whole for m in members):
        raise ValueError("the members of a population see subsets of one shared dataset, or all see every row.")
    pop = Population(states, [m.run.hp for m in members], keys, vmapped=vmapped, planned=planned,
                     data_parallel=opts.data_parallel, tables=[m.run.rows.train for m in members] if subsets else None)
    measure = dict(batch_size=opts.eval_batch_size, precision=MATMUL_PRECISIONS[opts.matmul_precision])
    example_bytes = 4 * int(np.prod(lead.dataset.input_shape))
    evaluate = make_eval_fn(lead.model, program=pop.program, fetch=pop.fetch, **measure,
                            host_chunk_batches=max(1, CHUNK_BYTES // (example_bytes * opts.eval_batch_size))
                            if lead.streams else 0)
    data = lead.whole if subsets else lead.dataset
    splits = {name: (s.x, s.y) if name == "train" and lead.streams else pop.shared((s.x, s.y))
              for name, s in (("train", data.train), ("val", data.val), ("test", data.test))}
    (x, y), common = splits["train"], dict(data_key=pop.keys["data"], loop_key=pop.keys["loop"],
                                     batch_size=opts.batch_size, program=pop.program)
    scan_steps = max(len(m.run.rows.train) for m in members) // opts.batch_size if subsets else lead.steps_per_epoch
    if lead.streams and not subsets:
        chunk = chunk_steps_for(lead.feed.stream_chunk_steps, example_bytes=example_bytes, batch_size=opts.batch_size,
                                steps_per_epoch=lead.steps_per_epoch, members=len(members))
        feed = HostStream(lead.train_step(), x, y, pop.hp, chunk_steps=chunk, **common)
    else:
        feed = DeviceEpochs(lead.train_step(), x, y, pop.hp, **common, eval_key=pop.keys["eval"], val=splits["val"],
                            split_sums=make_split_sums(lead.model, **measure),
                            capacity=opts.epochs_per_call or MAX_EPOCHS_PER_CALL, batch_sharding=pop.batch_sharding,
                            rows=(*pop.rows, scan_steps) if subsets else None)
    for m in members:
        m.writer = (MetricsWriter(m.workdir, resume_step=start * m.run.steps_per_epoch, tensorboard=opts.tensorboard,
                                  tracker=m.tracker) if is_primary() else NullWriter())
    return _Team(members, pop, feed, evaluate, splits, start, scan_steps, 1 if subsets else opts.epochs_per_call or 1,
                 **team_options, member_eval=make_eval_fn(lead.model, **measure) if subsets else None)


# -- the loop --------------------------------------------------------------------------------------

def train(teams: list[_Team], *, scheduler: Scheduler | None, until: int, progress: bool) -> None:
    """Trains every population to epoch `until`, deciding with `scheduler` at its epochs."""
    opts = teams[0].members[0].run.train
    eval_cadence = Cadence.of("train.eval_every", opts.eval_every, total_epochs=opts.epochs)
    save_cadence = Cadence.of("train.checkpoint_every", opts.checkpoint_every, total_epochs=opts.epochs)
    last_save, start = time.perf_counter(), min(t.epoch for t in teams)
    saves_at_decisions = getattr(scheduler, "save_at_decisions", True)  # False: checkpoints by the cadence only
    bar = progress_bar(progress and len(teams) == 1, total=opts.epochs, initial=start, unit="epoch")
    with _SignalFlag() as stop, contextlib.closing(bar):
        while any(t.live() and t.epoch < until for t in teams):
            start = min(t.epoch for t in teams if t.live())
            decision_end = scheduler.next_decision(start) if scheduler is not None else None
            boundary = min(until, decision_end or until)
            decides = decision_end == boundary
            for team in [t for t in teams if t.live() and t.epoch < boundary]:
                if len(teams) > 1:  # on the device for its stretch; the others wait in host memory
                    team.pop.state = team.pop.per_member(team.pop.state)
                team.ranked, pending = [m for _, m in team.live()], None
                team.since = time.perf_counter(), compile_seconds()
                while team.epoch < boundary and team.live():
                    epochs = range(team.epoch, _call_end(team, boundary, eval_cadence, save_cadence))
                    end, last = epochs.stop, epochs.stop == until
                    at_decision = decides and end == boundary  # the decision saves there (unless told not to)
                    due = [eval_cadence.due(e + 1, last=e + 1 == until) or (decides and e + 1 == boundary)
                           for e in epochs]
                    team.pop.state, parts, sums = team.feed(team.pop.state, epochs, due)
                    record = functools.partial(_record, team, bar, until, epochs, parts, _validation(team, sums, due))
                    if pending is not None:  # the previous call's host work, while this one runs
                        pending()
                    save = agree(not (at_decision and saves_at_decisions) and save_cadence.due(
                        end, last=last, seconds_since=time.perf_counter() - last_save))
                    pending = record if opts.async_metrics and not (last or save or end == boundary) else None
                    if pending is None:
                        record()
                    stopping = stop.requested()  # a signal that came during the records saves here
                    if pending is None and (save or (stopping and not (at_decision and saves_at_decisions))):
                        _save(team, end)
                        last_save = time.perf_counter()
                    team.epoch = end
                    if stopping and not last and team.live() and not at_decision:  # a due decision is taken first
                        if pending is not None:
                            pending()
                        _stop(teams, stop.signum)
                if pending is not None:
                    pending()
                if len(teams) > 1:
                    team.pop.state = team.pop.fetch(team.pop.state)
            if decides and any(t.ranked for t in teams):
                _decide(teams, scheduler, boundary)
                last_save = time.perf_counter()
            if stop.requested() and any(t.live() and t.epoch < until for t in teams):
                _stop(teams, stop.signum)


def _call_end(team: _Team, boundary: int, eval_cadence: Cadence, save_cadence: Cadence) -> int:
    """The end (exclusive, 0-based) of the device call that starts at the team's epoch (a feed that cannot
    validate inside its calls ends them at the validations too)."""
    inside = isinstance(team.feed, DeviceEpochs) and (team.per_call > 1 or team.feed.validates)
    ends = [team.epoch + team.per_call, boundary, save_cadence.next_end(team.epoch),
            None if inside else eval_cadence.next_end(team.epoch)]
    return min(e for e in ends if e)


def _validation(team: _Team, sums, due: list[bool]) -> Callable[[], dict[int, dict[str, np.ndarray]]]:
    """The function that fetches a call's validation means, {position in the call: {term: [slots]}}: from the
    `sums` the call computed inside, or a validation dispatched now (a call not validating inside ends there)."""
    if sums is not None:
        def fetch():
            fetched, n = team.pop.fetch(sums), len(team.splits["val"][1])
            return {i: {k: np.asarray(v[:, i], np.float64) / n for k, v in fetched.items()}
                    for i, d in enumerate(due) if d}
        return fetch
    if not due[-1]:
        return dict
    means = _evaluate(team, "val", team.pop.fold_eval_key(len(due) - 1 + team.epoch))
    return lambda: {len(due) - 1: means()}


def _evaluate(team: _Team, split: str, keys) -> Callable[[], dict[str, np.ndarray]]:
    """Dispatches the evaluation of `split` with each slot's key of `keys`; returns the function that fetches
    {term: [slots]}. Members that see subsets: the train and val splits are each live member's own rows, evaluated
    by the single run's program, one call per member (NaN at slots of no live member)."""
    pop = team.pop
    if team.member_eval is None or split == "test":
        return team.evaluate(pop.state["params"], *team.splits[split], pop.hp, keys, fetch=False)
    pending = {s: team.member_eval(pop.slot(pop.state["params"], s), getattr(m.run.dataset, split).x,
                                   getattr(m.run.dataset, split).y, pop.slot(pop.hp, s), pop.slot(keys, s), fetch=False)
               for s, m in team.live()}

    def fetch():
        means = {s: get() for s, get in pending.items()}
        return {k: np.array([means[s][k] if s in means else np.nan for s in range(len(pop.slots))], np.float64)
                for k in next(iter(means.values()), {})}
    return fetch


def _record(team: _Team, bar, until: int, epochs: range, parts, val: Callable[[], dict]) -> None:
    """Fetches a call's metrics and validation (`val()`: {position in `epochs`: {term: [slots]}}), writes the live
    members' records, fails the non-finite ones; keeps the last epoch's validation means (`team.last_val`)."""
    live, steps, opts = team.live(), team.scan_steps, team.members[0].run.train
    fetched = team.pop.fetch(list(parts))
    metrics, finite = epoch_metrics(fetched, len(epochs), steps)
    active = active_steps(fetched, len(epochs), steps)  # None: every step is every member's
    vals = val()
    (start, compiled_before), now, compiled = team.since, time.perf_counter(), compile_seconds()
    seconds = (now - start - (compiled - compiled_before)) / len(epochs)  # compiles timed apart
    rate = len(live) * steps * opts.batch_size / max(seconds, 1e-12)
    for i, epoch in enumerate(epochs):
        for s, m in live:
            own = slice(None) if active is None else active[s, i]  # the member's own steps of the epoch
            m_i, finite_i = {k: v[s, i][own] for k, v in metrics.items()}, finite[s, i][own]
            if m.status != "training":
                continue
            first_step = epoch * m.run.steps_per_epoch  # the member's global step: its own steps per epoch
            if not finite_i.all() and not opts.skip_nonfinite:
                m.fail(m_i, finite_i, first_step)
                continue
            record = epoch_record(epoch, first_step + m.run.steps_per_epoch, m_i, finite_i,
                                  {k: v[s] for k, v in vals.get(i, {}).items()}, skip_nonfinite=opts.skip_nonfinite)
            m.writer.write(record, extra_scalars={"perf/examples_per_s": rate})
            if team.on_record is not None:
                team.on_record(team.offset + team.members.index(m), record)
        alive = [s for s, m in live if m.status == "training"]
        bar.set_postfix(loss=f"{np.mean(metrics['loss'][alive, i]) if alive else float('nan'):.4g}",
                        val_mse=f"{np.mean(vals[i]['mse'][alive]) if i in vals and alive else float('nan'):.4g}",
                        ex_s=f"{rate:,.0f}", refresh=False)
        bar.update(1)
    team.calls.append((len(epochs), seconds, compiled - compiled_before))
    team.since, team.last_val = (now, compiled), vals.get(len(epochs) - 1, {})
    if (len(team.calls) == 2 and not opts.epochs_per_call and isinstance(team.feed, DeviceEpochs)
            and team.feed.rows is None):
        team.per_call = agree(_call_length(seconds, left=until - team.epoch, first_compile=team.calls[0][2]))


def _call_length(seconds_per_epoch: float, *, left: int, first_compile: float) -> int:
    """train.epochs_per_call=0: from the second call's time, as many epochs per call as fill about `CALL_SECONDS`
    (at most `MAX_EPOCHS_PER_CALL`) when at least two such calls are left and the run trains on for at least
    `COMPILE_PAYBACK` times the first call's compile (the long program compiles about as long); else 1."""
    per_call = min(MAX_EPOCHS_PER_CALL, int(CALL_SECONDS / max(seconds_per_epoch, 1e-9)))
    if per_call > 1 and left >= 2 * per_call and left * seconds_per_epoch >= COMPILE_PAYBACK * first_compile:
        return per_call
    return 1


def _save(team: _Team, epoch: int, which: Sequence[_Member] | None = None) -> None:
    """Checkpoints of the live members (or of `which`) at `epoch`, each once."""
    slots = [(s, m) for s, m in team.live() if (which is None or m in which) and m.saved_epoch != epoch]
    state = team.pop.fetch(team.pop.state) if slots else None
    for s, m in slots:
        m.writer.sync()  # the records up to the checkpoint on disk first
        m.checkpointer.save(epoch, m.run.checkpoint_tree(Population.member(state, s), epoch))
        m.saved_epoch = epoch


def _decide(teams: list[_Team], scheduler: Scheduler, end: int) -> None:
    """The scheduler's one decision over every population's ranked members (one that failed since the last decision
    ranks with NaN), applied to each population; every live member is saved at `end`, then the decision recorded."""
    ranked = [(t, t.pop.first_slots()[t.members.index(m)], m) for t in teams for m in t.ranked]
    val = {f"val/{k}": np.array([t.last_val[k][s] if m.status == "training" and k in t.last_val else np.nan
                                 for t, s, m in ranked]) for k in sorted({k for t in teams for k in t.last_val})}
    ids = [t.offset + t.members.index(m) for t, _, m in ranked]
    decision = scheduler.decide(end, ids, val)
    named = set(decision.keep) | set(decision.copy_from) | set(decision.copy_from.values()) | set(decision.hp)
    if not named <= set(ids):
        raise ValueError(f"the scheduler named members {sorted(named - set(ids))} that were not ranked ({ids}).")
    for team in teams:
        local = {team.offset + i: i for i in range(len(team.members))}
        stopped = [(s, m) for s, m in team.live() if team.offset + team.members.index(m) not in decision.keep]
        _save(team, end, [m for _, m in stopped])
        summarize(team, stopped, status="stopped")
        kept = sorted(local[r] for r in decision.keep if r in local and team.members[local[r]].status == "training")
        hp = {local[r]: h for r, h in decision.hp.items() if r in local}
        for r, h in hp.items():  # a member's config.json says the hp it trains with from here on
            m = team.members[r]
            m.run = dataclasses.replace(m.run, config=resolve_config(m.run.config, {f"hp.{k}": float(v)
                                                                                     for k, v in h.items()}))
            if is_primary():
                write_atomically(os.path.join(m.workdir, "config.json"), config_to_json(m.run.config))
        if kept:
            team.pop.regroup(kept, {local[a]: local[b] for a, b in decision.copy_from.items() if a in local}, hp)
            team.feed.update(team.pop.hp, team.pop.keys["data"], team.pop.keys["loop"], team.pop.keys["eval"],
                             *([(*team.pop.rows, team.scan_steps)] if team.pop.rows is not None else []))
        if getattr(scheduler, "save_at_decisions", True):  # a resumed search finds every member at `end`
            _save(team, end)
        team.ranked = []
        for m in team.members:
            m.checkpointer.wait()
    scheduler.commit(end)


def _stop(teams: list[_Team], signum: int) -> None:
    """After a stop signal: every live member's newest state saved, then StopRequested naming where."""
    for team in teams:
        _save(team, team.epoch)
        for m in team.members:
            m.checkpointer.wait()
    live = [m.checkpointer.directory for t in teams for _, m in t.live()]
    where = live[0] if len(live) == 1 else f"each run's checkpoints/ ({len(live)} runs)"
    raise StopRequested(f"stopped by signal {signum} after epoch {max(t.epoch for t in teams)}; its checkpoint is in "
                        f"{where}; run the same command to resume.")


# -- entry points, summaries, records --------------------------------------------------------------

def train_populations(groups: Sequence[tuple[Sequence[RunSetup], Sequence[str]]], *, runs_axis: bool | None = None,
                      scheduler: Scheduler | None = None, extend: bool = False, parent_tracker: Any = None,
                      progress: bool | None = None, figures: FigureHook | None = None, until: int | None = None,
                      planned: Sequence[int] | None = None, extensions: Sequence[dict | None] | None = None
                      ) -> list[list[dict]]:
    """Trains populations `groups` ((runs of one structure, their workdirs) each) together, a `scheduler` deciding
    over all their members at once; see `train_population` for the arguments. `planned` caps each population's
    width (its size as planned, finished members included); `extensions`, one per member in order, say that the
    caller already applied the run-identity rule (`check_run_identity`'s results)."""
    members = [[_Member(run, w) for run, w in zip(runs, workdirs)] for runs, workdirs in groups]
    flat = [m for group in members for m in group]
    lead = flat[0].run
    vmapped = Population.run_axis(runs_axis, len(flat))
    wall_start = time.perf_counter()
    with contextlib.ExitStack() as cleanup:
        for m in flat:
            if is_primary():
                cleanup.enter_context(workdir_lock(m.workdir))
            os.makedirs(m.workdir, exist_ok=True)
        if extensions is None:  # every workdir checked before any is written
            extensions = [check_run_identity(m.run.config, m.workdir, extend=extend) for m in flat]
        for m, extension in zip(flat, extensions):
            m.start(extension, parent_tracker)
            cleanup.callback(m.close)
        offsets = np.cumsum([0, *map(len, members)])
        teams = [_build_team(group, *restore_members(group), vmapped=vmapped, offset=int(offsets[i]),
                             planned=planned[i] if planned else len(group), figures=figures, wall_start=wall_start,
                             on_record=getattr(scheduler, "on_record", None)) for i, group in enumerate(members)]
        until = min(until or lead.train.epochs, lead.train.epochs)
        try:
            train(teams, scheduler=scheduler, until=until,
                  progress=lead.train.progress if progress is None else progress)
        except BaseException as e:
            killed = isinstance(e, (KeyboardInterrupt, SystemExit, StopRequested))
            for m in flat:
                if m.tracker is not None and m.status == "training":
                    m.tracker.finish("KILLED" if killed else "FAILED")
            raise
        for team in teams:
            summarize(team, team.live(), status="done" if until == lead.train.epochs else "paused")
    return [[m.summary for m in group] for group in members]


def train_population(runs: Sequence[RunSetup], workdirs: Sequence[str], **options) -> list[dict]:
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
      planned, extensions: as for `train_populations`, for the one population.
    Returns:
      Each member's summary (flat split/metric keys, "status", "params" and "model" added), or
      {"failed": NonFiniteError} for a member whose loss went non-finite (failed.json says so too).
    Raises StopRequested after SIGTERM/SIGINT (every live member's checkpoint saved first).
    """
    planned = options.pop("planned", None)
    return train_populations([(runs, workdirs)], planned=None if planned is None else [planned], **options)[0]


def summarize(team: _Team, slots: list[tuple[int, _Member]], *, status: str) -> None:
    """Evaluates every split for the members at `slots` and writes their summaries."""
    if not slots:
        return
    for _, m in slots:
        m.checkpointer.wait()
    pop, keys = team.pop, team.pop.fold_eval_key(10**6)  # the final evaluation's keys
    terms = {split: _evaluate(team, split, keys)() for split in team.splits}
    params, steps = pop.fetch(pop.state["params"]), pop.fetch(pop.state["step"])
    times = [t for n, t, _ in team.calls[1:] or team.calls for _ in range(n)]  # the first call warms up: left out
    for s, m in slots:
        m.summary = write_summary(
            m.run, Population.member(params, s), m.workdir, status=status, epochs=team.epoch,
            split_terms={split: {k: v[s] for k, v in t.items()} for split, t in terms.items()}, steps=int(steps[s]),
            epoch_times=times, figures=team.figures, wall_time_s=time.perf_counter() - team.wall_start)
        m.status = status
        if m.tracker is not None:
            log_training_end(m.tracker, m.workdir, m.summary, step=int(m.summary["steps"]))


def epoch_record(epoch: int, step: int, metrics, finite, val, *, skip_nonfinite: bool) -> dict[str, Any]:
    """One metrics.jsonl line: train/* means over the epoch's finite steps, val/* means."""
    record = {"epoch": epoch + 1, "step": step}
    record.update({f"train/{k}": float(np.mean(v[finite])) if finite.any() else float("nan")
                   for k, v in metrics.items()})
    if skip_nonfinite:
        record["train/skipped_steps"] = int((~finite).sum())
    record.update({f"val/{k}": float(v) for k, v in val.items()})
    return record


def write_summary(run: RunSetup, params, workdir: str, *, split_terms: dict[str, dict], status: str, epochs: int,
                  steps: int, epoch_times: list[float], wall_time_s: float, figures: FigureHook | None) -> dict:
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
    summary.update({"status": status, "epochs": epochs, "steps": steps,
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


class _SignalFlag:
    """Turns SIGTERM/SIGINT into a flag checked between device calls (a second signal interrupts at once)."""

    signum: int | None = None

    def __enter__(self):
        main = threading.current_thread() is threading.main_thread()
        self._old = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT) if main}
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def requested(self) -> bool:
        """A signal came (with several processes: to process 0; they all stop at the same call)."""
        self.signum = agree(self.signum or 0) or None
        return self.signum is not None

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


__all__ = ["Cadence", "Decision", "NOT_IDENTITY", "Scheduler", "StopRequested", "check_run_identity",
           "epoch_record", "finished_status", "max_members", "restore_members", "train", "train_population",
           "train_populations", "workdir_lock", "write_summary"]
