"""`run_sweep`: expand, group, train (vmapped or one by one), skip what is done, write the results.

A run's structure is its resolved config without `hp` and `seed`; runs of equal structure form a
group that trains as one vmapped program (`aejax.sweep.group.train_group`), chunked to at most
`max_parallel` members. Everything in `hp` (learning rate included) and the seed vary within a
group, and so do the optimizer's continuous values (`aejax.train.optim.INJECTABLE`: clipping norm,
weight decay, Adam's b1, b2, eps, momentum), carried as arrays in the optimizer state
(`optax.inject_hyperparams`) when the members differ in them. Any other difference (code size,
net, kind, batch size, epochs, schedule, whether clipping or decay is on at all) makes a separate
group. Each run has DIR/runs/<run-id>/ as `aejax train` writes it; a finished run
(summary.json present, same config) is skipped, an unfinished one resumes from its checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np

from aejax.config import config_to_json, get_experiment_config, load_experiment
from aejax.errors import ConfigError
from aejax.sweep import results as res
from aejax.sweep.spec import expand, run_ids, shard_slice
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
        parts of the optimizer are present counts): equal for runs that can share one vmapped program."""
        tree = self.config.to_dict()
        tree.pop("hp"), tree.pop("seed")
        optim = tree["optim"]
        tree["optim_structure"] = optimizer_structure(optim["name"], grad_clip=optim["grad_clip"],
                                                      weight_decay=optim["weight_decay"], momentum=optim["momentum"])
        for key in INJECTABLE:
            optim.pop(key)
        return json.dumps(tree, sort_keys=True, default=str)


def varying_optimizer_values(runs: Sequence[PlannedRun]) -> tuple[str, ...]:
    """The injectable optimizer values that differ between the runs of a group."""
    return tuple(k for k in INJECTABLE if len({r.config.optim[k] for r in runs}) > 1)


def plan_sweep(experiment: str, workdir: str, *, overrides: dict | None = None, grid: Sequence[str] = (),
               seeds: int | None = None) -> list[PlannedRun]:
    """Every run of the sweep, in group order (runs of one structure together, first appearance first)."""
    module = load_experiment(experiment)
    file_points = module.sweep() if callable(getattr(module, "sweep", None)) and not (grid or seeds) else None
    points = expand(file_points, grid=grid, seeds=seeds)
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


def groups_of(runs: Sequence[PlannedRun], max_parallel: int | None) -> list[list[PlannedRun]]:
    """Runs of equal structure, in chunks of at most `max_parallel`."""
    by_structure: dict[str, list[PlannedRun]] = {}
    for run in runs:
        by_structure.setdefault(run.structure, []).append(run)
    chunks = []
    for members in by_structure.values():
        size = max_parallel or len(members)
        chunks += [members[i:i + size] for i in range(0, len(members), size)]
    return chunks


def is_finished(run: PlannedRun) -> bool:
    """summary.json written by a run of exactly this config."""
    try:
        with open(os.path.join(run.workdir, "config.json"), encoding="utf-8") as f:
            same = json.load(f) == json.loads(config_to_json(run.config))
    except FileNotFoundError:
        return False
    return same and os.path.isfile(os.path.join(run.workdir, "summary.json"))


