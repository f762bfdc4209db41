"""Searches inside the populations: successive halving and population-based training.

Both are schedulers of the one training loop (`aejax.train.loop.Scheduler`): every population of a
search trains to the scheduler's next epoch, then it decides once over all their members, between two
device calls: halving stops the worse members at each rung (whatever population they are in; a failed
member ranks last) and each population compacts its run axis to its survivors (a few padded widths, no
compile per size); population-based training (one population) copies the parameters and optimizer
state of a good member into a bad one (a gather on the run axis) and perturbs its continuous
hyperparameters inside the hp arrays (no compile).

Every decision is recorded in the sweep's search.json once it took effect (`commit`), so a killed
search resumes to the same decisions and numbers: what a decision that was not recorded did
(checkpoints after it, summaries of members it stopped) is undone first, and it is taken again.

References: Jamieson & Talwalkar 2016, "Non-stochastic Best Arm Identification and Hyperparameter
Optimization"; Li et al. 2018, "Massively Parallel Hyperparameter Tuning" (ASHA); Jaderberg et al.
2017, "Population Based Training of Neural Networks".
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Sequence

import numpy as np

from aejax.errors import ConfigError
from aejax.sweep.results import parse_select, read_json, read_run
from aejax.sweep.space import as_distribution, explore_step
from aejax.train.checkpoint import Checkpointer
from aejax.train.distributed import is_primary
from aejax.train.loop import Decision
from aejax.train.metrics import write_atomically

SCHEDULERS = ("halving", "pbt")


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    """`--scheduler halving --eta 3 --min-epochs E` or `--scheduler pbt --ready-epochs N --quantile Q
    --perturb 0.8,1.2`; `select` is the sweep's `--select` (a val/* metric)."""

    scheduler: str
    eta: int = 3
    min_epochs: int = 1
    ready_epochs: int = 2
    quantile: float = 0.25
    perturb: tuple[float, ...] = (0.8, 1.2)
    select: str = "val/mse"
    seed: int = 0

    def check(self, epochs: int) -> None:
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"unknown scheduler {self.scheduler!r}; choose one of {list(SCHEDULERS)}.")
        if not self.select.startswith("val/"):
            raise ConfigError(f"a search ranks members on validation: --select must name a val/* metric, got "
                              f"{self.select!r}.")
        if self.scheduler == "halving":
            if self.eta < 2:
                raise ConfigError(f"--eta must be an integer >= 2 (the share kept at a rung is 1/eta), got {self.eta}.")
            if not 1 <= self.min_epochs < epochs:
                raise ConfigError(f"--min-epochs must lie in [1, {epochs}) (train.epochs), got {self.min_epochs}.")
        else:
            if not 0 < self.quantile <= 0.5:
                raise ConfigError(f"--quantile must lie in (0, 0.5], got {self.quantile}.")
            if not 1 <= self.ready_epochs < epochs:
                raise ConfigError(f"--ready-epochs must lie in [1, {epochs}) (train.epochs), got {self.ready_epochs}.")
            if not self.perturb or any(not (f > 0 and math.isfinite(f)) for f in self.perturb):
                raise ConfigError(f"--perturb takes positive factors such as 0.8,1.2, got {self.perturb}.")

    def boundaries(self, epochs: int) -> list[int]:
        """The epoch ends at which the scheduler decides: halving's rungs E, E*eta, E*eta^2, ... below
        train.epochs, or every ready_epochs for PBT."""
        if self.scheduler == "pbt":
            return list(range(self.ready_epochs, epochs, self.ready_epochs))
        rungs, rung = [], self.min_epochs
        while rung < epochs:
            rungs.append(rung)
            rung *= self.eta
        return rungs


def next_after(boundaries: Sequence[int], epoch: int) -> int | None:
    """The first of the sorted epoch ends `boundaries` after 0-based `epoch` (None: none is left)."""
    return next((b for b in boundaries if b > epoch), None)


