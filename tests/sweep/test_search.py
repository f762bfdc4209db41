"""Searches inside the population: successive halving and PBT decide between device calls, exactly, resumably."""

import json
import os

import jax
import numpy as np
import pytest
from conftest import digits_config

from aejax.cli import main
from aejax.errors import ConfigError
from aejax.sweep import run_sweep
from aejax.sweep.search import Halving, PopulationBasedTraining, SearchOptions, SearchState
from aejax.train import fit
from aejax.train.checkpoint import Checkpointer
from aejax.train.loop import Decision, train_population
from aejax.train.setup import setup_run

QUIET = {"train.figures": False, "train.tensorboard": False}
SPACE = {"hp.learning_rate": "loguniform(1e-3,3e-2)"}
HALVING = SearchOptions("halving", eta=3, min_epochs=2)


def _summary(workdir):
    return json.loads((workdir / "summary.json").read_text())


def test_halving_keeps_exactly_the_best_ceil_n_over_eta_ties_by_run_id(tmp_path):
    ids = [f"r{i}" for i in range(7)]
    halving = Halving(ids, HALVING, SearchState(str(tmp_path), HALVING), epochs=20)
    assert [halving.next_decision(e) for e in (0, 2, 5, 6, 17, 18)] == [2, 6, 6, 18, 18, None]
    val = np.array([0.5, 0.1, np.nan, 0.3, 0.1, 0.2, 0.9])  # planted: r1 and r4 tie, r2 diverged
    decision = halving.decide(2, list(range(7)), {"val/mse": val})
    assert decision.keep == [1, 4, 5]  # ceil(7 / 3) = 3: the two 0.1s (by run id), then 0.2
    higher = Halving(ids, SearchOptions("halving", eta=2, min_epochs=2, select="val/mse:max"),
                     SearchState(str(tmp_path / "b"), HALVING), epochs=20)
    assert higher.decide(2, [0, 3, 6], {"val/mse": val[[0, 3, 6]]}).keep == [6, 0]  # higher is better; ceil(3/2)


@pytest.fixture(scope="module")
def halving_search(tmp_path_factory):
    root = tmp_path_factory.mktemp("halving")
    out = run_sweep("digits_ae", str(root / "search"), overrides={**QUIET, "train.epochs": 7}, space=SPACE,
                    sample=9, sampler="sobol", search=HALVING, progress=False)
    return root, out


def test_a_halving_search_stops_two_thirds_at_each_rung_and_the_survivor_trains_as_alone(halving_search, tmp_path):
    root, out = halving_search
    rows = {r["run_id"]: r for r in out["rows"]}
    epochs = sorted((r["status"], r["epochs"]) for r in rows.values())
    assert epochs == [("done", 7)] + [("stopped", 2)] * 6 + [("stopped", 6)] * 2
    assert out["member_epochs"] == 6 * 2 + 2 * 6 + 7 and out["best"]["status"] == "done"
    winner = out["best"]
    alone = fit(digits_config(**{**QUIET, "train.epochs": 7, "hp.learning_rate": winner["hp.learning_rate"]}),
                str(tmp_path / "alone"))
    assert winner["test/mse"] == pytest.approx(alone["test/mse"], rel=1e-5)
    for run_id, row in rows.items():  # a stopped member keeps its checkpoint, records and summary
        workdir = root / "search" / "runs" / run_id
        assert Checkpointer(str(workdir / "checkpoints")).steps()[-1] == row["epochs"]
        assert len((workdir / "metrics.jsonl").read_text().splitlines()) == row["epochs"]
        assert _summary(workdir)["status"] == row["status"]
    assert (root / "search" / "figures" / "search.png").exists()
    assert {"rung", "epochs", "status"} <= set(open(root / "search" / "results.csv").readline().strip().split(","))


