"""A halving search with --folds K ranks points by their fold mean and keeps or stops all folds of a point."""

import json
import os

import numpy as np

from aejax.sweep import run_sweep
from aejax.sweep.runner import make_scheduler, plan_sweep
from aejax.sweep.search import Halving, SearchOptions, SearchState

QUIET = {"train.epochs": 2, "train.progress": False, "train.tensorboard": False, "train.figures": False,
         "train.checkpoint_every": 1}


def test_halving_ranks_points_by_their_fold_mean(tmp_path):
    """Point a is best on one fold and worst on average: a member ranking would keep its fold 0; points keep b."""
    ids = [f"{p}_fold={k}" for p in "abc" for k in range(3)]
    scores = {"a": [0.01, 0.9, 0.9], "b": [0.3, 0.3, 0.3], "c": [0.2, 0.4, 0.35]}
    val = {"val/mse": np.array([s for p in "abc" for s in scores[p]])}
    options = SearchOptions("halving", eta=3)
    by_member = Halving(ids, options, SearchState(str(tmp_path), options), 3).decide(1, list(range(9)), val)
    assert 0 in by_member.keep  # the planted fold
    by_point = Halving(ids, options, SearchState(str(tmp_path), options), 3,
                       points=[i.split("_")[0] for i in ids]).decide(1, list(range(9)), val)
    assert sorted(by_point.keep) == [3, 4, 5]  # every fold of b, and nothing of a


def test_the_sweeps_halving_maps_fold_members_to_their_points(tmp_path):
    """make_scheduler gives halving the points of `--folds` members: the planted point (best fold 0, worst mean)
    goes, every fold of the best mean stays."""
    runs = plan_sweep("digits_ae", str(tmp_path), grid=["hp.learning_rate=0.001,0.002,0.003"], folds=3,
                      overrides={"data.folds": 3})
    options = SearchOptions("halving", eta=3)
    scheduler = make_scheduler(options, SearchState(str(tmp_path), options), [(None, runs, len(runs))], {})
    scores = {0.001: [0.01, 0.9, 0.9], 0.002: [0.3, 0.3, 0.3], 0.003: [0.2, 0.4, 0.35]}
    val = {"val/mse": np.array([scores[r.config.hp.learning_rate][r.point["data.fold"]] for r in runs])}
    keep = scheduler.decide(1, list(range(len(runs))), val).keep
    assert sorted(runs[i].run_id for i in keep) == sorted(r.run_id for r in runs if r.config.hp.learning_rate == 0.002)


def test_a_search_with_folds_keeps_every_fold_of_the_best_mean(tmp_path):
    out = run_sweep("digits_ae", str(tmp_path), overrides=QUIET, grid=["hp.learning_rate=0.0003,0.003,0.03"],
                    folds=3, search=SearchOptions("halving", eta=3, min_epochs=1), progress=False)
    assert out["ran"] == 9 and out["groups"] == 1
    with open(tmp_path / "search.json", encoding="utf-8") as f:
        kept = json.load(f)["decisions"]["1"]["kept"]
    first = {}
    for r in out["rows"]:
        with open(os.path.join(tmp_path, "runs", r["run_id"], "metrics.jsonl"), encoding="utf-8") as f:
            first.setdefault(r["hp.learning_rate"], []).append(json.loads(f.readline())["val/mse"])
    best = min(first, key=lambda lr: np.mean(first[lr]))
    assert sorted(kept) == sorted(r["run_id"] for r in out["rows"] if r["hp.learning_rate"] == best)
    assert len(kept) == 3
