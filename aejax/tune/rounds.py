"""Optuna as the population's sampler: `aejax sweep EXP --sampler tpe|cmaes|gp|nsga2 --sample N --rounds R`.

Each batch asks the study for N points (with its batch-friendly settings: TPE's constant liar, CMA-ES's and
NSGA-II's population of N), trains them as one population with `run_sweep(points=...)` in its own sweep
workdir (DIR/batches/BBBB/, BBBB the batch's first trial number: runs, sweep.json, search.json, results),
and tells the study every member's result: the `--select` metric(s) at its last validated epoch (the mean
over `--seeds` when a point has several), `TrialState.FAIL` for a member that went non-finite, and, for a
member that `--scheduler halving` stopped at a rung, its values at the rungs as intermediate values and
`TrialState.PRUNED`. The study asks for R batches of N in all (R x N trials), whoever trains them.

The study lives in Optuna's storage (`--storage URL`; default sqlite:///DIR/study.db). Every trial carries
its run ids, workdirs, batch and worker (host:pid) as user attributes, so the study says who trains what.
Several processes running the same command on one study split its batches: each asks for its own batch
under a lock file in DIR (asking and labelling are atomic on one machine), so every trial is trained once.
A killed search resumed with the same command continues the same study: the RUNNING trials of a dead worker
on this host are taken over batch by batch, and their run ids in the batch's workdir resume from their
checkpoints; a finished member is not trained again.

Every batch seeds its sampler with (the config's seed, the batch's first trial number), so a batch's
random draws do not depend on which process asked for it: with TPE inside its random start-up
(`n_startup_trials`, 10) two processes draw exactly the points one process draws. An adaptive sampler's
later proposals depend on the results it has seen when it is asked, and so on the interleaving.

Several `--select` metrics make a multi-objective study: results.md lists the Pareto front of the complete
trials and figures/pareto.png draws it; NSGA-II (`--sampler nsga2`) is the natural sampler, TPE and GP take
several objectives too, CMA-ES does not.

References: Akiba et al. 2019, "Optuna: A Next-generation Hyperparameter Optimization Framework";
Bergstra et al. 2011 (TPE); Hansen 2016, "The CMA Evolution Strategy: A Tutorial"; Deb et al. 2002 (NSGA-II).
"""

from __future__ import annotations

import ast
import contextlib
import csv
import dataclasses
import difflib
import json
import math
import os
import socket
from typing import Any, Sequence

from aejax.config import get_experiment_config
from aejax.errors import ConfigError
from aejax.sweep import results as res
from aejax.sweep.space import SAMPLERS, Choice, Range, parse_space
from aejax.sweep.spec import expand, run_ids

TUNERS = ("tpe", "cmaes", "gp", "nsga2")
INSTALL = 'pip install "aejax[tune]"'
_PLAIN = (bool, int, float, str, type(None))  # what an Optuna categorical holds as is


