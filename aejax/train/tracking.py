"""Optional experiment tracking through MLflow: `--set train.mlflow=True` (`pip install 'aejax[mlflow]'`).

A tracked run logs its flattened config as parameters, every metrics.jsonl record as metrics
at its step (while it trains), the final summary, the figures and report as artifacts, and
every later `aejax eval` of the same workdir (metrics under `eval/TASK/...`, the task's figures).
The MLflow run id is kept in WORKDIR/mlflow_run.json, so a resumed or extended run and its
evaluations continue the same MLflow run.

Where runs go (`train.mlflow_uri`): empty means $MLFLOW_TRACKING_URI when set, else a local file
store `./mlruns` in the directory the command runs in; a plain path means a local file store
there; any other URI (`http://...`, `databricks`, ...) is passed to MLflow as given. MLflow 3 keeps
its file store in maintenance mode behind `MLFLOW_ALLOW_FILE_STORE`; aejax sets that variable
(when unset) only when the chosen store is a local file store, which needs no server and no network.

Only the MLflow client is used (`mlflow.MlflowClient`, no fluent global run), so a sweep or a test
can track several runs in one process.
"""

from __future__ import annotations

import glob
import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aejax.errors import ConfigError

RUN_FILE = "mlflow_run.json"


def tracking_uri(uri: str = "") -> str:
    """The store a run logs to: `uri`, or $MLFLOW_TRACKING_URI, or file:<cwd>/mlruns; paths become file: URIs."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        return Path("mlruns").resolve().as_uri()
    if "://" in uri or uri.startswith("file:") or uri in ("databricks", "databricks-uc", "uc"):
        return uri
    return Path(uri).expanduser().resolve().as_uri()


def _client(uri: str):
    try:
        import mlflow
    except ImportError as e:
        raise ConfigError("train.mlflow=True needs MLflow, which is not installed; run "
                          "`pip install 'aejax[mlflow]'` or set train.mlflow=False.") from e
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the local store needs no server
    return mlflow.MlflowClient(tracking_uri=uri)


def flatten(tree: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}{sep}", sep))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def numeric_leaves(tree: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of a (nested) results dict, keyed by their '/'-joined paths (lists skipped)."""
    return {k: float(v) for k, v in flatten(tree, sep="/").items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}


def _metric_key(name: str) -> str:
    """MLflow keys allow letters, digits, '_', '-', '.', ' ', '/' and ':'; others become '_'."""
    return "".join(c if c.isalnum() or c in "_-. /:" else "_" for c in name)


class MlflowRun:
    """One MLflow run tied to one aejax workdir."""

    def __init__(self, client, run_id: str):
        self.client, self.run_id = client, run_id

    @classmethod
    def start(cls, workdir: str, *, uri: str, experiment: str, params: Mapping[str, Any],
              parent: MlflowRun | None = None) -> MlflowRun:
        """Continues the workdir's MLflow run when it has one in the same store, else creates one (nested
        under `parent`, a sweep's run, when given: MLflow's `mlflow.parentRunId` tag)."""
        uri = tracking_uri(uri)
        client = _client(uri)
        known = _read_json(os.path.join(workdir, RUN_FILE))
        if known is not None and known["uri"] == uri:
            client.update_run(known["run_id"], status="RUNNING")
            return cls(client, known["run_id"])
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else client.create_experiment(experiment)
        tags = {"aejax.workdir": os.path.abspath(workdir)}
        if parent is not None:
            tags["mlflow.parentRunId"] = parent.run_id
        created = client.create_run(experiment_id, run_name=os.path.basename(os.path.abspath(workdir)), tags=tags)
        run = cls(client, created.info.run_id)
        run.log_params(params)
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, RUN_FILE), "w", encoding="utf-8") as f:
            json.dump({"uri": uri, "run_id": run.run_id, "experiment": experiment}, f, indent=2)
        return run

    @classmethod
    def reopen(cls, workdir: str) -> MlflowRun | None:
        """The run a tracked training left in `workdir`, or None when it was not tracked."""
        known = _read_json(os.path.join(workdir, RUN_FILE))
        return None if known is None else cls(_client(known["uri"]), known["run_id"])

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = sorted(flatten(params).items())  # MLflow splits the batch at its limits; [:6000] spares its warning
        self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in items])

    def log_metrics(self, values: Mapping[str, float], *, step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(_metric_key(k), float(v), stamp, int(step))
                                                    for k, v in sorted(values.items())])

    def log_record(self, record: Mapping[str, Any]) -> None:
        """One metrics.jsonl record: its numbers at its step ("step" itself not logged)."""
        self.log_metrics({k: v for k, v in numeric_leaves(record).items() if k != "step"}, step=int(record["step"]))

    def log_files(self, paths: Iterable[str], artifact_path: str | None = None) -> None:
        for path in paths:
            if os.path.isfile(path):
                self.client.log_artifact(self.run_id, path, artifact_path)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


