"""Sweeps: a vmapped member ends where the run alone ends; resume, shards, failures, devices."""

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from aejax.cli import main
from aejax.config import get_experiment_config
from aejax.errors import ConfigError
from aejax.sweep import collect_results, plan_sweep, run_sweep
from aejax.sweep.runner import groups_of
from aejax.train import fit

from conftest import REPO

QUIET = {"train.epochs": 2, "train.progress": False, "train.tensorboard": False, "train.figures": False,
         "train.checkpoint_every": 1}


def _summary(workdir):
    with open(os.path.join(workdir, "summary.json"), encoding="utf-8") as f:
        return json.load(f)


def _metrics(summary):
    return {k: v for k, v in summary.items() if k.startswith(("val/", "test/", "train/"))}


def _close(a, b, rtol):
    assert a.keys() == b.keys()
    for k in a:
        assert abs(a[k] - b[k]) <= rtol * abs(b[k]) + 1e-12, (k, a[k], b[k])


@pytest.mark.parametrize("experiment, grid, member, alone", [
    ("digits_ae", [], "seed=1", {"seed": 1}),
    ("digits_denoising", ["hp.noise_level=0.1,0.3"], "noise_level=0.3", {"hp.noise_level": 0.3}),
    ("digits_vae", ["hp.beta=1,2"], "beta=2", {"hp.beta": 2}),
])
def test_a_vmapped_member_ends_where_the_run_alone_ends(tmp_path, experiment, grid, member, alone):
    out = run_sweep(experiment, str(tmp_path / "sweep"), overrides=QUIET, grid=grid, seeds=None if grid else 2,
                    progress=False)
    assert out["ran"] == 2 and out["groups"] == 1
    fit(get_experiment_config(experiment, {**QUIET, **alone}), str(tmp_path / "alone"))
    swept = _summary(tmp_path / "sweep" / "runs" / member)
    _close(_metrics(swept), _metrics(_summary(tmp_path / "alone")), rtol=1e-5)
    for name in ("config.json", "metrics.jsonl", "checkpoints"):  # what `aejax train` writes
        assert (tmp_path / "sweep" / "runs" / member / name).exists()


def test_optimizer_values_vary_inside_one_vmapped_group(tmp_path):
    """Weight decay and Adam's b1 are injected as arrays: four runs, one program, each as it would be alone."""
    overrides = {**QUIET, "optim.name": "adamw", "optim.grad_clip": 1.0}
    out = run_sweep("digits_ae", str(tmp_path / "sweep"), overrides=overrides,
                    grid=["optim.weight_decay=1e-4,1e-1", "optim.b1=0.8,0.9"], progress=False)
    assert out["ran"] == 4 and out["groups"] == 1
    fit(get_experiment_config("digits_ae", {**overrides, "optim.weight_decay": 0.1, "optim.b1": 0.8}),
        str(tmp_path / "alone"))
    swept = _summary(tmp_path / "sweep" / "runs" / "weight_decay=0.1_b1=0.8")
    _close(_metrics(swept), _metrics(_summary(tmp_path / "alone")), rtol=1e-5)
    test_mse = {r["run_id"]: r["test/mse"] for r in out["rows"]}
    assert len(set(test_mse.values())) == 4  # the values reached the members: four different results


