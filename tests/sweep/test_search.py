"""Searches inside the population: successive halving and PBT decide between device calls, exactly, resumably."""

import json
import os

import jax
import numpy as np
import pytest
from conftest import REPO, digits_config

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
    failed = halving.decide(6, [0, 2, 3, 6], {"val/mse": np.array([np.nan, np.nan, 0.3, np.nan])})
    assert failed.keep == [3]  # ceil(4 / 3) = 2 would go on, but a member that failed never does
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
    summarize = loop.summarize

    def killed_after_stopping(team, slots, *, status):
        summarize(team, slots, status=status)
        if status == "stopped":
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "summarize", killed_after_stopping)
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
    # the explore step: PBT multiplies the parent's value by a factor drawn from --perturb (or resamples it)
    options = SearchOptions("pbt", ready_epochs=2, quantile=0.25, perturb=(0.5, 2.0))
    pbt = PopulationBasedTraining([f"r{i}" for i in range(4)], options, SearchState(str(tmp_path / "s"), options),
                                  epochs=10, hp=[{"hp.learning_rate": lr} for lr in (1e-3, 2e-3, 4e-3, 8e-3)],
                                  space={"hp.learning_rate": "loguniform(1e-4,1e-1)"})
    factors = []
    for end in range(2, 10, 2):  # several decisions: some multiply, some may resample
        decision = pbt.decide(end, [0, 1, 2, 3], {"val/mse": np.array([0.4, 0.1, 0.3, 0.2])})
        assert decision.copy_from == {0: 1} and decision.keep == [0, 1, 2, 3]  # the worst takes the best's state
        factor = pbt._pending[end]["factors"]["r0"]["hp.learning_rate"]
        parent = pbt.hp[1]["hp.learning_rate"]
        if factor is not None:
            assert factor in (0.5, 2.0) and decision.hp[0]["learning_rate"] == pytest.approx(parent * factor)
        factors.append(factor)
    assert any(f is not None for f in factors)


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


def test_a_diverging_member_of_a_search_over_two_populations_fails_alone_and_the_search_goes_on(tmp_path, capsys):
    """Halving over two populations (code sizes 8 and 16) whose lr=1e30 members go non-finite: they are ranked
    last and recorded as stopped at the rung, `failed` in the results; the others are ranked on val/mse across
    both populations; running the command again finds the search done."""
    argv = ["sweep", "digits_ae", "--workdir", str(tmp_path / "s"), "--grid", "hp.learning_rate=1e-3,3e-3,1e30",
            "--grid", "model.code_size=8,16", "--scheduler", "halving", "--eta", "3", "--min-epochs", "1",
            "--no-progress", *[a for k, v in {**QUIET, "train.epochs": 3}.items() for a in ("--set", f"{k}={v}")]]
    assert main(argv) == 4  # members failed
    status = {r.split(",")[0]: r.split(",")[1] for r in (tmp_path / "s" / "results.csv").read_text().splitlines()[1:]}
    assert status == {"learning_rate=0.001_code_size=8": "stopped", "learning_rate=0.003_code_size=8": "done",
                      "learning_rate=1e+30_code_size=8": "failed", "learning_rate=0.001_code_size=16": "stopped",
                      "learning_rate=0.003_code_size=16": "done", "learning_rate=1e+30_code_size=16": "failed"}
    decision = json.loads((tmp_path / "s" / "search.json").read_text())["decisions"]["1"]
    assert sorted(decision["kept"]) == ["learning_rate=0.003_code_size=16", "learning_rate=0.003_code_size=8"]
    assert {"learning_rate=1e+30_code_size=8", "learning_rate=1e+30_code_size=16"} <= set(decision["stopped"])
    capsys.readouterr()
    assert main(argv) == 4
    assert "aejax: ran 0 runs in 0 groups; 6 already finished" in capsys.readouterr().out


def test_a_sweeps_experiment_file_runs_once_and_each_runs_identity_is_checked_once(tmp_path, monkeypatch):
    import aejax.sweep.runner as runner
    import aejax.train.loop as loop

    experiment = tmp_path / "counted.py"
    experiment.write_text(f"open({str(tmp_path / 'executions')!r}, 'a').write('x')\n"
                          + open(os.path.join(REPO, "experiments", "digits_ae.py")).read())
    checked = []

    def counting(check):
        return lambda config, workdir, **kw: checked.append(os.path.basename(workdir)) or check(config, workdir, **kw)

    monkeypatch.setattr(runner, "check_run_identity", counting(runner.check_run_identity))
    monkeypatch.setattr(loop, "check_run_identity", counting(loop.check_run_identity))
    out = run_sweep(str(experiment), str(tmp_path / "s"), overrides={**QUIET, "train.epochs": 1},
                    grid=["hp.learning_rate=1e-3,3e-3", "model.code_size=8,16"], progress=False)
    assert out["ran"] == 4 and out["groups"] == 2
    assert (tmp_path / "executions").read_text() == "x"
    assert sorted(checked) == sorted(r["run_id"] for r in out["rows"])


