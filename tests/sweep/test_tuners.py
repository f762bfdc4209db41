"""Optuna as the population's sampler (aejax.tune.rounds, `aejax sweep --sampler tpe|cmaes|gp|nsga2`)."""

import json
import math
import os
import subprocess
import sys

import pytest

from conftest import REPO

optuna = pytest.importorskip("optuna")

from aejax.cli import main  # noqa: E402
from aejax.errors import ConfigError  # noqa: E402
from aejax.tune import rounds as tuners  # noqa: E402
from aejax.sweep.space import parse_space  # noqa: E402
from aejax.train.metrics import read_metrics  # noqa: E402

QUIET = {"train.figures": False, "train.tensorboard": False, "train.progress": False}
LR = {"hp.learning_rate": "loguniform(1e-3,3e-2)"}


def last_val(workdir, metric="val/mse"):
    return [r[metric] for r in read_metrics(os.path.join(workdir, "metrics.jsonl")) if metric in r][-1]


def load(workdir):
    return optuna.load_study(study_name=os.path.basename(workdir), storage=tuners.default_storage(workdir))


def test_the_space_maps_to_optunas_distributions():
    d = optuna.distributions
    got = tuners.optuna_distributions(parse_space({
        "a": "uniform(0,1)", "b": "loguniform(1e-4,1e-1)", "c": "intuniform(1,8)", "d": "intloguniform(8,256)",
        "e": "choice(8,16,mlp)", "f": "choice((64,32),(128,64))"}))
    assert got == {"a": d.FloatDistribution(0.0, 1.0), "b": d.FloatDistribution(1e-4, 1e-1, log=True),
                   "c": d.IntDistribution(1, 8), "d": d.IntDistribution(8, 256, log=True),
                   "e": d.CategoricalDistribution([8, 16, "mlp"]),
                   "f": d.CategoricalDistribution(["(64, 32)", "(128, 64)"])}
    assert tuners.point_of({"f": "(128, 64)", "e": "mlp"}, {"e": "choice(8,16,mlp)", "f": "choice((64,32),(128,64))"}) \
        == {"e": "mlp", "f": (128, 64)}


def test_tpe_asks_a_batch_with_the_constant_liar():
    sampler = tuners.make_sampler("tpe", seed=0, batch=8, objectives=1)
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._constant_liar
    assert tuners.make_sampler("nsga2", seed=0, batch=8, objectives=2)._population_size == 8


def test_a_sampler_whose_package_is_missing_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cmaes", None)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cmaes" else real(name, *a))
    with pytest.raises(ConfigError, match="cmaes sampler needs the cmaes package.*pip install cmaes"):
        tuners.make_sampler("cmaes", seed=0, batch=8, objectives=1)


def test_tpe_rounds_tell_each_members_last_validated_value(tmp_path):
    """Two rounds of 4 on digits: 8 trials, each told its member's val/mse at its last epoch, with the member's run
    id and workdir as user attributes; the second batch's sampler saw the first batch's results."""
    workdir = str(tmp_path / "tpe")
    out = tuners.run_tuner("digits_ae", workdir, tuners.TunerOptions("tpe", 4, rounds=2), space=LR,
                           overrides={**QUIET, "train.epochs": 2}, progress=False)
    study = load(workdir)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 8
    assert out["batches"] == ["0000", "0004"] and out["ran"] == 8
    for t in study.trials:
        assert t.user_attrs["workdir"] == os.path.join(workdir, "batches", t.user_attrs["batch"], "runs",
                                                       t.user_attrs["run_id"])
        assert t.value == pytest.approx(last_val(t.user_attrs["workdir"]), rel=1e-12)
        assert sorted(t.intermediate_values) == [1, 2]
        with open(os.path.join(t.user_attrs["workdir"], "config.json")) as f:
            assert json.load(f)["hp"]["learning_rate"] == pytest.approx(t.params["hp.learning_rate"], rel=1e-6)
    text = open(os.path.join(workdir, "results.md")).read()
    assert f"Best by val/mse: trial {study.best_trial.number}" in text