def require_optuna(what: str = "an Optuna sampler"):
    """The optuna module, or a one-line ConfigError saying what to install."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(f"{what} needs Optuna, which is not installed: {INSTALL} (or pip install optuna).") from None
    return optuna


def check_sampler(name: str) -> None:
    """One of aejax's own samplers or an Optuna one, else one line with a "did you mean"."""
    if name in SAMPLERS or name in TUNERS:
        return
    close = difflib.get_close_matches(str(name), SAMPLERS + TUNERS, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"choose one of {list(SAMPLERS + TUNERS)}."
    raise ConfigError(f"unknown sampler {name!r}; {hint}")


# -- the space as Optuna distributions -------------------------------------------------------------

def optuna_distributions(space) -> dict[str, Any]:
    """aejax's distributions as Optuna's: uniform -> FloatDistribution, loguniform -> log=True, intuniform /
    intloguniform -> IntDistribution (log=True for the latter), choice -> CategoricalDistribution (a literal
    Optuna cannot store, e.g. a tuple, by its repr)."""
    optuna = require_optuna()
    d = optuna.distributions
    out = {}
    for key, dist in parse_space(space).items():
        if isinstance(dist, Range):
            out[key] = (d.IntDistribution if dist.integer else d.FloatDistribution)(dist.low, dist.high, log=dist.log)
        elif isinstance(dist, Choice):
            out[key] = d.CategoricalDistribution([v if isinstance(v, _PLAIN) else repr(v) for v in dist.values])
        else:  # pragma: no cover - parse_space knows these five
            raise ConfigError(f"{key}: {dist} has no Optuna counterpart.")
    return out


def point_of(params: dict[str, Any], space) -> dict[str, Any]:
    """A trial's params as a sweep point (choices stored by repr read back as their literal), keys sorted."""
    space = parse_space(space)
    point = {}
    for key in sorted(params):
        value = params[key]
        dist = space.get(key)
        if isinstance(dist, Choice) and value not in dist.values and isinstance(value, str):
            value = ast.literal_eval(value)
        point[key] = value
    return point


# -- options ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TunerOptions:
    """`--sampler NAME --sample N --rounds R --storage URL --study-name NAME` and the objectives (`--select`)."""

    sampler: str
    sample: int
    rounds: int = 1
    selects: tuple[str, ...] = ("val/mse",)
    storage: str | None = None
    study_name: str | None = None

    def check(self) -> None:
        check_sampler(self.sampler)
        if self.sampler not in TUNERS:
            raise ConfigError(f"{self.sampler!r} is aejax's own sampler, not an Optuna one ({list(TUNERS)}).")
        if isinstance(self.sample, bool) or not isinstance(self.sample, int) or self.sample < 1:
            raise ConfigError(f"--sample N (the points of each batch) must be a positive integer, got {self.sample!r}.")
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 1:
            raise ConfigError(f"--rounds must be a positive integer, got {self.rounds!r}.")
        for select in self.selects:
            metric, _ = res.parse_select(select)
            if not metric.startswith("val/"):
                raise ConfigError(f"Optuna is told the validation metrics: --select must name val/* metrics, got "
                                  f"{select!r}.")
        if len(set(res.parse_select(s)[0] for s in self.selects)) < len(self.selects):
            raise ConfigError(f"--select names one metric twice: {list(self.selects)}.")
        if self.sampler == "cmaes" and len(self.selects) > 1:
            raise ConfigError("CMA-ES optimizes one objective; several --select metrics need --sampler nsga2 (or tpe, "
                              "gp).")

    @property
    def directions(self) -> list[str]:
        return ["minimize" if res.parse_select(s)[1] else "maximize" for s in self.selects]

    @property
    def metrics(self) -> list[str]:
        return [res.parse_select(s)[0] for s in self.selects]


# what Optuna's samplers import beyond optuna itself (not in aejax[tune]: CMA-ES's is small, GP's is PyTorch)
SAMPLER_NEEDS = {"cmaes": "cmaes", "gp": "torch"}


def check_sampler_needs(name: str) -> None:
    """A one-line ConfigError when the Optuna sampler `name` needs a package that is not installed."""
    import importlib.util

    module = SAMPLER_NEEDS.get(name)
    if module is not None and importlib.util.find_spec(module) is None:
        raise ConfigError(f"Optuna's {name} sampler needs the {module} package, which is not installed: pip install "
                          f"{module}.")


def make_sampler(name: str, *, seed: int, batch: int, objectives: int):
    """The Optuna sampler of one batch, with its batch-friendly settings."""
    optuna = require_optuna()
    check_sampler_needs(name)
    s = optuna.samplers
    if name == "tpe":  # the constant liar: the batch's RUNNING trials count as bad ones, so its asks spread out
        return s.TPESampler(seed=seed, constant_liar=True)
    if name == "cmaes":  # one batch is one generation
        return s.CmaEsSampler(seed=seed, popsize=max(batch, 2), independent_sampler=s.RandomSampler(seed=seed))
    if name == "gp":
        return s.GPSampler(seed=seed, independent_sampler=s.RandomSampler(seed=seed))
    if name == "nsga2":  # one batch is one generation
        return s.NSGAIISampler(seed=seed, population_size=max(batch, 2))
    raise ConfigError(f"unknown Optuna sampler {name!r}; choose one of {list(TUNERS)}.")


def batch_seed(seed: int, first_trial: int) -> int:
    """The seed of the batch whose first trial is `first_trial`: equal whichever process asks for it."""
    return (int(seed) * 1_000_003 + int(first_trial)) % (2**31 - 1)


# -- the study in its storage ----------------------------------------------------------------------

def default_storage(workdir: str) -> str:
    return "sqlite:///" + os.path.abspath(os.path.join(workdir, "study.db"))


def _storage(url: str):
    optuna = require_optuna()
    if url.startswith("sqlite:"):  # several processes on one file: wait for the lock instead of failing
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return url


@contextlib.contextmanager
def _ask_lock(workdir: str):
    """An exclusive lock on DIR/study.lock while a process asks for (or takes over) a batch."""
    import fcntl

    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "study.lock"), "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead(worker: str | None) -> bool:
    """A worker of this host whose process is gone (a worker of another host is never taken for dead)."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def open_study(workdir: str, options: TunerOptions, identity: dict, *, sampler=None):
    """Creates or loads the study; a study of another search (experiment, settings, space, objectives) is
    refused in one line."""
    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = options.storage or default_storage(workdir)
    name = options.study_name or os.path.basename(os.path.abspath(workdir))
    os.makedirs(workdir, exist_ok=True)
    study = optuna.create_study(storage=_storage(url), study_name=name, load_if_exists=True, sampler=sampler,
                                directions=options.directions)
    saved = study.user_attrs.get("aejax")
    if saved is None:
        study.set_user_attr("aejax", identity)
    elif saved != identity:
        changed = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
        raise ConfigError(f"the study {name!r} in {url} belongs to another search (it differs in {changed}); use "
                          "a new --workdir or --study-name.")
    return study


def create_study(workdir: str, options: TunerOptions, identity: dict):
    """`open_study` under the workdir's lock: processes that start together on one new SQLite study would
    otherwise create its tables and the study at once (IntegrityError, "table already exists")."""
    with _ask_lock(workdir):
        return open_study(workdir, options, identity)


# -- one batch: ask, train, tell -------------------------------------------------------------------

def _last_values(workdir: str, metrics: Sequence[str]) -> tuple[dict[str, float], dict[int, dict[str, float]]]:
    """The member's last validated value of each metric, and {epoch: {metric: value}} of every validated epoch."""
    from aejax.train.metrics import read_metrics

    by_epoch: dict[int, dict[str, float]] = {}
    for record in read_metrics(os.path.join(workdir, "metrics.jsonl")):
        if all(isinstance(record.get(m), (int, float)) for m in metrics):
            by_epoch[int(record["epoch"])] = {m: float(record[m]) for m in metrics}
    last = by_epoch[max(by_epoch)] if by_epoch else {m: float("nan") for m in metrics}
    return last, by_epoch


