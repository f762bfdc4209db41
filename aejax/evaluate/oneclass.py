"""The one-class table of a sweep: every member's anomaly task, one row per normal class, and the mean.

`aejax eval SWEEPDIR --task anomaly [--option score=...]` (a sweep's workdir: it holds sweep.json) runs
the anomaly task (`aejax.evaluate.anomaly.anomaly_task`) on every finished member trained with
data.normal_class, against the whole test split as `aejax eval RUN --task anomaly` does for one run, and
writes SWEEPDIR/oneclass_table.md, oneclass_table.csv, oneclass_table.json and the table into
SWEEPDIR/report.md: the AUROC (or PR-AUC) of the autoencoder and of the PCA, Isolation Forest and one-class
SVM baselines per class (several members of one class, e.g. seeds, are averaged), and the mean over classes.
It is an evaluation step after the sweep, not part of it: the baselines cost more than a small member's
training and the score is the researcher's choice (`--option score=smoothed_mse`).
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any, Callable

import numpy as np

from aejax.errors import ConfigError

DETECTORS = (("autoencoder", ""), ("PCA recon.", "pca_"), ("PCA recon. smoothed", "pca_smoothed_"),
             ("Isolation Forest", "isolation_forest_"), ("one-class SVM", "ocsvm_"))


def is_sweep(workdir: str) -> bool:
    return os.path.isfile(os.path.join(workdir, "sweep.json"))


def oneclass_table(sweep_dir: str, evaluate_workdir: Callable[..., dict], *, metric: str = "auroc",
                   **options: Any) -> dict[str, Any]:
    """Runs the anomaly task (with `options`) on every finished one-class member of the sweep in `sweep_dir`
    through `evaluate_workdir` (`aejax.evaluate.evaluate_workdir`: each member's eval_anomaly.json and report.md
    as for one run) and writes the per-class table; returns {"rows": [{normal_class, members, detector: value}],
    "mean": {detector: value}, "metric", "score"}."""
    if metric not in ("auroc", "pr_auc"):
        raise ConfigError(f"metric must be auroc or pr_auc, got {metric!r}.")
    with open(os.path.join(sweep_dir, "sweep.json"), encoding="utf-8") as f:
        runs = [os.path.join(sweep_dir, "runs", r["run_id"]) for r in json.load(f)["runs"]]
    done = []
    for run in runs:
        path = os.path.join(run, "summary.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                if json.load(f).get("status", "done") == "done":
                    done.append(run)
    if not done:
        raise ConfigError(f"{sweep_dir} has no finished runs to score; train them with `aejax sweep`.")
    by_class: dict[int, list[dict]] = {}
    score = None
    for run in done:
        res = evaluate_workdir(run, "anomaly", **options)
        score = res["score"]
        by_class.setdefault(int(res["normal_class"]), []).append(res)
    rows = []
    for c in sorted(by_class):
        results = by_class[c]
        row = {"normal_class": c, "members": len(results)}
        for name, prefix in DETECTORS:
            key = f"test/{prefix}{metric}"
            if all(key in r for r in results):
                row[name] = float(np.mean([r[key] for r in results]))
        rows.append(row)
    names = [n for n, _ in DETECTORS if all(n in r for r in rows)]  # the smoothed PCA only for images
    mean = {n: float(np.mean([r[n] for r in rows])) for n in names}
    lines = ["| normal class | " + " | ".join(f"{n} {metric.upper()}" if i == 0 else n for i, n in enumerate(names))
             + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {r['normal_class']} | " + " | ".join(f"{r[n]:.4f}" for n in names) + " |" for r in rows]
    lines.append("| **mean** | " + " | ".join(f"**{mean[n]:.4f}**" for n in names) + " |")
    table = "\n".join(lines)
    text = (f"Autoencoder score `{score}`; {metric.upper()} on the whole test split (the normal class against every "
            f"other); baselines fitted on each member's own training rows; nothing chosen on test.\n\n{table}\n")
    with open(os.path.join(sweep_dir, "oneclass_table.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(sweep_dir, "oneclass_table.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["normal_class", "members", *names], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows + [{"normal_class": "mean", "members": len(done), **mean}])
    with open(os.path.join(sweep_dir, "oneclass_table.json"), "w", encoding="utf-8") as f:
        json.dump({"rows": rows, "mean": mean, "metric": metric, "score": score}, f, indent=2)
    with open(os.path.join(sweep_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(f"# One-class anomaly detection: {sweep_dir}\n\n{text}")
    return {"rows": rows, "mean": mean, "metric": metric, "score": score,
            **{f"mean/{n}": v for n, v in mean.items()}}


__all__ = ["DETECTORS", "is_sweep", "oneclass_table"]