def test_halving_inside_a_batch_reports_the_stopped_members_as_pruned(tmp_path):
    workdir = str(tmp_path / "halving")
    assert main(["sweep", "digits_ae", "--workdir", workdir, "--sampler", "tpe", "--sample", "4", "--space",
                 "hp.learning_rate=loguniform(1e-3,3e-2)", "--set", "train.epochs=3", "--scheduler", "halving",
                 "--eta", "2", "--min-epochs", "1", "--no-progress"]) == 0
    study = load(workdir)
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "PRUNED", "PRUNED", "PRUNED"]  # rungs 1 and 2: 4 -> 2 -> 1
    for t in study.trials:
        rung = t.user_attrs.get("stopped_at")
        if t.state.name == "PRUNED":
            assert sorted(t.intermediate_values) == list(range(1, rung + 1))
            assert t.intermediate_values[rung] == pytest.approx(last_val(t.user_attrs["workdir"]))
    assert sorted(t.user_attrs.get("stopped_at") for t in study.trials if t.state.name == "PRUNED") == [1, 1, 2]


def test_a_failed_member_is_told_as_a_failed_trial(tmp_path):
    study = optuna.create_study()
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    run = tmp_path / "run"
    run.mkdir()
    (run / "failed.json").write_text(json.dumps({"error": "training step 3 produced non-finite loss"}))
    state = tuners.tell_trial(study, trial._trial_id, [str(run)], tuners.TunerOptions("tpe", 1))
    assert state == "fail" and study.trials[0].state.name == "FAIL"
    assert "training step 3 produced non-finite loss" in study.trials[0].user_attrs["error"]


def test_a_killed_search_resumes_the_same_study(tmp_path):
    """The second batch trained but was not told (the process died): the same command takes over its RUNNING
    trials (their worker is dead), trains nothing again and tells them; no trial is lost or asked twice."""
    workdir = str(tmp_path / "resume")
    options = tuners.TunerOptions("tpe", 2, rounds=2)
    kw = dict(space=LR, overrides={**QUIET, "train.epochs": 2}, progress=False)
    from aejax.sweep import run_sweep

    def train_then_die(batch_dir, points):
        run_sweep("digits_ae", batch_dir, overrides=kw["overrides"], points=points, progress=False)
        if batch_dir.endswith("0002"):
            raise KeyboardInterrupt  # killed between training and telling

    with pytest.raises(KeyboardInterrupt):
        tuners.run_tuner("digits_ae", workdir, options, train_batch=train_then_die, **kw)
    study = load(workdir)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "RUNNING", "RUNNING"]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for t in study.trials[2:]:  # the worker that asked them is gone
        optuna.trial.Trial(study, t._trial_id).set_user_attr("worker", f"{tuners.worker_id().rsplit(':', 1)[0]}:"
                                                                      f"{dead.pid}")
    summaries = {t.number: os.path.getmtime(os.path.join(t.user_attrs["workdir"], "summary.json"))
                 for t in study.trials[2:]}
    out = tuners.run_tuner("digits_ae", workdir, options, **kw)
    study = load(workdir)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4 and out["batches"] == ["0002"]
    for t in study.trials[2:]:
        assert t.user_attrs["worker"] == tuners.worker_id()
        assert t.value == pytest.approx(last_val(t.user_attrs["workdir"]))
        assert os.path.getmtime(os.path.join(t.user_attrs["workdir"], "summary.json")) == summaries[t.number]


