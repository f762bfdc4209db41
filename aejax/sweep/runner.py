"""`run_sweep`: expand, group, train each group as a population, skip what is done, write the results.

A run's structure is its resolved config without `hp` and `seed`; runs of equal structure form a
group that trains as one population in the one training loop (`aejax.train.loop`: the single run's
programs vmapped over a run axis), in chunks of at most `max_parallel` members. Everything in `hp`
(learning rate included) and the seed vary within a group, and so do the optimizer's continuous
values (`aejax.train.optim.INJECTABLE`), carried as arrays in the optimizer state when the members
differ in them. Any other difference (code size, net, kind, batch size, epochs, schedule, whether
clipping or decay is on at all) makes a separate group. A search (`aejax.sweep.search`) trains every
population of the sweep together and decides over all their members at once.

A sweep's workdir holds sweep.json (the experiment, the settings shared by every run, and every
run ever planned there) and DIR/runs/<run-id>/ as `aejax train` writes it. The rule: the results
table covers every run in sweep.json; a re-run may add points, but another experiment or other
shared settings are refused before anything is written (every run's configuration is checked and
built first); a finished run (the run-identity rule) is skipped, an unfinished one resumes from its
checkpoints. The experiment file is executed once, each run's identity checked once.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from typing import Any, Sequence

import jax
import ml_collections

from aejax.config import experiment_config, load_experiment, resolve_config
from aejax.errors import ConfigError
from aejax.models.common import as_hp
from aejax.sweep.results import collect_results, parse_select, read_json
from aejax.sweep.search import Halving, PopulationBasedTraining, SearchOptions, SearchState, next_after
from aejax.sweep.space import explorable_keys, parse_space, sample_points
from aejax.sweep.spec import expand, run_ids, shard_slice
from aejax.train.distributed import agree, barrier, is_primary
from aejax.train.loop import NOT_IDENTITY, check_run_identity, finished_status, max_members, train_populations
from aejax.train.metrics import progress_bar, write_atomically
from aejax.train.optim import INJECTABLE, optimizer_structure
from aejax.data.subsets import SUBSET_KEYS

PARALLEL = ("vmap", "sequential")


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    run_id: str
    point: dict
    config: ml_collections.ConfigDict
    workdir: str

    @property
    def structure(self) -> str:
        """The config without hp, seed, the injectable optimizer values (only which optional optimizer parts are
        present counts), how runs are shown and fed and which rows they see: equal for runs that share a program."""
        tree = self.config.to_dict()
        tree.pop("hp"), tree.pop("seed")
        optim = tree["optim"]
        tree["optim_structure"] = optimizer_structure(optim["name"], grad_clip=optim["grad_clip"],
                                                      weight_decay=optim.get("weight_decay", 0.0),
                                                      momentum=optim.get("momentum", 0.0))
        for key in [*(f"optim.{k}" for k in INJECTABLE), *NOT_IDENTITY, *(f"data.{k}" for k in SUBSET_KEYS)]:
            section, name = key.split(".")
            tree[section].pop(name, None)
        return json.dumps(tree, sort_keys=True, default=str)


def program_groups(group: Sequence[PlannedRun], setups: dict) -> list[list[PlannedRun]]:
    """A group of one structure, split where its built runs cannot share a program: runs that see subsets (index
    tables) and runs that see every row, other arrays (a standardized dataset restricted to a class), or another
    model (a duration such as a KL warm-up counted in the run's own steps; the optimizer's schedule lengths of
    runs that see subsets travel as arrays in the optimizer state instead)."""
    def key(s):
        return (id(s.dataset), None) if s.rows is None else (id(s.whole), s.model)

    built = [key(setups[r.run_id]) for r in group if r.run_id in setups]
    parts: dict[Any, list[PlannedRun]] = {}
    for r in group:  # a run with nothing left to train counts in the first part's planned size, as before
        parts.setdefault(key(setups[r.run_id]) if r.run_id in setups else built[0] if built else None, []).append(r)
    return list(parts.values())


def plan_sweep(experiment: str, workdir: str, *, overrides: dict | None = None, grid: Sequence[str] = (),
               seeds: int | None = None, points: Sequence[dict] | None = None, module=None,
               folds: int | None = None) -> list[PlannedRun]:
    """Every run of the sweep, in group order (runs of one structure together, first appearance first); `points`
    (e.g. sampled) replace the file's `sweep()` as `--grid` does; `module`: the experiment file already loaded."""
    module = module or load_experiment(experiment)
    replaced = grid or seeds or points is not None
    file_points = module.sweep() if callable(getattr(module, "sweep", None)) and not replaced else None
    points = expand(file_points, grid=grid, seeds=seeds, sampled=points, folds=folds)
    overrides = {k: v for k, v in (overrides or {}).items() if k != "train.progress"}  # the sweep shows one bar
    base, runs = experiment_config(experiment, module), []
    for run_id, point in zip(run_ids(points), points):
        clash = sorted(set(point) & set(overrides))
        if clash:
            raise ConfigError(f"{clash} are both swept and set with --set; keep each key in one place.")
        config = resolve_config(base, {**overrides, **point, "train.progress": False})
        runs.append(PlannedRun(run_id, point, config, os.path.join(workdir, "runs", run_id)))
    return [run for group in groups_of(runs) for run in group]