def ranking(run_ids: Sequence[str], scores: Sequence[float], *, lower: bool) -> list[int]:
    """Positions of the members, best first; a non-finite score ranks last, ties go by run id."""
    def key(i):
        s = float(scores[i])
        return (not math.isfinite(s), (s if lower else -s) if math.isfinite(s) else 0.0, run_ids[i])

    return sorted(range(len(run_ids)), key=key)


class SearchState:
    """search.json in the sweep's workdir: the options, what was planned (the space, sample, sampler, grid, seeds
    and run ids) and every decision that took effect, by epoch end. A search workdir holds one search: another
    plan or other options are refused in one line naming the difference, before anything is written."""

    def __init__(self, workdir: str, options: SearchOptions, plan: dict | None = None):
        self.path = os.path.join(workdir, "search.json")
        self.options, self.plan = options, json.loads(json.dumps(plan or {}, default=str))
        self.decisions: dict[int, dict] = {}
        if (saved := read_json(self.path)) is not None:
            if saved["options"] != json.loads(json.dumps(dataclasses.asdict(options))):
                raise ConfigError(f"{workdir} holds a search with options {saved['options']}; these are "
                                  f"{dataclasses.asdict(options)}: use a new --workdir.")
            old = saved.get("plan", self.plan)
            changed = [f"{k}: {old.get(k)!r} there, {self.plan.get(k)!r} now" for k in sorted(set(old) | set(self.plan))
                       if k != "runs" and old.get(k) != self.plan.get(k)]
            if changed or old.get("runs") != self.plan.get("runs"):
                raise ConfigError(f"{workdir} holds another search ({'; '.join(changed) or 'other points'}); a search "
                                  "workdir holds one search: use a new --workdir, or the original command to resume "
                                  "it.")
            self.decisions = {int(k): v for k, v in saved["decisions"].items()}

    def write(self) -> None:
        """search.json as it stands (the plan from the start, so that a rerun with another one is refused)."""
        if is_primary():
            write_atomically(self.path, json.dumps({"options": dataclasses.asdict(self.options), "plan": self.plan,
                                                    "decisions": self.decisions}, indent=2))

    @property
    def last(self) -> int:
        return max(self.decisions, default=0)

    def ended(self) -> set[str]:
        """The run ids a recorded decision stopped (failed members among them): never trained again."""
        return {r for d in self.decisions.values() for r in d.get("stopped", [])}

    def unrecorded_stop(self, workdir: str) -> bool:
        """`workdir` holds a "stopped" summary newer than the last recorded decision (its decision is taken again)."""
        run = read_run(workdir)
        return run["status"] == "stopped" and run.get("epochs", 0) > self.last

    def undo_after_last(self, workdirs: Sequence[str], next_boundary: int | None) -> None:
        """What an unrecorded decision did is undone: every checkpoint from the next decision's epoch on, and a
        "stopped" summary newer than the last recorded decision (they are made again, identically)."""
        for workdir in workdirs:
            ckpt_dir = os.path.join(workdir, "checkpoints")
            if next_boundary is not None and os.path.isdir(ckpt_dir):
                ckpt = Checkpointer(ckpt_dir)
                for step in [s for s in ckpt.steps() if s >= next_boundary]:
                    ckpt.delete(step)
                ckpt.close()
            if self.unrecorded_stop(workdir) and is_primary():
                os.remove(os.path.join(workdir, "summary.json"))


class _Scheduler:
    """What both searches share: the members' run ids, the options, search.json and the decisions to record."""

    def __init__(self, run_ids: Sequence[str], options: SearchOptions, state: SearchState, epochs: int):
        self.run_ids, self.options, self.state = list(run_ids), options, state
        self.boundaries = options.boundaries(epochs)
        self.metric, self.lower = parse_select(options.select)
        self._pending: dict[int, dict] = {}

    def next_decision(self, epoch: int) -> int | None:
        return next_after(self.boundaries, epoch)

    def commit(self, end: int) -> None:
        self.state.decisions[end] = self._pending.pop(end)
        self.state.write()