def tell_trial(study, trial_id: int, workdirs: Sequence[str], options: TunerOptions) -> str:
    """Tells the study a trial's result from its members' workdirs; returns the state told ("complete",
    "pruned" or "fail"). `trial_id` is the storage's id (`Trial._trial_id`, what `optuna.trial.Trial` takes)."""
    optuna = require_optuna()
    State = optuna.trial.TrialState
    trial = optuna.trial.Trial(study, trial_id)
    members = [res.read_run(w) for w in workdirs]
    statuses = [m["status"] for m in members]
    if any(s == "failed" for s in statuses) or not all(s in ("done", "stopped") for s in statuses):
        errors = [m.get("error", m["status"]) for m in members if m["status"] != "done"]
        trial.set_user_attr("error", "; ".join(str(e) for e in errors)[:500])
        study.tell(trial, state=State.FAIL)
        return "fail"
    metrics = options.metrics
    lasts, epochs = zip(*(_last_values(w, metrics) for w in workdirs))
    values = [float(sum(last[m] for last in lasts) / len(lasts)) for m in metrics]
    if len(metrics) == 1:  # intermediate values (a multi-objective study takes none): the mean over the seeds
        shared = sorted(set.intersection(*(set(e) for e in epochs)))
        for epoch in shared:
            trial.report(sum(e[epoch][metrics[0]] for e in epochs) / len(epochs), epoch)
    if "stopped" in statuses:
        trial.set_user_attr("stopped_at", max(m.get("epochs", 0) for m in members))
        study.tell(trial, state=State.PRUNED)
        return "pruned"
    if not all(math.isfinite(v) for v in values):
        trial.set_user_attr("error", f"non-finite {dict(zip(metrics, values))}")
        study.tell(trial, state=State.FAIL)
        return "fail"
    study.tell(trial, values if len(values) > 1 else values[0])
    return "complete"