def groups_of(runs: Sequence[PlannedRun]) -> list[list[PlannedRun]]:
    """Runs of equal structure, in order of first appearance."""
    by_structure: dict[str, list[PlannedRun]] = {}
    for run in runs:
        by_structure.setdefault(run.structure, []).append(run)
    return list(by_structure.values())


def record_sweep(workdir: str, experiment: str, overrides: dict, runs: Sequence[PlannedRun], *,
                 write: bool = True) -> None:
    """Checks `runs` against the sweep already in `workdir` and, with `write`, writes sweep.json with every run
    ever planned there (the old ones first). Another experiment or other shared settings, or a run id an earlier
    point already has, raise a ConfigError before anything is written."""
    path = os.path.join(workdir, "sweep.json")
    shared = json.loads(json.dumps({k: v for k, v in sorted(overrides.items()) if k not in NOT_IDENTITY}, default=repr))
    entries = [{"run_id": r.run_id, "point": r.point} for r in runs]
    if (old := read_json(path)) is not None:
        if old["experiment"] != experiment or old.get("overrides", {}) != shared:
            raise ConfigError(f"{workdir} holds a sweep of {old['experiment']} with shared settings "
                              f"{old.get('overrides', {})}, not of {experiment} with {shared}; a re-run may only add "
                              "points: use a new --workdir for other settings.")
        known = {e["run_id"]: e["point"] for e in old["runs"]}
        for e in entries:  # a run id taken by another point
            if json.dumps(known.get(e["run_id"], e["point"]), default=repr) != json.dumps(e["point"], default=repr):
                raise ConfigError(f"run id {e['run_id']!r} is taken in {workdir} by the point {known[e['run_id']]}; "
                                  "use a new --workdir.")
        entries = old["runs"] + [e for e in entries if e["run_id"] not in known]
    if write:
        os.makedirs(workdir, exist_ok=True)
        swept = list(dict.fromkeys(k for e in entries for k in e["point"]))
        write_atomically(path, json.dumps({"experiment": experiment, "overrides": shared, "swept": swept,
                                           "runs": entries}, indent=2, default=repr))


