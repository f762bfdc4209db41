"""`run_sweep`: expand, group, train each group as a population, skip what is done, write the results.

A run's structure is its resolved config without `hp` and `seed`; runs of equal structure form a
group that trains as one population in the one training loop (`aejax.train.loop.train_population`:
the single run's programs vmapped over a run axis), in chunks of at most `max_parallel` members.
Everything in `hp` (learning rate included) and the seed vary within a group, and so do the
optimizer's continuous values (`aejax.train.optim.INJECTABLE`), carried as arrays in the optimizer
state when the members differ in them. Any other difference (code size, net, kind, batch size,
epochs, schedule, whether clipping or decay is on at all) makes a separate group.

A sweep's workdir holds sweep.json (the experiment, the settings shared by every run, and every
run ever planned there) and DIR/runs/<run-id>/ as `aejax train` writes it. The rule: the results
table covers every run in sweep.json; a re-run may add points, but another experiment or other
shared settings are refused before anything is written; a finished run (the run-identity rule)
is skipped, an unfinished one resumes from its checkpoints.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from typing import Any, Sequence

import ml_collections

from aejax.config import get_experiment_config, load_experiment
from aejax.errors import ConfigError
from aejax.sweep import results as res
from aejax.sweep.results import collect_results, read_decisions, search_columns  # noqa: F401 - moved
from aejax.models.common import as_hp
from aejax.sweep.search import Halving, PopulationBasedTraining, SearchOptions, SearchState, ranking
from aejax.sweep.space import continuous_keys, sample_points
from aejax.sweep.spec import expand, run_ids, shard_slice
from aejax.train.loop import NOT_IDENTITY, check_run_identity, is_finished, max_members
from aejax.train.optim import INJECTABLE, optimizer_structure

PARALLEL = ("vmap", "sequential")


@dataclasses.dataclass(frozen=True)
class PlannedRun:
    run_id: str
    point: dict
    config: ml_collections.ConfigDict
    workdir: str

    @property
    def structure(self) -> str:
        """The config without hp, seed and the injectable optimizer values (only whether the optional
        parts of the optimizer are present counts): equal for runs that can share one program."""
        tree = self.config.to_dict()
        tree.pop("hp"), tree.pop("seed")
        optim = tree["optim"]
        tree["optim_structure"] = optimizer_structure(optim["name"], grad_clip=optim["grad_clip"],
                                                      weight_decay=optim.get("weight_decay", 0.0),
                                                      momentum=optim.get("momentum", 0.0))
        for key in INJECTABLE:
            optim.pop(key, None)
        for key in NOT_IDENTITY:  # how runs are shown and fed does not split a group
            section, name = key.split(".")
            tree[section].pop(name, None)
        return json.dumps(tree, sort_keys=True, default=str)


def varying_optimizer_values(runs: Sequence[PlannedRun]) -> tuple[str, ...]:
    """The injectable optimizer values that differ between the runs of a group."""
    return tuple(k for k in INJECTABLE if len({r.config.optim.get(k) for r in runs}) > 1)


def plan_sweep(experiment: str, workdir: str, *, overrides: dict | None = None, grid: Sequence[str] = (),
               seeds: int | None = None, points: Sequence[dict] | None = None) -> list[PlannedRun]:
    """Every run of the sweep, in group order (runs of one structure together, first appearance first).

    `points` (e.g. sampled from a search space) replace the file's `sweep()` as `--grid` does.
    """
    module = load_experiment(experiment)
    replaced = grid or seeds or points is not None
    file_points = module.sweep() if callable(getattr(module, "sweep", None)) and not replaced else None
    points = expand(file_points, grid=grid, seeds=seeds, sampled=points)
    overrides = dict(overrides or {})
    overrides.pop("train.progress", None)  # the sweep shows one bar over its runs instead
    runs = []
    for run_id, point in zip(run_ids(points), points):
        clash = sorted(set(point) & set(overrides))
        if clash:
            raise ConfigError(f"{clash} are both swept and set with --set; keep each key in one place.")
        config = get_experiment_config(experiment, {**overrides, **point, "train.progress": False})
        runs.append(PlannedRun(run_id, point, config, os.path.join(workdir, "runs", run_id)))
    order = list(dict.fromkeys(r.structure for r in runs))
    return sorted(runs, key=lambda r: order.index(r.structure))


def groups_of(runs: Sequence[PlannedRun]) -> list[list[PlannedRun]]:
    """Runs of equal structure, in order of first appearance."""
    by_structure: dict[str, list[PlannedRun]] = {}
    for run in runs:
        by_structure.setdefault(run.structure, []).append(run)
    return list(by_structure.values())


def record_sweep(workdir: str, experiment: str, overrides: dict, runs: Sequence[PlannedRun], *,
                 write: bool = True) -> list[dict]:
    """Checks `runs` against the sweep already in `workdir` (same experiment and shared settings) and, with
    `write`, writes sweep.json with every run ever planned there (the old ones first). Returns that list.

    Raises ConfigError, writing nothing, for another experiment or other shared settings, or a run id that
    an earlier point of the sweep already has.
    """
    path = os.path.join(workdir, "sweep.json")
    shared = json.loads(json.dumps({k: v for k, v in sorted(overrides.items()) if k not in NOT_IDENTITY}, default=repr))
    entries = [{"run_id": r.run_id, "point": r.point} for r in runs]
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
        if old["experiment"] != experiment or old.get("overrides", {}) != shared:
            raise ConfigError(f"{workdir} holds a sweep of {old['experiment']} with shared settings "
                              f"{old.get('overrides', {})}, not of {experiment} with {shared}; a re-run may only add "
                              "points: use a new --workdir for other settings.")
        known = {e["run_id"]: e["point"] for e in old["runs"]}
        for e in entries:
            if e["run_id"] in known and json.dumps(known[e["run_id"]], default=repr) != json.dumps(e["point"],
                                                                                                  default=repr):
                raise ConfigError(f"run id {e['run_id']!r} is taken in {workdir} by the point {known[e['run_id']]}; "
                                  "use a new --workdir.")
        entries = old["runs"] + [e for e in entries if e["run_id"] not in known]
    if write:
        os.makedirs(workdir, exist_ok=True)
        swept = list(dict.fromkeys(k for e in entries for k in e["point"]))
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"experiment": experiment, "overrides": shared, "swept": swept, "runs": entries}, f, indent=2,
                      default=repr)
    return entries


def run_sweep(experiment: str, workdir: str, *, overrides: dict | None = None, grid: Sequence[str] = (),
              seeds: int | None = None, parallel: str = "vmap", max_parallel: int | None = None,
              shard: tuple[int, int] = (0, 1), select: str = "val/mse", progress: bool = True,
              space: dict | None = None, sample: int | None = None, sampler: str = "random",
              search: SearchOptions | None = None, figures=None) -> dict[str, Any]:
    """Runs this process's slice of the sweep (or search) and writes DIR/results.csv, results.md and figures.

    Args:
      space, sample, sampler: draw `sample` points of `space` ({key: distribution}, the experiment's
        `space()` updated by `--space`) with `sampler` (`aejax.sweep.space`), seeded by the config's seed;
        they replace the file's `sweep()` and are crossed with `grid` and `seeds`.
      search: successive halving or population-based training inside the populations (`aejax.sweep.search`).
      figures: draws each member's figures (`aejax.viz.training_figures`, passed by `aejax.run_sweep`).
    Returns {"rows": [...], "best": row or None, "ran": count, "skipped": count, "failed": count, ...}.
    """
    from aejax.train.setup import config_dataset, setup_run

    if parallel not in PARALLEL:
        raise ConfigError(f"--parallel must be one of {list(PARALLEL)}, got {parallel!r}.")
    if max_parallel is not None and max_parallel < 1:
        raise ConfigError(f"--max-parallel must be >= 1, got {max_parallel}.")
    overrides = dict(overrides or {})
    points = None
    if sample is not None:
        base_seed = overrides.get("seed", get_experiment_config(experiment, {}).seed)
        points = sample_points(space or {}, sample, sampler=sampler, seed=int(base_seed))
    elif space:
        raise ConfigError("a search space needs --sample N (how many points to draw from it).")
    runs = plan_sweep(experiment, workdir, overrides=overrides, grid=grid, seeds=seeds, points=points)
    datasets: dict[str, Any] = {}

    def dataset_of(config):  # each dataset loaded once for the whole sweep
        key = json.dumps(config.data.to_dict(), sort_keys=True, default=repr)
        if key not in datasets:
            datasets[key] = config_dataset(config.data)
        return datasets[key]

    check_select(select, setup_run(runs[0].config, dataset=dataset_of(runs[0].config)))
    if search is not None:
        search = dataclasses.replace(search, select=select)
        check_search(search, runs, space or {}, parallel=parallel, shard=shard)
        state = SearchState(workdir, search)  # a workdir of another search is refused here
    mine = [runs[i] for i in shard_slice(len(runs), *shard)]
    todo = [r for r in mine if not is_finished(r.config, r.workdir)]
    record_sweep(workdir, experiment, overrides, runs, write=False)  # the sweep's settings, then each run's,
    for r in todo:  # all checked before anything is written
        check_run_identity(r.config, r.workdir)
    if search is not None:  # what a decision that was not recorded did is undone; it will be taken again
        state.undo_after_last([r.workdir for r in runs], search_next(search, runs[0].config.train.epochs, state.last))
        todo = [r for r in mine if not is_finished(r.config, r.workdir)]
    record_sweep(workdir, experiment, overrides, runs)
    parent = _parent_tracker(workdir, runs[0].config, experiment) if todo else None
    bar = _runs_bar(progress, len(mine), len(mine) - len(todo))
    train = functools.partial(_train, parent=parent, figures=figures)
    outcomes: list[dict] = []
    populations: list = []
    try:
        if parallel == "sequential":  # the loop with a population of one each; the data is loaded once
            for run in todo:
                outcomes += train([setup_run(run.config, dataset=dataset_of(run.config))], [run], runs_axis=False)
                bar.update(1)
        else:
            for group in groups_of(todo):
                inject = varying_optimizer_values(group)  # one program for every chunk of the group
                setups = [setup_run(r.config, dataset=dataset_of(r.config), inject_optim=inject) for r in group]
                size = max_parallel or max_members(setups[0])
                populations += [(setups[i:i + size], group[i:i + size]) for i in range(0, len(group), size)]
            if search is not None and len(populations) > 1:  # halving ranked over every population at each rung
                outcomes += halving_rounds(populations, search, state, train)
            for setups, chunk in populations if search is None or len(populations) == 1 else ():
                scheduler = None if search is None else make_scheduler(search, state, setups, chunk, space or {})
                if isinstance(scheduler, PopulationBasedTraining):  # resumed: the hp the recorded explores left
                    setups = [dataclasses.replace(s, hp=as_hp({**s.hp, **{k.split(".", 1)[1]: v for k, v in h.items()}}))
                              for s, h in zip(setups, scheduler.hp)]
                outcomes += train(setups, chunk, scheduler=scheduler)
                bar.update(len(chunk))
    finally:
        bar.close()
        if parent is not None:
            parent.finish()
    out = collect_results(workdir, select=select)
    return out | {"ran": len(todo), "skipped": len(mine) - len(todo), "failed": sum("failed" in o for o in outcomes),
                  "groups": len(populations) if parallel == "vmap" else len(todo),
                  "member_epochs": sum(r.get("epochs", 0) for r in out["rows"] if isinstance(r.get("epochs"), int))}


def _train(setups, runs, *, parent, figures, runs_axis=True, scheduler=None, until=None) -> list[dict]:
    from aejax.train.loop import train_population

    return train_population(setups, [r.workdir for r in runs], runs_axis=runs_axis, scheduler=scheduler,
                            parent_tracker=parent, progress=False, figures=figures, until=until)


def check_search(search: SearchOptions, runs: Sequence[PlannedRun], space: dict, *, parallel: str,
                 shard: tuple[int, int]) -> None:
    """A search's one-line refusals: bad options, pbt over structural or non-hp keys, one process only."""
    search.check(runs[0].config.train.epochs)
    if parallel != "vmap" or shard != (0, 1):
        raise ConfigError("a search decides across its members while they train: run it with --parallel vmap "
                          "in one process (no --shard).")
    if search.scheduler == "pbt":
        bad = sorted(k for k in space if not k.startswith("hp."))
        if bad:
            raise ConfigError(f"population-based training copies states between members of one program, so its "
                              f"space may hold hp.* keys only; {bad} change the program (sweep them with --grid, "
                              "or search them with --scheduler halving).")
        if len(groups_of(runs)) > 1:
            raise ConfigError("population-based training needs one population; these runs differ in structure "
                              "(e.g. --grid over model.* keys); keep structural keys out of a PBT search.")