def _batch_members(points: Sequence[dict], seeds: int | None, batch_dir: str) -> list[tuple[list[str], list[str]]]:
    """For each point of a batch, its members' run ids and workdirs (run_sweep's ids: the points crossed with
    the seeds, point-major)."""
    expanded = expand(None, seeds=seeds, sampled=points)
    ids = run_ids(expanded)
    per = len(expanded) // len(points)
    return [(ids[i * per:(i + 1) * per], [os.path.join(batch_dir, "runs", r) for r in ids[i * per:(i + 1) * per]])
            for i in range(len(points))]


def run_tuner(experiment: str, workdir: str, options: TunerOptions, *, space: dict, overrides: dict | None = None,
              seeds: int | None = None, search=None, progress: bool = True, figures=None,
              max_parallel: int | None = None, train_batch=None) -> dict[str, Any]:
    """Asks the study for batches of `options.sample` points until it holds `sample * rounds` trials (taking
    over the batches a dead worker of this host left RUNNING first), trains each as one population and tells
    the study; then writes DIR/results.csv, results.md (with the Pareto front for several objectives) and
    figures/pareto.png. Returns {"trials": rows, "best": row or None, "front": rows, "ran": trials trained
    here, "batches": batch names trained here, "results_md": path, ...}.

    `train_batch(batch_dir, points)` trains one batch (default: `aejax.sweep.run_sweep`, the figures given).
    """
    options.check()
    optuna = require_optuna()
    check_sampler_needs(options.sampler)  # before anything is written
    State = optuna.trial.TrialState
    overrides = dict(overrides or {})
    if search is not None:
        if len(options.selects) > 1:
            raise ConfigError(f"--scheduler {search.scheduler} ranks members on one metric; several --select "
                              "objectives need a search without --scheduler (the Pareto front is of finished runs).")
        if search.scheduler != "halving":
            raise ConfigError("population-based training changes a member's hp while it trains, so no Optuna trial "
                              "describes it; use --scheduler halving with an Optuna sampler, or none.")
    distributions = optuna_distributions(space)
    if not distributions:
        raise ConfigError("the search space is empty; give --space KEY=DIST or define space() in the experiment file.")
    seed = int(overrides.get("seed", get_experiment_config(experiment, {}).seed))
    budget = options.sample * options.rounds
    identity = json.loads(json.dumps({
        "experiment": experiment, "overrides": {k: overrides[k] for k in sorted(overrides)}, "seeds": seeds,
        "space": {k: str(v) for k, v in sorted(parse_space(space).items())}, "select": list(options.selects),
        "sampler": options.sampler, "sample": options.sample, "rounds": options.rounds,
        "scheduler": None if search is None else dataclasses.asdict(search)}, default=repr))
    if train_batch is None:
        from aejax.sweep.runner import run_sweep

        def train_batch(batch_dir, points):
            return run_sweep(experiment, batch_dir, overrides=overrides, points=points, seeds=seeds,
                             select=options.selects[0], search=search, progress=progress, figures=figures,
                             max_parallel=max_parallel)

    me = worker_id()
    create_study(workdir, options, identity)  # created (or checked) before anything else
    ran, batches = 0, []
    while True:
        with _ask_lock(workdir):
            study = open_study(workdir, options, identity)
            trials = study.get_trials(deepcopy=False)
            for t in trials:  # asked, but killed before it was labelled (asking is under this lock)
                if t.state == State.RUNNING and "batch" not in t.user_attrs:
                    study.tell(t.number, state=State.FAIL)
            stale = sorted({t.user_attrs["batch"] for t in trials if t.state == State.RUNNING
                            and "batch" in t.user_attrs and _dead(t.user_attrs.get("worker"))})
            if stale:  # a dead worker's batch: its trials, in order, are this process's now
                name = stale[0]
                numbers = [t.number for t in trials if t.user_attrs.get("batch") == name]
                todo = {t.number: t._trial_id for t in trials
                        if t.user_attrs.get("batch") == name and t.state == State.RUNNING}
                for trial_id in todo.values():
                    optuna.trial.Trial(study, trial_id).set_user_attr("worker", me)
                points = [point_of(t.params, space) for t in sorted(trials, key=lambda t: t.number)
                          if t.number in numbers]
            else:
                first = len(trials)
                if first >= budget:
                    break
                size = min(options.sample, budget - first)
                study = open_study(workdir, options, identity, sampler=make_sampler(
                    options.sampler, seed=batch_seed(seed, first), batch=options.sample,
                    objectives=len(options.selects)))
                name = f"{first:04d}"
                asked = [study.ask(distributions) for _ in range(size)]
                points = [point_of(t.params, space) for t in asked]
                batch_dir = os.path.join(workdir, "batches", name)
                for t, (ids, dirs) in zip(asked, _batch_members(points, seeds, batch_dir)):
                    for key, value in (("batch", name), ("worker", me), ("run_ids", ids), ("workdirs", dirs)):
                        t.set_user_attr(key, value)
                    if len(ids) == 1:
                        t.set_user_attr("run_id", ids[0])
                        t.set_user_attr("workdir", dirs[0])
                numbers = [t.number for t in asked]
                todo = {t.number: t._trial_id for t in asked}
        batch_dir = os.path.join(workdir, "batches", name)
        train_batch(batch_dir, points)
        members = dict(zip(numbers, _batch_members(points, seeds, batch_dir)))
        for number, trial_id in todo.items():
            tell_trial(study, trial_id, members[number][1], options)
        ran += len(todo)
        batches.append(name)
    return write_study_results(workdir, study, options) | {"ran": ran, "batches": batches, "budget": budget}