def run_sweep(experiment: str, workdir: str, *, overrides: dict | None = None, grid: Sequence[str] = (),
              seeds: int | None = None, parallel: str = "vmap", max_parallel: int | None = None,
              shard: tuple[int, int] = (0, 1), select: str = "val/mse", progress: bool = True,
              space: dict | None = None, sample: int | None = None, sampler: str = "random",
              search: SearchOptions | None = None, figures=None, points: Sequence[dict] | None = None,
              module=None, folds: int | None = None) -> dict[str, Any]:
    """Runs this process's slice of the sweep (or search) and writes DIR/results.csv, results.md and figures.

    Args:
      space, sample, sampler: draw `sample` points of `space` ({key: distribution}, the experiment's
        `space()` updated by `--space`) with `sampler` (`aejax.sweep.space`), seeded by the config's seed;
        they replace the file's `sweep()` and are crossed with `grid` and `seeds`.
      points: explicit points ({dotted key: value}) in place of sampled ones (an outside sampler's).
      search: successive halving or population-based training over the populations (`aejax.sweep.search`).
      figures: draws each member's figures (`aejax.viz.training_figures`, passed by `aejax.run_sweep`).
      module: the experiment file already loaded (`aejax.config.load_experiment`): it is executed once.
      folds: K-fold cross-validation of every point: its K folds train as members of one population
        (data.folds=K for every run, data.fold crossed like the seeds); the results add each point's fold
        mean and standard error (results_folds.csv/md) and `select` and a search rank points by their fold mean.
    Returns {"rows": [...], "best": row or None, "ran": count, "skipped": count, "failed": count, ...}.
    """
    from aejax.train.setup import setup_run, source_key, whole_dataset

    if parallel not in PARALLEL:
        raise ConfigError(f"--parallel must be one of {list(PARALLEL)}, got {parallel!r}.")
    if max_parallel is not None and max_parallel < 1:
        raise ConfigError(f"--max-parallel must be >= 1, got {max_parallel}.")
    overrides, module, space = dict(overrides or {}), module or load_experiment(experiment), space or {}
    if points is not None and sample is not None:
        raise ConfigError("give explicit points or --sample N, not both.")
    if folds is not None:
        if {"data.fold", "data.folds"} & set(overrides):
            raise ConfigError("--folds K sets data.folds and sweeps data.fold; drop them from --set.")
        if int(folds) < 2:
            raise ConfigError(f"--folds must be >= 2 (K-fold cross-validation), got {folds}.")
        if search is not None and search.scheduler == "pbt":
            raise ConfigError("population-based training copies states between members, and the folds of a point see "
                              "other data; cross-validate with --scheduler halving or without a search.")
        overrides["data.folds"] = int(folds)
    if sample is not None:
        base_seed = overrides.get("seed", experiment_config(experiment, module).get("seed", 0))
        points = sample_points(space, sample, sampler=sampler, seed=int(base_seed))
    elif space and points is None:
        raise ConfigError("a search space needs --sample N (how many points to draw from it).")
    runs = plan_sweep(experiment, workdir, overrides=overrides, grid=grid, seeds=seeds, points=points, module=module,
                      folds=folds)
    if search is not None:
        search = dataclasses.replace(search, select=select)
        check_search(search, runs, space, parallel=parallel, shard=shard)
        plan = {"space": {k: str(d) for k, d in parse_space(space).items()}, "sample": sample,
                "sampler": sampler if sample is not None else None, "grid": list(grid), "seeds": seeds,
                "runs": [r.run_id for r in runs]}
        state = SearchState(workdir, search, plan)  # a workdir of another search is refused here, before writing
    record_sweep(workdir, experiment, overrides, runs, write=False)  # the sweep's settings, then each run's
    mine = [runs[i] for i in shard_slice(len(runs), *shard)]
    explored = explorable_keys(space) if search is not None and search.scheduler == "pbt" else []
    extensions = {r.run_id: check_run_identity(r.config, r.workdir, ignore=explored) for r in mine}  # once each
    ended = state.ended() if search is not None else set()  # stopped or failed at a recorded decision
    todo = [r for r in mine if r.run_id not in ended and (not finished_status(r.workdir) or (
        search is not None and state.unrecorded_stop(r.workdir)))]  # a stop that was not recorded is undone
    todo_ids = {r.run_id for r in todo}
    datasets: dict[Any, Any] = {}

    def dataset_of(config):  # each dataset loaded once for the whole sweep; runs index it (aejax.data.subsets)
        key = source_key(config.data)
        if key not in datasets:  # data.normal_class -1: the whole dataset, loaded once for every class
            datasets[key] = whole_dataset(ml_collections.ConfigDict({**config.data.to_dict(), "normal_class": -1}))
        if datasets[key].scaling is None or config.data.normal_class < 0:
            return datasets[key]
        restricted = (key, int(config.data.normal_class))  # a standardized dataset is re-standardized on the class
        if restricted not in datasets:
            datasets[restricted] = whole_dataset(config.data, datasets[key])
        return datasets[restricted]

    populations = []  # (setups, planned runs to train, the population's planned size); every config built first
    for group in ([[r] for r in mine] if parallel == "sequential" else groups_of(mine)):
        # the injectable optimizer values that differ within the group: one program for every chunk of it
        inject = tuple(k for k in INJECTABLE if len({r.config.optim.get(k) for r in group}) > 1)
        setups = {r.run_id: setup_run(r.config, whole=dataset_of(r.config), inject_optim=inject, resolved=True)
                  for r in group if r.run_id in todo_ids}
        if any(s.streams for s in setups.values()) and jax.process_count() > 1 and parallel == "vmap":
            raise ConfigError("a population streamed from host memory (data.on_device=False, data.mmap=True, or too "
                              "large for the device) trains in one process; drop --coordinator or keep the data on "
                              "the device.")
        size = max_parallel or agree(max_members(next(iter(setups.values()))) if setups else 1)
        for part in program_groups(group, setups):
            for chunk in (part[i:i + size] for i in range(0, len(part), size)):
                train = [r for r in chunk if r.run_id in todo_ids]
                if train:
                    populations.append(([setups[r.run_id] for r in train], train, len(chunk)))
    check_select(select, [f"{split}/{term}" for split in ("val", "test", "train") for term in
                          populations[0][0][0].metric_names()] if populations else _reported(mine))
    record_sweep(workdir, experiment, overrides, runs, write=False)  # every process checks the sweep there first
    barrier("aejax sweep: every process read the workdir")  # before any writes to it
    if is_primary():
        record_sweep(workdir, experiment, overrides, runs)
    if search is not None:  # what a decision that was not recorded did is undone; it will be taken again
        state.undo_after_last([r.workdir for r in runs], next_after(search.boundaries(runs[0].config.train.epochs),
                                                                     state.last))
        state.write()
    barrier("aejax sweep: the workdir is ready")
    parent, train_config = None, runs[0].config.train
    if todo and is_primary() and train_config.mlflow:  # the sweep's own MLflow run: every member's run nests in it
        from aejax.train.tracking import start_search_run

        searched = None if search is None else dataclasses.asdict(search) | {"space": plan["space"], "sample": sample,
                                                                          "sampler": sampler}
        parent = start_search_run(workdir, uri=train_config.mlflow_uri, experiment=train_config.mlflow_experiment,
                                  sweep_experiment=experiment, options=searched)
    bar = progress_bar(progress, total=len(mine), initial=len(mine) - len(todo), unit="run")
    outcomes: list[dict] = []
    common = dict(runs_axis=parallel == "vmap", parent_tracker=parent, progress=False, figures=figures)
    try:
        if search is None:  # one population after another
            for setups, train, planned in populations:
                outcomes += train_populations([(setups, [r.workdir for r in train])], planned=[planned],
                                              extensions=[extensions[r.run_id] for r in train], **common)[0]
                bar.update(len(train))
        elif populations:  # every population together: the search decides over all their members at once
            scheduler = make_scheduler(search, state, populations, space)
            if isinstance(scheduler, PopulationBasedTraining):  # resumed: the hp the recorded explores left
                (setups, train, planned), = populations
                setups = [dataclasses.replace(s, hp=as_hp({**s.hp, **{k.split(".", 1)[1]: v for k, v in h.items()}}),
                                              config=resolve_config(s.config, h)) for s, h in zip(setups, scheduler.hp)]
                populations = [(setups, train, planned)]
            for group in train_populations([(s, [r.workdir for r in t]) for s, t, _ in populations],
                                           planned=[p for _, _, p in populations], scheduler=scheduler,
                                           extensions=[extensions[r.run_id] for _, t, _ in populations for r in t],
                                           **common):
                outcomes += group
            bar.update(len(todo))
    finally:
        bar.close()
        if parent is not None:
            parent.finish()
    if is_primary():
        out = collect_results(workdir, select=select)
    else:  # process 0 writes and reports the results
        out = {"rows": [], "best": None, "select": select, "results_csv": None, "results_md": None, "figures": []}
    return out | {"ran": len(todo), "skipped": len(mine) - len(todo), "failed": sum("failed" in o for o in outcomes),
                  "groups": len(populations),
                  "member_epochs": sum(r.get("epochs", 0) for r in out["rows"] if isinstance(r.get("epochs"), int))}


