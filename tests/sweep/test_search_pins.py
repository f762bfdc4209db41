"""Pins of the loop's and the searches' behaviour that results depend on, written against public behaviour
(`train_population` with a scheduler, `run_sweep`, `fit`, files in the workdir) so that they hold across a
rewrite of the loop: exploits keep the member's own keys (on the device and streamed), a stop during the last
call ends the run as done, PBT draws afresh at each decision, halving has no rung at train.epochs, after PBT the
results name the hp each member ended with, and the call-length rule at exactly twice the call length."""

import csv
import json
import os
import signal

import jax
import numpy as np
import pytest
from conftest import digits_config

from aejax.sweep import run_sweep
from aejax.sweep.search import SearchOptions
from aejax.train import fit
from aejax.train.checkpoint import Checkpointer
from aejax.train.loop import Decision, train_population
from aejax.train.setup import setup_run

QUIET = {"train.figures": False, "train.tensorboard": False, "train.progress": False}
ONE_BY_ONE = {"train.epochs_per_call": 1, "train.async_metrics": False}


def _records(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


class StopOneCopyOne:
    """At the end of epoch 1: member 0 stops (the population compacts to members 1 and 2) and member 2 takes member
    1's state (an exploit, no explore)."""

    def next_decision(self, epoch):
        return 1 if epoch < 1 else None

    def decide(self, end, members, val):
        return Decision(keep=[1, 2], copy_from={2: 1})

    def commit(self, end):
        pass


def _exploited(root, **feed):
    runs = [setup_run(digits_config(**{**QUIET, **ONE_BY_ONE, **feed, "train.epochs": 2, "seed": s,
                                       "train.checkpoint_every": 1})) for s in (0, 1, 2)]
    dirs = [root / f"m{i}" for i in range(3)]
    summaries = train_population(runs, [str(d) for d in dirs], scheduler=StopOneCopyOne(), progress=False)
    return runs, dirs, summaries


@pytest.fixture(scope="module")
def exploited(tmp_path_factory):
    return _exploited(tmp_path_factory.mktemp("device"))


def test_an_exploited_member_keeps_its_own_data_and_loop_keys(exploited):
    runs, (_, parent, child), summaries = exploited
    assert [s["status"] for s in summaries] == ["stopped", "done", "done"]
    target = runs[0].restore_target()
    after = [Checkpointer(str(d / "checkpoints")).restore(1, target) for d in (parent, child)]
    for a, b in zip(jax.tree_util.tree_leaves(after[0]["params"]), jax.tree_util.tree_leaves(after[1]["params"])):
        np.testing.assert_array_equal(a, b)  # the exploit happened: at epoch 1 the child holds the parent's state
    # the same state and hp from epoch 1 on: only the child's own keys (seed 2's data order and steps) differ
    epoch2 = [next(r for r in _records(d) if r["epoch"] == 2) for d in (parent, child)]
    assert epoch2[0]["train/loss"] != epoch2[1]["train/loss"]


def test_a_streamed_population_after_a_decision_uses_the_right_keys(exploited, tmp_path):
    """Streamed from the host, the compacted population (members 1 and 2 in slots 0 and 1) trains epoch 2 with
    each member's own keys, as on the device."""
    _, dirs, summaries = exploited
    _, streamed_dirs, streamed = _exploited(tmp_path, **{"data.on_device": False, "data.stream_chunk_steps": 4})
    for on_device, from_host in zip(dirs, streamed_dirs):
        a, b = _records(on_device), _records(from_host)
        assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
        for ra, rb in zip(a, b):
            for key in ("train/loss", "val/mse"):
                assert rb[key] == pytest.approx(ra[key], rel=1e-5), (from_host, key)
    assert [r["epoch"] for r in _records(dirs[1])] == [1, 2]
    for sa, sb in zip(summaries, streamed):
        assert sb["test/mse"] == pytest.approx(sa["test/mse"], rel=1e-5)


def test_a_stop_signal_during_the_last_device_call_ends_the_run_as_done(tmp_path, monkeypatch):
    import aejax.train.loop as loop

    run = setup_run(digits_config(**{**QUIET, **ONE_BY_ONE, "train.epochs": 3}))
    call, sent = loop.DeviceEpochs.__call__, []

    def signalling(self, state, epochs, due):  # SIGTERM as the last call (epoch 3) is dispatched
        if epochs.start == 2:
            sent.append(os.kill(os.getpid(), signal.SIGTERM))
        return call(self, state, epochs, due)

    monkeypatch.setattr(loop.DeviceEpochs, "__call__", signalling)
    [summary] = train_population([run], [str(tmp_path)], runs_axis=False, progress=False)
    assert sent and summary["status"] == "done" and summary["epochs"] == 3
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "done"


PBT_SEARCH = SearchOptions("pbt", ready_epochs=1, quantile=0.25, perturb=(0.5, 0.6, 0.7, 0.8, 1.25, 1.4, 1.6, 2.0))


@pytest.fixture(scope="module")
def pbt_search(tmp_path_factory):
    root = tmp_path_factory.mktemp("pbt") / "search"
    out = run_sweep("digits_ae", str(root), overrides={**QUIET, "train.epochs": 5},
                    space={"hp.learning_rate": "loguniform(1e-3,3e-2)"}, sample=4, sampler="sobol", search=PBT_SEARCH,
                    progress=False)
    return root, out


def test_pbt_results_hold_the_hp_each_member_trained_with_at_its_last_epoch(pbt_search):
    root, out = pbt_search
    decisions = json.loads((root / "search.json").read_text())["decisions"]
    sweep = json.loads((root / "sweep.json").read_text())
    trained = {r["run_id"]: r["point"]["hp.learning_rate"] for r in sweep["runs"]}
    started = dict(trained)
    for end in sorted(decisions, key=int):  # each decision's hp took effect for the epochs after it
        for member, hp in decisions[end]["hp"].items():
            trained[member] = hp["hp.learning_rate"]
    assert any(trained[i] != started[i] for i in trained)  # the search did explore
    with open(root / "results.csv", encoding="utf-8") as f:
        rows = {r["run_id"]: r for r in csv.DictReader(f)}
    assert {i: float(r["hp.learning_rate"]) for i, r in rows.items()} == trained
    assert {i: float(r["start:hp.learning_rate"]) for i, r in rows.items()} == started
    assert {r["run_id"]: r["hp.learning_rate"] for r in out["rows"]} == trained
    for run_id, lr in trained.items():  # each member's config.json: the hp it trained with at its last epoch
        assert json.loads((root / "runs" / run_id / "config.json").read_text())["hp"]["learning_rate"] == lr
    again = run_sweep("digits_ae", str(root), overrides={**QUIET, "train.epochs": 5}, progress=False, sample=4,
                      space={"hp.learning_rate": "loguniform(1e-3,3e-2)"}, sampler="sobol", search=PBT_SEARCH)
    assert again["ran"] == 0 and again["skipped"] == 4  # the same command finds the search done


def test_pbt_draws_afresh_at_each_decision_epoch(pbt_search):
    root, out = pbt_search
    decisions = json.loads((root / "search.json").read_text())["decisions"]
    assert sorted(decisions, key=int) == ["1", "2", "3", "4"]
    factors = [entry.split("x")[-1] for r in out["rows"] for entry in r["lineage"].split(";") if entry]
    assert len(factors) == 4 and len(set(factors)) > 1, factors  # one exploit per decision, not the same draw


def test_halving_has_no_rung_at_train_epochs_itself(tmp_path):
    out = run_sweep("digits_ae", str(tmp_path / "s"), overrides={**QUIET, "train.epochs": 4},
                    space={"hp.learning_rate": "loguniform(1e-3,3e-2)"}, sample=4, sampler="sobol",
                    search=SearchOptions("halving", eta=2, min_epochs=1), progress=False)
    decisions = json.loads((tmp_path / "s" / "search.json").read_text())["decisions"]
    assert sorted(int(k) for k in decisions) == [1, 2]  # rungs 1, 2; 4 is the end of training, not a rung
    assert sorted((r["status"], r["epochs"]) for r in out["rows"]) == [("done", 4), ("stopped", 1), ("stopped", 1),
                                                                        ("stopped", 2)]
    assert out["best"]["status"] == "done"  # the best run is a finished one, though stopped ones ranked too


@pytest.mark.parametrize("epochs, calls", [(7, [1, 1, 3, 2]), (6, [1] * 6)])
def test_the_call_length_rule_at_exactly_twice_the_call_length(tmp_path, monkeypatch, epochs, calls):
    """The call length is chosen when the second one-epoch call's records come in, counting the epochs from the
    second call's own on (until - 1): calls of 3 epochs when that count is at least 2 x 3. With 7 epochs it is
    6, exactly twice (long calls: 3, then the 2 left); with 6 it is 5 (one epoch per call to the end)."""
    import aejax.train.loop as loop

    seen = []
    feed = loop.DeviceEpochs.__call__
    monkeypatch.setattr(loop.DeviceEpochs, "__call__", lambda self, state, epochs_, due: (
        seen.append(len(epochs_)) or feed(self, state, epochs_, due)))
    monkeypatch.setattr(loop, "CALL_SECONDS", 1e6)
    monkeypatch.setattr(loop, "MAX_EPOCHS_PER_CALL", 3)
    monkeypatch.setattr(loop, "COMPILE_PAYBACK", 0.0)
    fit(digits_config(**{**QUIET, "train.epochs": epochs, "train.async_metrics": False,
                         "train.checkpoint_every": 100}), str(tmp_path))
    assert seen == calls
