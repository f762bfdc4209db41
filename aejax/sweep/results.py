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
    """{"status": "done" | "stopped" | "paused" | "failed" | "pending", and the run's summary metrics}."""
    summary_path = os.path.join(workdir, "summary.json")
    failed_path = os.path.join(workdir, "failed.json")
    if os.path.isfile(summary_path):
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
        return {"status": summary.get("status", "done"),
                **{k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}}
    if os.path.isfile(failed_path):
        with open(failed_path, encoding="utf-8") as f:
            return {"status": "failed", "error": json.load(f)["error"]}
    return {"status": "pending"}


def set_status(workdir: str, status: str) -> None:
    """Rewrites the status in a run's summary.json (a search stopping a paused member)."""
    path = os.path.join(workdir, "summary.json")
    with open(path, encoding="utf-8") as f:
        summary = json.load(f)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({**summary, "status": status}, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def collect(run_ids: Sequence[str], points: Sequence[dict], workdir: str,
            search: dict[str, dict] | None = None) -> list[dict[str, Any]]:
    """One row per run: run id, status, epochs trained, each swept key, val/* and test/* metrics, wall time,
    and a search's columns (`search`: {run id: {"rung": ..., "parent": ...}})."""
    rows = []
    for run_id, point in zip(run_ids, points):
        result = read_run(os.path.join(workdir, "runs", run_id))
        metrics = {k: v for k, v in result.items() if k.startswith(("val/", "test/")) or k in ("wall_time_s", "epochs")}
        rows.append({"run_id": run_id, "status": result["status"], **point, **metrics, **(search or {}).get(run_id, {})})
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
    searched = [k for k in ("rung", "parent") if any(k in r for r in rows)]
    columns = ["run_id", "status", "epochs", *searched, *swept, *metrics, "wall_time_s"]
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


def search_figure(rows: Sequence[dict], workdir: str, decisions: dict[int, dict], *, metric: str) -> str:
    """DIR/figures/search.png: every member's validation `metric` against epochs (stopped members grey, PBT's
    exploits drawn as the jump to the parent's curve) and, for PBT, each searched hp against epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aejax.train.metrics import read_metrics

    pbt = any("parents" in d for d in decisions.values())
    hp_keys = sorted({k for d in decisions.values() for h in d.get("hp", {}).values() for k in h})
    fig, axes = plt.subplots(1, 1 + len(hp_keys), figsize=(5 * (1 + len(hp_keys)), 3.6), squeeze=False)
    ax = axes[0, 0]
    for i, row in enumerate(rows):
        records = [r for r in read_metrics(os.path.join(workdir, "runs", row["run_id"], "metrics.jsonl"))
                   if isinstance(r.get(metric), (int, float))]
        stopped = row["status"] == "stopped"
        ax.plot([r["epoch"] for r in records], [r[metric] for r in records], lw=1, alpha=0.5 if stopped else 0.9,
                color="0.6" if stopped else f"C{i % 10}", label=None if stopped else row["run_id"][:30])
        for end, d in decisions.items():
            if pbt and row["run_id"] in d.get("parents", {}):
                ax.axvline(end, color="0.85", lw=0.5, zorder=0)
    for end in decisions:
        if not pbt:
            ax.axvline(end, color="0.8", ls="--", lw=0.8, zorder=0)
    ax.set(xlabel="epoch", ylabel=metric, yscale="log",
           title=("PBT: exploits at the grey lines" if pbt else "successive halving: rungs dashed, stopped grey"))
    if sum(r["status"] != "stopped" for r in rows) <= 10:
        ax.legend(fontsize=6)
    for ax, key in zip(axes[0, 1:], hp_keys):
        for i, row in enumerate(rows):
            value, xs, ys = row.get(key), [0], []
            ys.append(value)
            for end in sorted(decisions):
                new = decisions[end].get("hp", {}).get(row["run_id"], {}).get(key)
                if new is not None:
                    xs.append(end)
                    ys.append(new)
            ax.step(xs + [max(decisions) + 1], ys + ys[-1:], where="post", lw=1, color=f"C{i % 10}")
        ax.set(xlabel="epoch", ylabel=key, yscale="log", title=f"{key} per member (explore steps)")
    fig.tight_layout()
    os.makedirs(os.path.join(workdir, "figures"), exist_ok=True)
    path = os.path.join(workdir, "figures", "search.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_hparams(rows: Sequence[dict], swept: Sequence[str], workdir: str) -> None:
    """TensorBoard's HParams summaries in DIR/tensorboard/: one entry per finished or stopped run, its swept
    values and its val/* and test/* metrics (the HParams dashboard's table and parallel coordinates)."""
    from tensorboardX import SummaryWriter

    def plain(v):
        return v if isinstance(v, (int, float, str, bool)) else repr(v)

    import shutil

    shutil.rmtree(os.path.join(workdir, "tensorboard"), ignore_errors=True)  # rebuilt whole, like the tables
    with SummaryWriter(os.path.join(workdir, "tensorboard")) as writer:
        for row in rows:
            metrics = {f"hparam/{k}": v for k, v in row.items()
                       if k.startswith(("val/", "test/")) and isinstance(v, (int, float))}
            if row["status"] in ("done", "stopped") and metrics:
                writer.add_hparams({k: plain(row.get(k)) for k in swept} | {"status": row["status"]}, metrics,
                                   name=row["run_id"])


def fold_rows(rows: Sequence[dict], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Cross-validation: one row per point (the swept `keys` but data.fold), with "folds" (finished folds of
    the point), each val/* and test/* metric's mean over them and its standard error ("<metric>_se":
    the sample standard deviation / sqrt(folds); NaN for one fold). "run_id" names the point; "status" is
    "done" when every fold finished. Test metrics are each fold model's score on the one test split."""
    points: dict[str, list[dict]] = {}
    for r in rows:
        points.setdefault(json.dumps({k: r.get(k) for k in keys}, sort_keys=True, default=repr), []).append(r)
    out = []
    for members in points.values():
        done = [r for r in members if r["status"] == "done"]
        metrics = sorted({k for r in done for k, v in r.items() if k.startswith(("val/", "test/"))
                          and isinstance(v, (int, float))})
        label = "_".join(f"{k.rsplit('.', 1)[-1]}={members[0].get(k)}" for k in keys) or "base"
        row = {"run_id": label, "status": "done" if len(done) == len(members) else "incomplete",
               "folds": len(done), **{k: members[0].get(k) for k in keys}}
        for m in metrics:
            values = np.asarray([r[m] for r in done if isinstance(r.get(m), (int, float))], np.float64)
            row[m] = float(values.mean())
            row[f"{m}_se"] = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")
        out.append(row)
    return out


def write_fold_tables(rows: Sequence[dict], workdir: str) -> tuple[str, str]:
    """DIR/results_folds.csv and DIR/results_folds.md: `fold_rows`' table."""
    lead = ["run_id", "status", "folds"]
    columns = lead + [k for k in dict.fromkeys(k for r in rows for k in r) if k not in lead]
    csv_path, md_path = os.path.join(workdir, "results_folds.csv"), os.path.join(workdir, "results_folds.md")
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _cell(row.get(c, "")) for c in columns})
    with open(md_path, "w", encoding="utf-8") as f:
        f.write("Each point's mean over its folds and the standard error (`_se`) of that mean; test columns average "
                "the fold models' scores on the one test split (no refit on the whole training split).\n\n")
        f.write("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n")
        for row in rows:
            f.write("| " + " | ".join(_md(row.get(c, "")) for c in columns) + " |\n")
    return csv_path, md_path
