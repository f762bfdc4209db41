"""Members that differ in their data train as one program (issue 29), each as it would alone.

One-class per class, cross-validation folds and nested training sizes are index tables over one dataset
(`aejax.data.subsets`): a population compiles one training program for all of them, a member that runs out
of batches does nothing in the extra steps, and each member's numbers equal the same run trained alone.
"""

import csv
import hashlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_retrace import compile_counts

from aejax.api import run_sweep as api_run_sweep
from aejax.cli import main
from aejax.config import get_experiment_config
from aejax.evaluate import evaluate_workdir
from aejax.sweep import run_sweep
from aejax.sweep.runner import plan_sweep
from aejax.train import fit
from aejax.train.setup import setup_run
from aejax.train.step import subset_batch_indices

QUIET = {"train.epochs": 2, "train.progress": False, "train.tensorboard": False, "train.figures": False,
         "train.checkpoint_every": 2}


def _summary(workdir):
    with open(os.path.join(workdir, "summary.json"), encoding="utf-8") as f:
        return json.load(f)


def _close(a, b, keys, rtol=1e-5):
    for k in keys:
        assert abs(a[k] - b[k]) <= rtol * abs(b[k]) + 1e-12, (k, a[k], b[k])


def _records(workdir):
    with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_padding_does_not_change_an_epochs_order():
    """The run's rows keyed by bits over the whole split: a table padded to a longer one gives the same batches."""
    key, rows = jax.random.key(3), jnp.asarray(np.sort(np.random.default_rng(0).choice(500, 70, replace=False)),
                                               jnp.int32)
    alone = subset_batch_indices(key, 4, rows, 70, num_rows=500, steps=70 // 16, batch_size=16)
    padded = jnp.concatenate([rows, jnp.full(50, rows[0], jnp.int32)])
    in_population = subset_batch_indices(key, 4, padded, 70, num_rows=500, steps=120 // 16, batch_size=16)
    np.testing.assert_array_equal(np.asarray(in_population[:70 // 16]), np.asarray(alone))
    assert set(np.asarray(alone).ravel()) <= set(np.asarray(rows).tolist())
    assert len(set(np.asarray(alone).ravel().tolist())) == (70 // 16) * 16  # no row twice in an epoch


@pytest.fixture(scope="module")
def oneclass(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("oneclass") / "sweep")
    with compile_counts() as counts:
        out = run_sweep("digits_oneclass", workdir, overrides=QUIET, progress=False)
    return workdir, out, dict(counts)


def test_ten_classes_train_as_one_program(oneclass):
    workdir, out, counts = oneclass
    assert out["ran"] == 10 and out["groups"] == 1
    epochs = {name: n for name, n in counts.items() if "epoch_fn" in name}
    assert sum(epochs.values()) == 1, counts  # one training program for the ten classes
    steps = {r["run_id"]: _summary(os.path.join(workdir, "runs", r["run_id"]))["steps"] for r in out["rows"]}
    assert len(set(steps.values())) > 1  # the classes differ in size: each member trained its own steps


def test_the_sweeps_one_class_table(oneclass):
    workdir, _, _ = oneclass
    table = evaluate_workdir(workdir, "anomaly", baselines=False)  # `aejax eval SWEEPDIR --task anomaly`
    assert [r["normal_class"] for r in table["rows"]] == list(range(10))
    assert abs(table["mean"]["autoencoder"] - np.mean([r["autoencoder"] for r in table["rows"]])) < 1e-12
    with open(os.path.join(workdir, "oneclass_table.md"), encoding="utf-8") as f:
        assert "| **mean** |" in f.read()


def test_a_standardized_dataset_restricted_per_class_still_splits_groups(tmp_path):
    """wine is re-standardized on each class's rows (other arrays): one population per class, each as alone."""
    out = run_sweep("wine_oneclass", str(tmp_path / "sweep"), overrides={**QUIET, "train.epochs": 3}, progress=False)
    assert out["ran"] == 3 and out["groups"] == 3
    fit(get_experiment_config("wine_oneclass", {**QUIET, "train.epochs": 3, "data.normal_class": 1}),
        str(tmp_path / "a"))
    a, b = _summary(tmp_path / "sweep" / "runs" / "normal_class=1"), _summary(tmp_path / "a")
    _close(a, b, [k for k in b if k.startswith(("val/", "train/", "test/"))])


def test_fmnist_oneclass_plans_one_group(tmp_path):
    runs = plan_sweep("fmnist_oneclass", str(tmp_path))
    assert len(runs) == 10 and len({r.structure for r in runs}) == 1


@pytest.mark.parametrize("normal_class", [1, 8])
def test_each_class_equals_the_class_trained_alone(oneclass, tmp_path, normal_class):
    workdir, _, _ = oneclass
    member = os.path.join(workdir, "runs", f"normal_class={normal_class}")
    alone = str(tmp_path / "alone")
    fit(get_experiment_config("digits_oneclass", {**QUIET, "data.normal_class": normal_class}), alone)
    a, b = _summary(member), _summary(alone)
    assert a["steps"] == b["steps"]  # the inactive steps left the member's step counter alone
    _close(a, b, [k for k in b if k.startswith(("val/", "train/", "test/"))])
    assert [r["step"] for r in _records(member)] == [r["step"] for r in _records(alone)]
    _close(_records(member)[-1], _records(alone)[-1], ["train/loss", "val/mse"])
    # the epoch's validation saw the member's own rows (its class): what the summary scores on them
    assert abs(_records(member)[-1]["val/mse"] - a["val/mse"]) <= 1e-6 * a["val/mse"]
    auroc = [evaluate_workdir(w, "anomaly", baselines=False)["test/auroc"] for w in (member, alone)]
    assert abs(auroc[0] - auroc[1]) <= 1e-5 and 0.0 < auroc[0] < 1.0


def test_folds_and_seeds_train_as_one_program_each_fold_as_alone(tmp_path):
    overrides = {**QUIET, "train.epochs": 1}
    with compile_counts() as counts:
        out = run_sweep("digits_ae", str(tmp_path / "sweep"), overrides=overrides, seeds=2, folds=5, progress=False)
    assert out["ran"] == 10 and out["groups"] == 1
    assert sum(n for name, n in counts.items() if "epoch_fn" in name) == 1, dict(counts)
    fit(get_experiment_config("digits_ae", {**overrides, "data.folds": 5, "data.fold": 3, "seed": 1}),
        str(tmp_path / "alone"))
    a, b = _summary(tmp_path / "sweep" / "runs" / "seed=1_fold=3"), _summary(tmp_path / "alone")
    _close(a, b, [k for k in b if k.startswith(("val/", "train/", "test/"))])
    with open(tmp_path / "sweep" / "results_folds.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["run_id"] for r in rows] == ["seed=0", "seed=1"] and all(r["folds"] == "5" for r in rows)
    vals = [r["val/mse"] for r in out["rows"] if r["seed"] == 1]
    assert abs(float(rows[1]["val/mse"]) - np.mean(vals)) < 1e-9
    assert abs(float(rows[1]["val/mse_se"]) - np.std(vals, ddof=1) / np.sqrt(5)) < 1e-9
    assert out["best"]["run_id"] in ("seed=0", "seed=1") and out["best"]["folds"] == 5


def test_a_fold_validates_on_its_own_fold(tmp_path):
    runs = [setup_run(get_experiment_config("digits_ae", {**QUIET, "data.folds": 4, "data.fold": k})) for k in (0, 1)]
    whole = runs[0].whole.train
    for run in runs:
        held = set(map(tuple, run.dataset.val.x.reshape(len(run.dataset.val), -1).round(6).tolist()))
        assert len(run.dataset.train) + len(run.dataset.val) == len(whole)
        assert not held & set(map(tuple, run.dataset.train.x.reshape(len(run.dataset.train), -1).round(6).tolist()))
        np.testing.assert_array_equal(run.dataset.val.x, whole.x[run.rows.val])


def test_training_sizes_are_one_program_with_nested_rows_and_a_curve(tmp_path):
    runs = plan_sweep("digits_ae", str(tmp_path), grid=["data.train_examples=100,200"], overrides=QUIET)
    setups = [setup_run(r.config) for r in runs]
    assert len({r.structure for r in runs}) == 1
    assert set(setups[0].rows.train.tolist()) <= set(setups[1].rows.train.tolist())
    out = api_run_sweep("digits_ae", str(tmp_path / "sweep"), overrides={**QUIET, "train.epochs": 1},
                        grid=["data.train_examples=100,200"], progress=False)
    assert out["groups"] == 1  # sizes of different step counts (and cosine schedules) in one program
    assert os.path.isfile(tmp_path / "sweep" / "figures" / "size_curve.png")
    with open(tmp_path / "sweep" / "size_curve.csv", encoding="utf-8") as f:
        curve = list(csv.DictReader(f))
    assert [int(r["train_examples"]) for r in curve] == [100, 200] and all(float(r["pca_test/mse"]) > 0 for r in curve)


@pytest.mark.parametrize("name", ["cosine", "linear", "warmup_cosine"])
def test_a_schedule_with_array_lengths_follows_optaxs(name):
    from aejax.train.optim import array_schedule, make_schedule

    reference = make_schedule(name, warmup_steps=7, decay_steps=40, final_fraction=0.1)
    arrays = array_schedule(name, warmup_steps=jnp.float32(7), decay_steps=jnp.float32(40), final_fraction=0.1)
    steps = np.arange(60)
    np.testing.assert_allclose([arrays(s) for s in steps], [reference(s) for s in steps], rtol=1e-5, atol=1e-6)


def _tree_hash(path):
    digest = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                digest.update(name.encode() + f.read())
    return digest.hexdigest()


@pytest.mark.parametrize("argv, message", [
    (["sweep", "digits_ae", "--folds", "1"], "--folds must be >= 2"),
    (["sweep", "digits_ae", "--folds", "3", "--set", "data.fold=1"], "drop them from --set"),
    (["sweep", "digits_ae", "--grid", "data.train_examples=100,5000"], "more than the 1257 training examples"),
    (["sweep", "digits_ae", "--grid", "data.train_examples=32,100"], "train.batch_size must lie in"),
    (["train", "digits_ae", "--set", "data.folds=5", "--set", "data.fold=5"], "data.fold must lie in"),
    (["train", "digits_ae", "--set", "data.train_examples=200", "--set", "data.on_device=False"],
     "set data.on_device=True"),
    (["sweep", "digits_ae", "--folds", "3", "--scheduler", "pbt", "--space", "hp.learning_rate=loguniform(1e-4,1e-2)",
      "--sample", "2"], "population-based training copies states"),
])
def test_bad_inputs_give_one_line_and_leave_the_workdir_as_it_was(tmp_path, capsys, argv, message):
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("kept")
    before = _tree_hash(workdir)
    code = main([*argv, "--workdir", str(workdir), "--set", "train.epochs=2", "--set", "train.progress=False"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert _tree_hash(workdir) == before