def check_search(search: SearchOptions, runs: Sequence[PlannedRun], space: dict, *, parallel: str,
                 shard: tuple[int, int]) -> None:
    """A search's one-line refusals: bad options, pbt over structural or non-hp keys, one process only."""
    search.check(runs[0].config.train.epochs)
    if parallel != "vmap" or shard != (0, 1):
        where = f"shard {shard[0]}/{shard[1]} of the sweep" if shard != (0, 1) else f"--parallel {parallel}"
        raise ConfigError(f"a search decides across its members while they train: run it with --parallel vmap over "
                          f"the whole sweep in one process or several joined by --coordinator; this is {where}.")
    if search.scheduler == "pbt":
        bad = sorted(k for k in space if not k.startswith("hp."))
        if bad:
            raise ConfigError(f"population-based training copies states between members of one program, so its "
                              f"space may hold hp.* keys only; {bad} change the program (sweep them with --grid, "
                              "or search them with --scheduler halving).")
        if not explorable_keys(space):
            raise ConfigError("population-based training explores the hp.* keys of its space, and this space has none "
                              "it can explore (a range, or a choice of two or more values); add one with --space.")
        if len(groups_of(runs)) > 1:
            raise ConfigError("population-based training needs one population; these runs differ in structure "
                              "(e.g. --grid over model.* keys); keep structural keys out of a PBT search.")