def search_next(search: SearchOptions, epochs: int, epoch: int) -> int | None:
    return next((b for b in search.boundaries(epochs) if b > epoch), None)


def make_scheduler(search: SearchOptions, state: SearchState, setups, runs: Sequence[PlannedRun], space: dict):
    epochs = runs[0].config.train.epochs
    ids = [r.run_id for r in runs]
    if search.scheduler == "halving":
        return Halving(ids, search, state, epochs)
    keys = continuous_keys(space)
    initial = [{k: float(s.hp[k.split(".", 1)[1]]) for k in keys} for s in setups]
    return PopulationBasedTraining(ids, search, state, epochs, initial, keys)


def halving_rounds(populations, search: SearchOptions, state: SearchState, train) -> list[dict]:
    """Halving over several populations: each trains to the rung and pauses, the ranking is global, the
    stopped members' summaries say so; the survivors train on to the next rung, then to the end."""
    metric, lower = res.parse_select(search.select)
    live = [r.run_id for _, runs in populations for r in runs if r.run_id not in state.stopped()]

    def train_live(until=None) -> list[tuple[PlannedRun, dict]]:
        out = []
        for setups, runs in populations:
            alive = [(s, r) for s, r in zip(setups, runs) if r.run_id in live]
            if alive:
                out += zip([r for _, r in alive], train([s for s, _ in alive], [r for _, r in alive], until=until))
        return out

    epochs = populations[0][1][0].config.train.epochs
    for rung in [b for b in search.boundaries(epochs) if b > state.last]:
        scores = {run.run_id: float("nan") if "failed" in s else s.get(metric, float("nan"))
                  for run, s in train_live(until=rung)}
        ids = [i for i in live if i in scores]
        kept = [ids[i] for i in ranking(ids, [scores[i] for i in ids], lower=lower)[:math.ceil(len(ids) / search.eta)]]
        for _, runs in populations:
            for run in runs:
                if run.run_id in ids and run.run_id not in kept:
                    res.set_status(run.workdir, "stopped")
        state.record(rung, {"kept": kept, "stopped": [i for i in ids if i not in kept]})
        live = kept
    return [s for _, s in train_live()]