# -- results: the trials, the best one, the Pareto front -------------------------------------------

def pareto_front(rows: Sequence[dict], metrics: Sequence[str], lower: Sequence[bool]) -> list[dict]:
    """The rows that no other row dominates (as good in every metric and better in one), in input order."""
    def key(row):
        return [row[m] if lo else -row[m] for m, lo in zip(metrics, lower)]

    scored = [(row, key(row)) for row in rows]
    front = []
    for row, k in scored:
        dominated = any(all(a <= b for a, b in zip(o, k)) and any(a < b for a, b in zip(o, k))
                        for _, o in scored)
        if not dominated:
            front.append(row)
    return front


_STATES = {"COMPLETE": "done", "PRUNED": "stopped", "FAIL": "failed", "RUNNING": "pending", "WAITING": "pending"}


def study_rows(study, options: TunerOptions) -> list[dict]:
    """One row per trial: number, status (done, stopped: pruned, failed, pending), batch, run ids, the point,
    the told values, the worker."""
    metrics = options.metrics
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {"trial": t.number, "status": _STATES.get(t.state.name, t.state.name.lower()),
               "batch": t.user_attrs.get("batch", ""), "run_id": ",".join(t.user_attrs.get("run_ids", [])),
               **{k: t.params[k] for k in sorted(t.params)}}
        if t.values is not None:
            row.update(dict(zip(metrics, t.values)))
        elif t.state.name == "PRUNED" and t.intermediate_values and len(metrics) == 1:
            row[metrics[0]] = t.intermediate_values[max(t.intermediate_values)]
        row["stopped_at"] = t.user_attrs.get("stopped_at", "")
        row["worker"] = t.user_attrs.get("worker", "")
        rows.append(row)
    return rows