class Halving(_Scheduler):
    """Successive halving over every population of a search: at each rung the members are ranked on `select` and
    the best ceil(n/eta) go on (ties by run id; a member that failed ranks last and never goes on); the others
    stop with their checkpoint, records and summary. With `points` (one key per member: the folds of a
    cross-validated point share it) points are ranked by their members' mean and go on or stop whole."""

    def __init__(self, run_ids: Sequence[str], options: SearchOptions, state: SearchState, epochs: int,
                 points: Sequence[str] | None = None):
        super().__init__(run_ids, options, state, epochs)
        self.points = None if points is None else list(points)

    def decide(self, end: int, members: Sequence[int], val: dict[str, np.ndarray]) -> Decision:
        ids, scores = [self.run_ids[m] for m in members], val[self.metric]
        if self.points is not None:  # whole points by their fold mean (a failed fold: the point ranks last)
            by_point: dict[str, list[int]] = {}
            for i, m in enumerate(members):
                by_point.setdefault(self.points[m], []).append(i)
            names = list(by_point)
            means = [float(np.mean([scores[i] for i in by_point[p]])) for p in names]
            best_points = ranking(names, means, lower=self.lower)[:math.ceil(len(names) / self.options.eta)]
            keep = sorted(members[i] for p in best_points if math.isfinite(means[p]) for i in by_point[names[p]])
        else:
            best = ranking(ids, scores, lower=self.lower)[:math.ceil(len(members) / self.options.eta)]
            keep = [members[i] for i in best if math.isfinite(float(scores[i]))]
        self._pending[end] = {"kept": [self.run_ids[m] for m in keep],
                              "stopped": [self.run_ids[m] for m in members if m not in keep]}
        return Decision(keep=keep)


class PopulationBasedTraining(_Scheduler):
    """PBT (Jaderberg et al. 2017) inside one population: every ready_epochs, each member of the bottom quantile
    takes the parameters, optimizer state and searched hp of a member drawn from the top quantile (exploit) and
    explores each hp (`aejax.sweep.space.explore_step`). Draws are seeded by (seed, epoch)."""

    def __init__(self, run_ids: Sequence[str], options: SearchOptions, state: SearchState, epochs: int,
                 hp: Sequence[dict[str, float]], space: dict):
        super().__init__(run_ids, options, state, epochs)
        self.space = {k: as_distribution(v, k) for k, v in space.items()}  # the explored hp.* keys
        self.hp = [dict(h) for h in hp]
        for end in sorted(state.decisions):  # resumed: each member's hp after the recorded decisions
            for h, run_id in zip(self.hp, self.run_ids):
                h.update(state.decisions[end].get("hp", {}).get(run_id, {}))

    def decide(self, end: int, members: Sequence[int], val: dict[str, np.ndarray]) -> Decision:
        ids = [self.run_ids[m] for m in members]
        order = [members[i] for i in ranking(ids, val[self.metric], lower=self.lower)]
        k = max(1, int(len(order) * self.options.quantile)) if len(order) > 1 else 0
        rng = np.random.default_rng([self.options.seed, end])
        copy_from, new_hp, factors = {}, {}, {}
        for m in order[len(order) - k:]:
            parent = order[int(rng.integers(k))]
            copy_from[m], new_hp[m], factors[m] = parent, {}, {}
            for key in sorted(self.space):
                new_hp[m][key], factors[m][key] = explore_step(self.space[key], self.hp[parent][key], rng=rng,
                                                               perturb=self.options.perturb)
            self.hp[m] = {**self.hp[m], **new_hp[m]}
        self._pending[end] = {"parents": {self.run_ids[m]: self.run_ids[p] for m, p in copy_from.items()},
                              "hp": {self.run_ids[m]: h for m, h in new_hp.items()},
                              "factors": {self.run_ids[m]: f for m, f in factors.items()}}
        return Decision(keep=list(members), copy_from=copy_from,
                        hp={m: {key.split(".", 1)[1]: v for key, v in h.items()} for m, h in new_hp.items()})


__all__ = ["Halving", "PopulationBasedTraining", "SCHEDULERS", "SearchOptions", "SearchState", "next_after", "ranking"]