def _read_json(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def figures_in(workdir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(glob.escape(workdir), "figures", "*.png")))


def log_training_end(run: MlflowRun, workdir: str, summary: Mapping[str, Any], *, step: int) -> None:
    """The final summary's test metrics at the last step (train and validation came with each epoch),
    and summary.json, config.json, report.md and the figures as artifacts."""
    run.log_metrics({k: v for k, v in numeric_leaves(summary).items() if k.startswith("test/")}, step=step)
    run.log_files([os.path.join(workdir, n) for n in ("summary.json", "config.json", "report.md")])
    run.log_files(figures_in(workdir), "figures")
    run.finish()


def figure_times(workdir: str) -> dict[str, float]:
    """{figure path: modification time}: taken before an evaluation to find the figures it wrote."""
    return {p: os.path.getmtime(p) for p in figures_in(workdir)}


def log_evaluation(workdir: str, task: str, results: Mapping[str, Any], figures_before: Mapping[str, float]) -> bool:
    """Logs an evaluation into the workdir's MLflow run, if training was tracked; returns whether it was. Metrics
    go under `eval/TASK/...` at the last training step; eval_TASK.json, report.md and the figures it wrote (new or
    rewritten since `figures_before`) become artifacts."""
    run = MlflowRun.reopen(workdir)
    if run is None:
        return False
    step = int((_read_json(os.path.join(workdir, "summary.json")) or {}).get("steps", 0))
    run.log_metrics({f"eval/{task}/{k}": v for k, v in numeric_leaves(results).items()}, step=step)
    run.log_files([os.path.join(workdir, f"eval_{task}.json"), os.path.join(workdir, "report.md")])
    run.log_files([p for p, t in figure_times(workdir).items() if figures_before.get(p) != t], "figures")
    return True


def start_search_run(workdir: str, *, uri: str, experiment: str, sweep_experiment: str,
                     options: Mapping[str, Any] | None = None) -> MlflowRun:
    """A sweep's or search's own MLflow run (the parent of every member's run), its parameters the sweep's:
    `sweep.experiment`, `sweep.workdir` and `options` flattened under `search.` (e.g. {"scheduler": "pbt",
    "eta": 3, "space": {"hp.learning_rate": "loguniform(0.001, 0.03)"}, "sample": 9, "sampler": "sobol",
    "select": "val/mse"}). Continues the run a re-run of the same workdir left (WORKDIR/mlflow_run.json)."""
    sweep = {"experiment": sweep_experiment, "workdir": os.path.abspath(workdir)}
    return MlflowRun.start(workdir, uri=uri, experiment=experiment, params={"sweep": sweep, "search": options or {}})


def log_search_results(workdir: str, rows: Iterable[Mapping[str, Any]], *, best: Mapping[str, Any] | None,
                       select: str) -> bool:
    """After a sweep's results are collected, when the sweep was tracked (WORKDIR/mlflow_run.json): the parent
    run gets `best/<metric>` for the best run's val/* and test/* metrics, `runs/<status>` counts and the tags
    `aejax.best_run` and `aejax.select`; each tracked member's run the tag `aejax.status` (done, stopped by the
    search, failed, ...) and its `epochs` reached. Returns whether anything was logged."""
    parent = MlflowRun.reopen(workdir)
    if parent is None:
        return False
    counts: dict[str, float] = {}
    for row in rows:
        counts[f"runs/{row['status']}"] = counts.get(f"runs/{row['status']}", 0) + 1
        child = MlflowRun.reopen(os.path.join(workdir, "runs", row["run_id"]))
        if child is not None:
            child.client.set_tag(child.run_id, "aejax.status", row["status"])
            if isinstance(row.get("epochs"), int):
                child.client.set_tag(child.run_id, "aejax.epochs", str(row["epochs"]))
    best_metrics = {f"best/{k}": v for k, v in numeric_leaves(best or {}).items() if k.startswith(("val/", "test/"))}
    parent.log_metrics({**counts, **best_metrics}, step=0)
    parent.client.set_tag(parent.run_id, "aejax.select", select)
    if best is not None:
        parent.client.set_tag(parent.run_id, "aejax.best_run", best["run_id"])
    return True