def write_study_results(workdir: str, study, options: TunerOptions) -> dict[str, Any]:
    """DIR/results.csv and results.md of the study's trials (the best one, or the Pareto front of the complete
    trials for several objectives), and figures/pareto.png for several objectives."""
    rows = study_rows(study, options)
    metrics = options.metrics
    lower = [res.parse_select(s)[1] for s in options.selects]
    done = [r for r in rows if r["status"] == "done" and all(isinstance(r.get(m), float) and math.isfinite(r[m])
                                                               for m in metrics)]
    front = pareto_front(done, metrics, lower) if len(metrics) > 1 else []
    best = res.best_run(rows, options.selects[0]) if len(metrics) == 1 else None
    keys = sorted({k for r in rows for k in r} - {"trial", "status", "batch", "run_id", "stopped_at", "worker",
                                                   *metrics})
    columns = ["trial", "status", "batch", "run_id", *keys, *metrics, "stopped_at", "worker"]
    csv_path, md_path = os.path.join(workdir, "results.csv"), os.path.join(workdir, "results.md")

    def md_table(table_rows):
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_md(r.get(c, "")) for c in columns) + " |" for r in table_rows]
        return "\n".join(lines) + "\n"

    with open(csv_path + ".tmp", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    os.replace(csv_path + ".tmp", csv_path)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "stopped", "failed", "pending")}
    text = [f"# {study.study_name}: {len(rows)} trials ({options.sampler}, objectives "
            f"{', '.join(options.selects)})\n",
            f"{counts['done']} complete, {counts['stopped']} pruned, {counts['failed']} failed, {counts['pending']} "
            "running. A trial's members train in DIR/batches/BATCH/runs/RUN_ID.\n"]
    figures = []
    if len(metrics) > 1:
        text += [f"\n## Pareto front ({len(front)} of {len(done)} complete trials)\n\n", md_table(front)]
        if done:
            figures.append(pareto_figure(done, front, metrics, workdir))
            text.append(f"\n![Pareto front](figures/{os.path.basename(figures[-1])})\n")
    elif best is not None:
        text += [f"\n## Best by {options.selects[0]}: trial {best['trial']}\n\n", md_table([best])]
    text += ["\n## Trials\n\n", md_table(rows)]
    with open(md_path + ".tmp", "w", encoding="utf-8") as f:
        f.write("".join(text))
    os.replace(md_path + ".tmp", md_path)
    return {"trials": rows, "rows": rows, "best": best, "front": front, "select": options.selects[0],
            "results_csv": csv_path, "results_md": md_path, "figures": figures}


def _md(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def pareto_figure(done: Sequence[dict], front: Sequence[dict], metrics: Sequence[str], workdir: str) -> str:
    """DIR/figures/pareto.png: the complete trials on the first two objectives, the front joined and marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = metrics[0], metrics[1]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter([r[x] for r in done], [r[y] for r in done], s=14, color="0.6", label="complete trials")
    pts = sorted((r[x], r[y]) for r in front)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color="C3", ms=5, label=f"Pareto front ({len(front)})")
    ax.set(xlabel=x, ylabel=y, title="Pareto front" + (f" (first two of {len(metrics)} objectives)"
                                                       if len(metrics) > 2 else ""))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.join(workdir, "figures"), exist_ok=True)
    path = os.path.join(workdir, "figures", "pareto.png")
    fig.savefig(path + ".tmp.png", dpi=90)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)
    return path


__all__ = ["TUNERS", "TunerOptions", "batch_seed", "check_sampler", "make_sampler", "optuna_distributions",
           "pareto_front", "point_of", "require_optuna", "run_tuner", "study_rows", "tell_trial",
           "write_study_results"]