@pytest.fixture(scope="module")
def seeds_sweep(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("seeds") / "sweep"
    out = run_sweep("digits_ae", str(workdir), overrides=QUIET, grid=["hp.learning_rate=1e-3,3e-3"], seeds=2,
                    progress=False)
    return workdir, out


def test_results_table_and_best_run(seeds_sweep):
    workdir, out = seeds_sweep
    with open(workdir / "results.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["run_id"] for r in rows] == ["learning_rate=0.001_seed=0", "learning_rate=0.001_seed=1",
                                           "learning_rate=0.003_seed=0", "learning_rate=0.003_seed=1"]
    assert {"hp.learning_rate", "seed", "val/mse", "test/mse", "wall_time_s"} <= set(rows[0])
    best = min(rows, key=lambda r: float(r["val/mse"]))
    assert out["best"]["run_id"] == best["run_id"]
    assert (workdir / "results.md").read_text().count("| done |") == 4
    assert out["figures"] == [str(workdir / "figures" / "vs_hp_learning_rate.png")]


def test_a_killed_sweep_resumes_to_the_same_results(seeds_sweep, tmp_path):
    workdir, out = seeds_sweep
    copy = tmp_path / "sweep"
    shutil.copytree(workdir, copy)
    # as if killed in epoch 2 while saving: one member has a (torn) epoch-2 checkpoint, the others none; no summaries
    ahead = sorted(os.listdir(copy / "runs"))[0]
    for i, run in enumerate(sorted(os.listdir(copy / "runs"))):
        os.remove(copy / "runs" / run / "summary.json")
        if i:
            shutil.rmtree(copy / "runs" / run / "checkpoints" / "2")
    for p in (copy / "runs" / ahead / "checkpoints" / "2").rglob("*"):
        if p.is_file() and p.stat().st_size > 0 and "ocdbt" in str(p):
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    again = run_sweep("digits_ae", str(copy), overrides=QUIET, grid=["hp.learning_rate=1e-3,3e-3"], seeds=2,
                      progress=False)
    assert again["ran"] == 4
    for a, b in zip(again["rows"], out["rows"]):
        _close({k: a[k] for k in a if k.startswith("test/")}, {k: b[k] for k in b if k.startswith("test/")},
               rtol=1e-6)
    from aejax.evaluate import load_run

    assert load_run(str(copy / "runs" / ahead)).epoch == 2  # the torn checkpoint was replaced, not kept
    finished = run_sweep("digits_ae", str(copy), overrides=QUIET, grid=["hp.learning_rate=1e-3,3e-3"], seeds=2,
                         progress=False)
    assert finished["ran"] == 0 and finished["skipped"] == 4


def test_two_shards_merge_into_the_results_of_one_process(seeds_sweep, tmp_path):
    workdir, out = seeds_sweep
    for k in range(2):  # what two processes given --shard 0/2 and 1/2 run (in this one, to spare two imports)
        code = main(["sweep", "digits_ae", "--workdir", str(tmp_path / "sharded"), "--grid",
                     "hp.learning_rate=1e-3,3e-3", "--seeds", "2", "--shard", f"{k}/2", "--no-progress",
                     *[a for key, v in QUIET.items() for a in ("--set", f"{key}={v}")]])
        assert code == 0
    merged = collect_results(str(tmp_path / "sharded"))
    assert [r["run_id"] for r in merged["rows"]] == [r["run_id"] for r in out["rows"]]
    for a, b in zip(merged["rows"], out["rows"]):
        assert a["status"] == b["status"] == "done"
        _close({k: a[k] for k in a if k.startswith("test/")}, {k: b[k] for k in b if k.startswith("test/")},
               rtol=1e-6)


def test_a_diverging_member_fails_alone(tmp_path):
    out = run_sweep("digits_ae", str(tmp_path / "sweep"), overrides=QUIET, grid=["hp.learning_rate=1e-3,1e38"],
                    progress=False)
    status = {r["run_id"]: r["status"] for r in out["rows"]}
    assert status == {"learning_rate=0.001": "done", "learning_rate=1e+38": "failed"}
    failure = json.loads((tmp_path / "sweep" / "runs" / "learning_rate=1e+38" / "failed.json").read_text())
    assert "non-finite" in failure["error"]


def test_the_experiment_files_sweep_is_read_unless_grid_or_seeds_replace_it(tmp_path):
    runs = plan_sweep("digits_vae", str(tmp_path))
    assert [r.point for r in runs][:3] == [{"hp.beta": 0.5, "seed": 0}, {"hp.beta": 0.5, "seed": 1},
                                            {"hp.beta": 1.0, "seed": 0}]
    assert len(runs) == 8 and len(groups_of(runs)) == 1
    assert runs[2].config.hp.beta == 1.0 and runs[2].config.seed == 0
    assert [r.point for r in plan_sweep("digits_vae", str(tmp_path), seeds=2)] == [{"seed": 0}, {"seed": 1}]


def test_structural_keys_split_groups_and_bad_sweeps_are_clear(tmp_path):
    runs = plan_sweep("digits_ae", str(tmp_path), grid=["model.code_size=4,8"], seeds=2)
    assert [len(g) for g in groups_of(runs)] == [2, 2]
    with pytest.raises(ConfigError, match="did you mean 'hp.learning_rate'"):
        plan_sweep("digits_ae", str(tmp_path), grid=["hp.learning_rat=1,2"])
    with pytest.raises(ConfigError, match="the sweep is empty"):
        plan_sweep("digits_ae", str(tmp_path))
    with pytest.raises(ConfigError, match="holds int values"):
        plan_sweep("digits_ae", str(tmp_path), grid=["model.code_size=wide,narrow"])
    with pytest.raises(ConfigError, match="both swept and set"):
        plan_sweep("digits_ae", str(tmp_path), overrides={"seed": 3}, seeds=2)


@pytest.mark.slow
def test_a_sweep_sharded_over_eight_devices_equals_one_device(seeds_sweep, tmp_path):
    workdir, out = seeds_sweep
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    code = ("import jax, json, sys; assert jax.device_count() == 8; from aejax.sweep import run_sweep; "
            f"out = run_sweep('digits_ae', sys.argv[1], overrides={QUIET!r}, grid=['hp.learning_rate=1e-3,3e-3'], "
            "seeds=2, progress=False); print(json.dumps([r['test/mse'] for r in out['rows']]))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "eight")], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    eight = json.loads(proc.stdout.strip().splitlines()[-1])
    for a, b in zip(eight, [r["test/mse"] for r in out["rows"]]):
        assert abs(a - b) <= 1e-6 * b