def estimate_max_parallel(setup) -> int:
    """A rough count of members that fit in memory at once: the state (params, optimizer state,
    gradients) and the batch's activations per member against half the device's free memory."""
    state = jax.eval_shape(setup.init_state)
    state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(state))
    widest = max((x.size for x in jax.tree_util.tree_leaves(state["params"])), default=1)
    per_member = 4 * state_bytes + 16 * setup.train.batch_size * int(np.sqrt(widest)) * 4
    stats = getattr(jax.devices()[0], "memory_stats", lambda: None)()
    if stats and "bytes_limit" in stats:
        free = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    else:
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return max(1, int(0.5 * free // max(per_member, 1)))


def run_sweep(experiment: str, workdir: str, *, overrides: dict | None = None, grid: Sequence[str] = (),
              seeds: int | None = None, parallel: str = "vmap", max_parallel: int | None = None,
              shard: tuple[int, int] = (0, 1), select: str = "val/mse", progress: bool = True) -> dict[str, Any]:
    """Runs this process's slice of the sweep and writes DIR/results.csv, results.md and figures.

    Returns {"rows": [...], "best": row or None, "ran": count, "skipped": count, ...}.
    """
    from aejax.sweep.group import train_group
    from aejax.train.setup import config_dataset, setup_run

    if parallel not in PARALLEL:
        raise ConfigError(f"--parallel must be one of {list(PARALLEL)}, got {parallel!r}.")
    if max_parallel is not None and max_parallel < 1:
        raise ConfigError(f"--max-parallel must be >= 1, got {max_parallel}.")
    res.parse_select(select)
    runs = plan_sweep(experiment, workdir, overrides=overrides, grid=grid, seeds=seeds)
    os.makedirs(workdir, exist_ok=True)
    swept = list(dict.fromkeys(k for r in runs for k in r.point))
    with open(os.path.join(workdir, "sweep.json"), "w", encoding="utf-8") as f:
        json.dump({"experiment": experiment, "overrides": overrides or {}, "swept": swept,
                   "runs": [{"run_id": r.run_id, "point": r.point} for r in runs]}, f, indent=2, default=repr)
    mine = [runs[i] for i in shard_slice(len(runs), *shard)]
    todo = [r for r in mine if not is_finished(r)]
    bar = _runs_bar(progress, len(mine), len(mine) - len(todo))
    programs = 0
    try:
        for group in groups_of(todo, None):
            if parallel == "sequential":  # fit builds each run; the group's data is loaded once
                dataset = config_dataset(group[0].config.data)
                for run in group:
                    _fit_or_record_failure(run, dataset)
                    bar.update(1)
                programs += len(group)
                continue
            inject = varying_optimizer_values(group)  # the same program for every chunk of the group
            first = setup_run(group[0].config, inject_optim=inject)
            setups = [first] + [setup_run(r.config, dataset=first.dataset, inject_optim=inject) for r in group[1:]]
            size = max_parallel or estimate_max_parallel(first)
            for i in range(0, len(group), size):  # a chunk of one too: a resumed member goes on in a group program
                train_group(setups[i:i + size], [r.workdir for r in group[i:i + size]], progress=False)
                bar.update(len(group[i:i + size]))
                programs += 1
    finally:
        bar.close()
    return collect_results(workdir, select=select) | {"ran": len(todo), "skipped": len(mine) - len(todo),
                                                       "groups": programs}


def _fit_or_record_failure(run: PlannedRun, dataset) -> None:
    """`fit` one run; a non-finite loss is written to its failed.json and the sweep goes on."""
    from aejax.errors import NonFiniteError
    from aejax.train import fit

    try:
        fit(run.config, run.workdir, dataset=dataset)
    except NonFiniteError as err:
        with open(os.path.join(run.workdir, "failed.json"), "w", encoding="utf-8") as f:
            json.dump({"error": str(err)}, f, indent=2)


def collect_results(workdir: str, *, select: str = "val/mse") -> dict[str, Any]:
    """Rebuilds DIR/results.csv, results.md and the figures from DIR/sweep.json and every run's outputs
    (what `aejax sweep DIR --collect` does after the shards of a cluster array job)."""
    path = os.path.join(workdir, "sweep.json")
    if not os.path.isfile(path):
        raise ConfigError(f"{workdir} has no sweep.json; pass the --workdir of an `aejax sweep`.")
    with open(path, encoding="utf-8") as f:
        sweep = json.load(f)
    ids = [r["run_id"] for r in sweep["runs"]]
    points = [r["point"] for r in sweep["runs"]]
    points = [{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()} for p in points]
    rows = res.collect(ids, points, workdir)
    csv_path, md_path = res.write_tables(rows, sweep["swept"], workdir)
    figures = res.metric_figures(rows, sweep["swept"], workdir)
    return {"rows": rows, "best": res.best_run(rows, select), "select": select, "results_csv": csv_path,
            "results_md": md_path, "figures": figures}


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
