"""MLflow tracking (`train.mlflow=True`) against a temporary local file store: what a run and its evaluation log."""

import json
import os
import sys

import pytest

from aejax.errors import ConfigError
from aejax.evaluate import evaluate_workdir
from aejax import fit  # the training loop's, with the figures (aejax.api)
from aejax.train.metrics import read_metrics
from aejax.train.tracking import RUN_FILE, MlflowRun, tracking_uri
from tests.conftest import digits_config

mlflow = pytest.importorskip("mlflow")  # in the test extra; the skip only guards a bare install


def tracked_config(store, **overrides):
    return digits_config(**{"train.epochs": 2, "train.figures": True, "train.mlflow": True,
                            "train.mlflow_uri": str(store), "train.mlflow_experiment": "digits-test", **overrides})


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    """A 2-epoch digits run tracked into a local store, then resumed to 3 epochs and evaluated."""
    root = tmp_path_factory.mktemp("tracking")
    store, workdir = root / "mlruns", str(root / "run")
    first = fit(tracked_config(store), workdir)
    with open(os.path.join(workdir, RUN_FILE), encoding="utf-8") as f:
        run_id = json.load(f)["run_id"]
    final = fit(tracked_config(store, **{"train.epochs": 3}), workdir, extend=True)
    results = evaluate_workdir(workdir, "reconstruction")
    client = mlflow.MlflowClient(tracking_uri(str(store)))
    return {"store": store, "workdir": workdir, "first": first, "final": final, "run_id": run_id,
            "results": results, "client": client}


def test_params_metrics_and_figures_are_logged(tracked_run):
    client, run_id, workdir = tracked_run["client"], tracked_run["run_id"], tracked_run["workdir"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "digits-test"
    assert run.data.params["model.code_size"] == "16" and run.data.params["model.kind"] == "undercomplete"
    # every metrics.jsonl record, at its step, with its value
    records = read_metrics(os.path.join(workdir, "metrics.jsonl"))
    history = client.get_metric_history(run_id, "val/mse")
    assert [(m.step, m.value) for m in history] == [(r["step"], pytest.approx(r["val/mse"])) for r in records]
    assert len(history) == 3  # two epochs, then the extension's third, in the same MLflow run
    assert run.data.metrics["test/mse"] == pytest.approx(tracked_run["final"]["test/mse"])
    figures = {f.path for f in client.list_artifacts(run_id, "figures")}
    assert {"figures/reconstructions.png", "figures/curves.png"} <= figures
    assert {"summary.json", "config.json"} <= {f.path for f in client.list_artifacts(run_id)}


def test_evaluation_is_logged_into_the_same_run(tracked_run):
    client, run_id = tracked_run["client"], tracked_run["run_id"]
    metrics = client.get_run(run_id).data.metrics
    assert metrics["eval/reconstruction/test/mse"] == pytest.approx(tracked_run["results"]["test/mse"])
    assert metrics["eval/reconstruction/test/pca16_mse"] == pytest.approx(tracked_run["results"]["test/pca16_mse"])
    assert {"eval_reconstruction.json", "report.md"} <= {f.path for f in client.list_artifacts(run_id)}
    assert len(client.search_runs([client.get_run(run_id).info.experiment_id])) == 1  # resumed, not duplicated


def test_tracking_changes_no_result_and_an_untracked_run_logs_nothing(tracked_run, tmp_path):
    workdir = str(tmp_path / "plain")
    untracked = fit(digits_config(**{"train.epochs": 2, "train.figures": True}), workdir)
    assert untracked["test/mse"] == tracked_run["first"]["test/mse"]
    assert MlflowRun.reopen(workdir) is None and not os.path.exists(os.path.join(workdir, RUN_FILE))


def test_missing_mlflow_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    with pytest.raises(ConfigError, match=r"train.mlflow=True needs MLflow.*pip install 'aejax\[mlflow\]'"):
        fit(tracked_config(tmp_path / "mlruns"), str(tmp_path / "run"))


def test_store_locations():
    assert tracking_uri("/tmp/some store").startswith("file:///tmp/some%20store")
    assert tracking_uri("http://host:5000") == "http://host:5000"


def test_a_sweep_is_one_parent_mlflow_run_with_a_child_run_per_member(tmp_path):
    from aejax.sweep import run_sweep

    store = tmp_path / "mlruns"
    run_sweep("digits_ae", str(tmp_path / "sweep"), seeds=2, progress=False,
              overrides={"train.epochs": 1, "train.mlflow": True, "train.mlflow_uri": str(store),
                         "train.figures": False, "train.tensorboard": False})
    client = mlflow.MlflowClient(tracking_uri(str(store)))
    read = lambda path: json.loads((path / RUN_FILE).read_text())["run_id"]
    parent = read(tmp_path / "sweep")
    for member in ("seed=0", "seed=1"):
        child = client.get_run(read(tmp_path / "sweep" / "runs" / member))
        assert child.data.tags["mlflow.parentRunId"] == parent and child.info.status == "FINISHED"
        assert "test/mse" in child.data.metrics
    assert client.get_run(parent).info.status == "FINISHED"