def make_scheduler(search: SearchOptions, state: SearchState, populations, space: dict):
    """The search's scheduler over the members of every population, in order."""
    members = [r for _, train, _ in populations for r in train]
    ids, epochs = [r.run_id for r in members], members[0].config.train.epochs
    if search.scheduler == "halving":  # fold members rank and stop together: by their point's fold mean
        folds = any("data.fold" in r.point for r in members)
        points = [json.dumps({k: v for k, v in r.point.items() if k != "data.fold"}, sort_keys=True, default=repr)
                  for r in members] if folds else None
        return Halving(ids, search, state, epochs, points=points)
    keys = explorable_keys(space)
    setups = [s for setups, _, _ in populations for s in setups]
    initial = [{k: s.config.hp[k.split(".", 1)[1]] for k in keys} for s in setups]  # as configured, not float32
    return PopulationBasedTraining(ids, search, state, epochs, initial, {k: space[k] for k in keys})


def check_select(select: str, known: Sequence[str]) -> None:
    """`--select METRIC[:min|max]` names a metric the runs will report (`known`: split/term, from
    `RunSetup.metric_names`), or a ConfigError with a "did you mean"."""
    metric, _ = parse_select(select)
    if known and metric not in known:
        close = difflib.get_close_matches(metric, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"the runs report {', '.join(known)}."
        raise ConfigError(f"--select {select!r} names no metric these runs report; {hint}")


def _reported(runs: Sequence[PlannedRun]) -> list[str]:
    """The split/term metrics the runs' summaries hold (a sweep with nothing left to train)."""
    for run in runs:
        if (summary := read_json(os.path.join(run.workdir, "summary.json"))) is not None:
            return sorted(k for k in summary if k.split("/")[0] in ("val", "test", "train"))
    return []


__all__ = ["PlannedRun", "check_select", "collect_results", "groups_of", "plan_sweep", "record_sweep", "run_sweep"]