def test_two_processes_split_one_sqlite_study(tmp_path):
    """Two processes on one study: 4 batches of 2, each trained once, by both processes; the points and values
    equal one process's (TPE's random start-up: the batches are seeded by their first trial number)."""
    command = [sys.executable, "-m", "aejax.cli", "sweep", "digits_ae", "--sampler", "tpe", "--sample", "2",
               "--rounds", "4", "--space", "hp.learning_rate=loguniform(1e-3,3e-2)", "--set", "train.epochs=2",
               "--set", "train.figures=False", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": REPO}
    shared = str(tmp_path / "shared")
    procs = [subprocess.Popen(command + ["--workdir", shared], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    alone = str(tmp_path / "alone")
    subprocess.run(command + ["--workdir", alone], env=env, check=True, capture_output=True, timeout=600)
    study, single = load(shared), load(alone)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 8
    batches = {}
    for t in study.trials:
        batches.setdefault(t.user_attrs["batch"], set()).add(t.user_attrs["worker"])
    assert sorted(batches) == ["0000", "0002", "0004", "0006"] and all(len(w) == 1 for w in batches.values())
    assert len(set.union(*batches.values())) == 2  # both processes trained
    runs = [t.user_attrs["workdir"] for t in study.trials]
    assert len(set(runs)) == 8
    for run in runs:  # trained once: one record per epoch
        assert [r["epoch"] for r in read_metrics(os.path.join(run, "metrics.jsonl")) if "val/mse" in r] == [1, 2]
    got = sorted((t.params["hp.learning_rate"], t.value) for t in study.trials)
    want = sorted((t.params["hp.learning_rate"], t.value) for t in single.trials)
    assert [p for p, _ in got] == [p for p, _ in want] and len({p for p, _ in got}) == 8  # 8 distinct points
    assert all(abs(a - b) <= 1e-5 for (_, a), (_, b) in zip(got, want))


def test_two_objectives_write_the_pareto_front(tmp_path):
    workdir = str(tmp_path / "pareto")
    assert main(["sweep", "digits_sparse", "--workdir", workdir, "--sampler", "nsga2", "--sample", "6", "--space",
                 "hp.sparsity_weight=loguniform(1e-4,1)", "--space", "hp.learning_rate=loguniform(1e-3,1e-2)",
                 "--select", "val/mse", "--select", "val/mean_activation:min", "--set", "train.epochs=2",
                 "--set", "train.figures=False", "--no-progress"]) == 0
    study = load(workdir)
    members = {t.number: (last_val(t.user_attrs["workdir"]), last_val(t.user_attrs["workdir"], "val/mean_activation"))
               for t in study.trials}
    brute = {n for n, (a, b) in members.items()
             if not any(c <= a and d <= b and (c, d) != (a, b) for m, (c, d) in members.items() if m != n)}
    text = open(os.path.join(workdir, "results.md")).read()
    front = text.split("## Pareto front")[1].split("## Trials")[0]
    listed = {int(line.split("|")[1]) for line in front.splitlines() if line.startswith("| ") and "trial" not in line}
    assert listed == brute and f"({len(brute)} of 6 complete trials)" in front
    assert {t.number for t in study.best_trials} == brute
    assert os.path.isfile(os.path.join(workdir, "figures", "pareto.png"))


def test_pareto_front_against_brute_force():
    import random

    rng = random.Random(0)
    rows = [{"a": rng.random(), "b": rng.random(), "c": rng.choice([1.0, 2.0])} for _ in range(60)]
    front = tuners.pareto_front(rows, ["a", "b"], [True, False])
    brute = [r for r in rows if not any(o["a"] <= r["a"] and o["b"] >= r["b"] and (o["a"], o["b"]) != (r["a"], r["b"])
                                        for o in rows)]
    assert front == brute and 0 < len(front) < len(rows)


@pytest.mark.parametrize("argv, message", [
    (["--sampler", "tpee", "--sample", "2"], "did you mean 'tpe'?"),
    (["--sampler", "tpe", "--sample", "2", "--scheduler", "halving", "--select", "val/mse", "--select", "val/loss"],
     "--scheduler halving ranks members on one metric"),
    (["--sampler", "tpe", "--sample", "2", "--scheduler", "pbt"], "population-based training changes"),
    (["--sample", "2", "--scheduler", "pbt", "--select", "val/mse", "--select", "val/loss"],
     "--scheduler pbt ranks members on one metric"),
    (["--sampler", "cmaes", "--sample", "2", "--select", "val/mse", "--select", "val/loss"], "CMA-ES optimizes one"),
])
def test_refusals_are_one_line(tmp_path, capsys, argv, message):
    code = main(["sweep", "digits_ae", "--workdir", str(tmp_path / "w"), "--space",
                 "hp.learning_rate=loguniform(1e-3,3e-2)", "--set", "train.epochs=2", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not os.path.exists(tmp_path / "w" / "batches")


def test_without_optuna_the_options_say_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    code = main(["sweep", "digits_ae", "--workdir", str(tmp_path / "w"), "--sampler", "tpe", "--sample", "2",
                 "--space", "hp.learning_rate=loguniform(1e-3,3e-2)"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and 'pip install "aejax[tune]"' in err and len(err.splitlines()) == 1, err
    from aejax.tune import PruningCallback

    with pytest.raises(ConfigError, match=r'pip install "aejax\[tune\]"'):
        PruningCallback(object())
    assert main(["sweep", "digits_ae", "--workdir", str(tmp_path / "r"), "--sample", "1", "--space",
                 "hp.learning_rate=loguniform(1e-3,3e-2)", "--set", "train.epochs=1", "--no-progress"]) == 0


@pytest.mark.parametrize("sampler", tuners.TUNERS)
def test_every_optuna_sampler_asks_batches_within_the_space(tmp_path, sampler):
    """A stand-in trainer (val/mse a known function of the point) under each sampler: 3 batches of 4, each
    point inside the space, each trial told the value its member's records hold."""
    needs = tuners.SAMPLER_NEEDS.get(sampler)
    if needs is not None:
        pytest.importorskip(needs)
    space = {"hp.learning_rate": "loguniform(1e-4,1e-1)", "model.code_size": "intuniform(4,32)"}

    def fake_train(batch_dir, points):
        for point, (_, dirs) in zip(points, tuners._batch_members(points, None, batch_dir)):
            os.makedirs(dirs[0])
            value = (math.log10(point["hp.learning_rate"]) + 2.5) ** 2 + point["model.code_size"] / 100
            with open(os.path.join(dirs[0], "metrics.jsonl"), "w") as f:
                f.write(json.dumps({"epoch": 1, "step": 1, "val/mse": value, "val/loss": -value}) + "\n")
            with open(os.path.join(dirs[0], "summary.json"), "w") as f:
                json.dump({"status": "done", "epochs": 1}, f)

    selects = ("val/mse", "val/loss:max") if sampler == "nsga2" else ("val/mse",)
    out = tuners.run_tuner("digits_ae", str(tmp_path / sampler), tuners.TunerOptions(sampler, 4, rounds=3,
                           selects=selects), space=space, train_batch=fake_train)
    study = load(str(tmp_path / sampler))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 12 and out["batches"] == ["0000", "0004", "0008"]
    for t in study.trials:
        lr, size = t.params["hp.learning_rate"], t.params["model.code_size"]
        assert 1e-4 <= lr <= 1e-1 and 4 <= size <= 32 and isinstance(size, int)
        assert t.values[0] == pytest.approx((math.log10(lr) + 2.5) ** 2 + size / 100)



def _create(workdir, barrier, results):
    barrier.wait()  # every process imported: they create at the same moment
    try:
        tuners.create_study(workdir, tuners.TunerOptions("tpe", 2), {"search": "one"})
        results.put("ok")
    except Exception as error:  # noqa: BLE001 - the test reports which
        results.put(type(error).__name__)


def test_processes_that_start_together_create_one_study_without_colliding(tmp_path):
    """Eight processes creating one new SQLite study at the same moment (without the lock, about a third of them
    failed with IntegrityError or OperationalError here)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, results, workdir = ctx.Barrier(8), ctx.Queue(), str(tmp_path / "shared")
    procs = [ctx.Process(target=_create, args=(workdir, barrier, results)) for _ in range(8)]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert outcomes == ["ok"] * 8
    assert len(load(workdir).trials) == 0
