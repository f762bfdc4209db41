"""Sweep results: one row per run in results.csv and results.md, figures per swept key, the best run."""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any, Sequence

import numpy as np

from aejax.errors import ConfigError


def read_run(workdir: str) -> dict[str, Any]:
    """{"status": "done" | "failed" | "pending", and the run's summary metrics when done}."""
    summary_path = os.path.join(workdir, "summary.json")
    failed_path = os.path.join(workdir, "failed.json")
    if os.path.isfile(summary_path):
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
        return {"status": "done", **{k: v for k, v in summary.items() if isinstance(v, (int, float))}}
    if os.path.isfile(failed_path):
        with open(failed_path, encoding="utf-8") as f:
            return {"status": "failed", "error": json.load(f)["error"]}
    return {"status": "pending"}


def collect(run_ids: Sequence[str], points: Sequence[dict], workdir: str) -> list[dict[str, Any]]:
    """One row per run: run id, status, each swept key, val/* and test/* metrics, wall time."""
    rows = []
    for run_id, point in zip(run_ids, points):
        result = read_run(os.path.join(workdir, "runs", run_id))
        metrics = {k: v for k, v in result.items() if k.startswith(("val/", "test/")) or k == "wall_time_s"}
        rows.append({"run_id": run_id, "status": result["status"], **point, **metrics})
    return rows


def parse_select(select: str) -> tuple[str, bool]:
    """"val/mse" -> ("val/mse", lower is better); "val/elbo:max" -> ("val/elbo", higher is better)."""
    metric, _, direction = select.partition(":")
    if direction not in ("", "min", "max"):
        raise ConfigError(f"--select takes METRIC or METRIC:min / METRIC:max, got {select!r}.")
    return metric, direction != "max"


def best_run(rows: Sequence[dict], select: str) -> dict | None:
    """The finished row with the best value of the selection metric (None when none has it)."""
    metric, lower = parse_select(select)
    scored = [r for r in rows if r["status"] == "done" and isinstance(r.get(metric), (int, float))
              and math.isfinite(r[metric])]
    if not scored:
        return None
    return (min if lower else max)(scored, key=lambda r: r[metric])


def write_tables(rows: Sequence[dict], swept: Sequence[str], workdir: str) -> tuple[str, str]:
    """DIR/results.csv and DIR/results.md."""
    metrics = sorted({k for r in rows for k in r if k.startswith(("val/", "test/"))})
    columns = ["run_id", "status", *swept, *metrics, "wall_time_s"]
    csv_path, md_path = os.path.join(workdir, "results.csv"), os.path.join(workdir, "results.md")
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _cell(row.get(c, "")) for c in columns})
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n")
        for row in rows:
            f.write("| " + " | ".join(_md(row.get(c, "")) for c in columns) + " |\n")
    return csv_path, md_path


def _cell(value: Any) -> Any:
    return repr(value) if isinstance(value, (tuple, list)) else value


def _md(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(_cell(value))


def metric_figures(rows: Sequence[dict], swept: Sequence[str], workdir: str) -> list[str]:
    """For each numeric swept key other than the seed, DIR/figures/vs_<key>.png: every val/* and
    test/* metric against the key's value, the mean and the spread (standard deviation) over the
    runs that share the value (seeds and the other swept keys)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["status"] == "done"]
    metrics = sorted({k for r in done for k, v in r.items() if k.startswith(("val/", "test/"))
                      and isinstance(v, (int, float))})
    paths = []
    out = os.path.join(workdir, "figures")
    for key in swept:
        values = [r.get(key) for r in done]
        if key == "seed" or not values or not metrics or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            continue
        xs = sorted(set(values))
        cols = min(4, len(metrics))
        nrows = -(-len(metrics) // cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 2.8 * nrows), squeeze=False)
        for ax, metric in zip(axes.flat, metrics):
            by_x = [[r[metric] for r in done if r.get(key) == x and isinstance(r.get(metric), (int, float))]
                    for x in xs]
            mean = np.array([np.mean(v) if v else np.nan for v in by_x])
            spread = np.array([np.std(v) if v else np.nan for v in by_x])
            ax.errorbar(xs, mean, yerr=spread, fmt="o-", capsize=3)
            if len(xs) > 2 and min(xs) > 0 and max(xs) / min(xs) >= 10:
                ax.set_xscale("log")
            ax.set_title(metric, fontsize=9)
            ax.set_xlabel(key, fontsize=8)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(metrics):]:
            ax.set_visible(False)
        counts = sorted({sum(r.get(key) == x for r in done) for x in xs})
        fig.suptitle(f"metrics vs {key}: mean and std over {'/'.join(map(str, counts))} runs per value", fontsize=10)
        fig.tight_layout()
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, f"vs_{key.replace('.', '_')}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