def test_a_killed_search_resumes_to_the_same_decisions_and_numbers(halving_search, tmp_path, monkeypatch):
    """Killed in the middle of the first rung's decision (the six losers summarized as stopped, the three
    survivors not yet saved, nothing recorded), then by a signal inside the next rung (during epoch 4's
    records): both resumes end where the uninterrupted search ended, with the same decisions."""
    import signal

    import aejax.train.loop as loop

    root, out = halving_search
    # one epoch per call, its records written before the next call: the signal below lands after epoch 4
    overrides = {**QUIET, "train.epochs": 7, "train.epochs_per_call": 1, "train.async_metrics": False}
    kwargs = dict(overrides=overrides, space=SPACE, sample=9, sampler="sobol", search=HALVING, progress=False)
    summarize = loop._Loop.summarize

    def killed_after_stopping(self, slots, *, status):
        summarize(self, slots, status=status)
        if status == "stopped":
            raise KeyboardInterrupt

    monkeypatch.setattr(loop._Loop, "summarize", killed_after_stopping)
    with pytest.raises(KeyboardInterrupt):
        run_sweep("digits_ae", str(tmp_path / "search"), **kwargs)
    monkeypatch.undo()
    write, calls = loop.MetricsWriter.write, {"n": 0}

    def signalling(self, record, **kwargs):
        write(self, record, **kwargs)
        calls["n"] += 1
        if record["epoch"] == 4 and calls["n"] % 3 == 0:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(loop.MetricsWriter, "write", signalling)
    with pytest.raises(loop.StopRequested, match="after epoch 4"):
        run_sweep("digits_ae", str(tmp_path / "search"), **kwargs)
    monkeypatch.undo()
    again = run_sweep("digits_ae", str(tmp_path / "search"), **kwargs)
    for a, b in zip(again["rows"], out["rows"]):
        assert (a["run_id"], a["status"], a["epochs"]) == (b["run_id"], b["status"], b["epochs"])
        assert a["test/mse"] == pytest.approx(b["test/mse"], rel=1e-6)


def test_a_pbt_exploit_copies_the_parents_state_exactly_and_applies_the_explore_factor(tmp_path):
    runs = [setup_run(digits_config(**{**QUIET, "train.epochs": 2, "seed": s, "hp.learning_rate": lr}))
            for s, lr in ((0, 1e-3), (1, 3e-3), (2, 1e-2))]

    class CopyOnce:
        def next_decision(self, epoch):
            return 1 if epoch < 1 else None

        def decide(self, end, members, val):
            return Decision(keep=members, copy_from={2: 0}, hp={2: {"learning_rate": 5e-4}})

        def commit(self, end):
            pass

    train_population(runs, [str(tmp_path / f"m{i}") for i in range(3)], scheduler=CopyOnce(), progress=False)
    target = runs[0].restore_target()
    parent, child = (Checkpointer(str(tmp_path / f"m{i}" / "checkpoints")).restore(1, target) for i in (0, 2))
    for a, b in zip(jax.tree_util.tree_leaves([parent["params"], parent["opt_state"], parent["step"]]),
                    jax.tree_util.tree_leaves([child["params"], child["opt_state"], child["step"]])):
        np.testing.assert_array_equal(a, b)  # the checkpoint after the decision: the parent's state, bitwise
    # the explore step: PBT multiplies the parent's value by a factor drawn from --perturb
    options = SearchOptions("pbt", ready_epochs=2, quantile=0.25, perturb=(0.5, 2.0))
    pbt = PopulationBasedTraining([f"r{i}" for i in range(4)], options, SearchState(str(tmp_path / "s"), options),
                                  epochs=10, hp=[{"hp.learning_rate": lr} for lr in (1e-3, 2e-3, 4e-3, 8e-3)],
                                  keys=["hp.learning_rate"])
    decision = pbt.decide(2, [0, 1, 2, 3], {"val/mse": np.array([0.4, 0.1, 0.3, 0.2])})
    assert decision.copy_from == {0: 1} and decision.keep == [0, 1, 2, 3]  # the worst takes the best's state
    factor = decision.hp[0]["learning_rate"] / 2e-3
    assert factor == pytest.approx(0.5) or factor == pytest.approx(2.0)


LR = ["--space", "hp.learning_rate=loguniform(1e-3,1e-1)"]


@pytest.mark.parametrize("argv, message", [
    (LR + ["--sample", "4", "--scheduler", "halving", "--eta", "1"], "--eta must be an integer >= 2"),
    (LR + ["--sample", "4", "--scheduler", "pbt", "--quantile", "0.7"], "--quantile must lie in (0, 0.5]"),
    (["--space", "model.code_size=choice(8,16)", "--sample", "4", "--scheduler", "pbt"],
     "its space may hold hp.* keys only"),
    (["--space", "hp.learning_rate=logunifrom(1e-3,1e-1)", "--sample", "4"], "did you mean 'loguniform'"),
    (LR, "a search space needs --sample N"),
    (LR + ["--sample", "4", "--sampler", "sobel"], "did you mean 'sobol'"),
])
def test_bad_searches_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    code = main(["sweep", "digits_ae", "--workdir", str(tmp_path / "s"), "--no-progress", "--set", "train.epochs=4",
                 *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_a_workdir_of_another_search_is_refused(halving_search):
    root, _ = halving_search
    with pytest.raises(ConfigError, match="holds a search with options"):
        run_sweep("digits_ae", str(root / "search"), overrides={**QUIET, "train.epochs": 7}, space=SPACE, sample=9,
                  sampler="sobol", search=SearchOptions("halving", eta=2, min_epochs=2), progress=False)