def test_a_halving_search_killed_after_its_first_decision_resumes_byte_identical(halving_search, tmp_path,
                                                                                 monkeypatch):
    """Killed inside the first rung, after the decision's checkpoints and record, before the next device call:
    the resumed survivors run at the width the uninterrupted search ran at (4 slots for 3, the population's
    planned size 9 caps it, not the 3 it resumes with), so every member's metrics.jsonl is the same bytes and
    its summary.json the same numbers (all but the wall-clock timings)."""
    root, _ = halving_search
    commit = Halving.commit

    def killed_after_commit(self, end):
        commit(self, end)
        raise KeyboardInterrupt

    monkeypatch.setattr(Halving, "commit", killed_after_commit)
    kwargs = dict(overrides={**QUIET, "train.epochs": 7}, space=SPACE, sample=9, sampler="sobol", search=HALVING,
                  progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_sweep("digits_ae", str(tmp_path / "search"), **kwargs)
    monkeypatch.undo()
    run_sweep("digits_ae", str(tmp_path / "search"), **kwargs)
    for whole in sorted((root / "search" / "runs").iterdir()):
        resumed = tmp_path / "search" / "runs" / whole.name
        assert (resumed / "metrics.jsonl").read_bytes() == (whole / "metrics.jsonl").read_bytes(), whole.name
        untimed = [{k: v for k, v in _summary(d).items() if k not in ("wall_time_s", "perf/steps_per_s")}
                   for d in (resumed, whole)]
        assert untimed[0] == untimed[1], whole.name


def _tree_hash(root) -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("change, named", [({"sample": 8}, "sample: 9 there, 8 now"),
                                           ({"sampler": "halton"}, "sampler: 'sobol' there, 'halton' now"),
                                           ({"space": {"hp.learning_rate": "loguniform(1e-3,1e-2)"}}, "space: ")])
def test_a_search_workdir_holds_one_search_and_a_refusal_writes_nothing(halving_search, tmp_path, change, named):
    import shutil

    root, _ = halving_search
    shutil.copytree(root / "search", tmp_path / "search")
    before = _tree_hash(tmp_path / "search")
    kwargs = {**dict(overrides={**QUIET, "train.epochs": 7}, space=SPACE, sample=9, sampler="sobol", search=HALVING,
                     progress=False), **change}
    with pytest.raises(ConfigError, match=f"holds another search \\({named}.*a search workdir holds one search"):
        run_sweep("digits_ae", str(tmp_path / "search"), **kwargs)
    assert _tree_hash(tmp_path / "search") == before


def test_a_search_refused_for_a_bad_sampled_value_writes_nothing(tmp_path, capsys):
    argv = ["sweep", "digits_ae", "--sample", "4", "--scheduler", "halving", "--eta", "2", "--space",
            "hp.learning_rate=uniform(-1,1)", "--set", "train.epochs=4", "--workdir", str(tmp_path / "w"),
            "--no-progress"]
    assert main(argv) == 2
    assert "hp.learning_rate must be a positive number" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_a_search_over_two_populations_stopped_by_a_signal_mid_stretch_resumes_to_the_same_search(tmp_path,
                                                                                                monkeypatch):
    """SIGTERM while the second population trains toward the first rung, the first one already there (parked in
    host memory): both are saved where they stand; resumed, the first population must still be ranked at the
    rung, so the decisions and results equal the uninterrupted search's (a resumed search deletes checkpoints at or
    past its next undecided rung: the first population trains to the rung again, the same bits)."""
    import signal

    import aejax.train.loop as loop

    kwargs = dict(overrides={**QUIET, "train.epochs": 4, "train.epochs_per_call": 1, "train.async_metrics": False},
                  grid=["model.code_size=8,16"], space=SPACE, sample=3, sampler="sobol", search=HALVING,
                  progress=False)
    out = run_sweep("digits_ae", str(tmp_path / "whole"), **kwargs)
    write, sent = loop.MetricsWriter.write, []

    def signalling(self, record, **kw):
        write(self, record, **kw)
        if record["epoch"] == 1 and "code_size=16" in self.path and not sent:
            sent.append(os.kill(os.getpid(), signal.SIGTERM))

    monkeypatch.setattr(loop.MetricsWriter, "write", signalling)
    with pytest.raises(loop.StopRequested):
        run_sweep("digits_ae", str(tmp_path / "stopped"), **kwargs)
    monkeypatch.undo()
    steps = {d.name[d.name.index("code_size"):]: os.listdir(d / "checkpoints")
             for d in (tmp_path / "stopped" / "runs").iterdir()}
    assert steps == {"code_size=8": ["2"], "code_size=16": ["1"]}  # the first population at the rung, parked
    again = run_sweep("digits_ae", str(tmp_path / "stopped"), **kwargs)
    decisions = [json.loads((tmp_path / d / "search.json").read_text())["decisions"] for d in ("whole", "stopped")]
    assert decisions[1] == decisions[0] and decisions[0]["2"]["kept"]
    for a, b in zip(sorted(again["rows"], key=lambda r: r["run_id"]), sorted(out["rows"], key=lambda r: r["run_id"])):
        assert (a["run_id"], a["status"], a["epochs"]) == (b["run_id"], b["status"], b["epochs"])
        assert a["test/mse"] == pytest.approx(b["test/mse"], rel=1e-6)