def check_select(select: str, run) -> None:
    """`--select METRIC[:min|max]` names a metric the runs will report (split/term, `RunSetup.metric_names`),
    or a ConfigError with a "did you mean"."""
    metric, _ = res.parse_select(select)
    known = [f"{split}/{term}" for split in ("val", "test", "train") for term in run.metric_names()]
    if metric not in known:
        import difflib

        close = difflib.get_close_matches(metric, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"the runs report {', '.join(known)}."
        raise ConfigError(f"--select {select!r} names no metric these runs report; {hint}")


def _parent_tracker(workdir: str, config: ml_collections.ConfigDict, experiment: str, options: dict | None = None):
    """With train.mlflow, the sweep's own MLflow run, under which every member's run is nested; `options` are the
    search's (`tracking.start_search_run`: e.g. dataclasses.asdict(search) | {"space": ..., "sample": ...})."""
    if not config.train.mlflow:
        return None
    from aejax.train.tracking import start_search_run

    return start_search_run(workdir, uri=config.train.mlflow_uri, experiment=config.train.mlflow_experiment,
                            sweep_experiment=experiment, options=options)


class _runs_bar:
    """A tqdm bar over the runs of this process's slice."""

    def __init__(self, enabled: bool, total: int, done: int):
        self._bar = None
        if enabled:
            import sys

            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, unit="run", dynamic_ncols=True, file=sys.stderr)

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


__all__ = ["PlannedRun", "check_select", "collect_results", "groups_of", "plan_sweep", "record_sweep", "run_sweep",
           "varying_optimizer_values"]
