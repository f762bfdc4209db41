"""Sweep results: one row per run in results.csv and results.md, figures per swept key, the best run.

After population-based training a member's swept hp.* columns hold what it trained with at its last
epoch (its starting point from search.json's decisions replayed), `start:hp.KEY` its starting point
and `lineage` each exploit ("e4:PARENTx1.2": at epoch 4 it took PARENT's state and its hp times 1.2).
results.csv keeps sweep.json's order (row i is run i, so shards and re-collections diff cleanly);
results.md is for reading: sorted by status (done, stopped, paused, failed, pending) and then by the
`--select` metric, best first, with a stopped member's test metrics marked (they were measured at the
epoch it stopped, `test_at_epoch` in the csv).
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import os
import shutil
from typing import Any, Mapping, Sequence

import numpy as np

from aejax.errors import ConfigError


def read_json(path: str) -> Any:
    """The JSON value in `path`; None when there is no such file."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_run(workdir: str) -> dict[str, Any]:
    """{"status": "done" | "stopped" | "paused" | "failed" | "pending", and the run's summary metrics}."""
    if (summary := read_json(os.path.join(workdir, "summary.json"))) is not None:
        return {"status": summary.get("status", "done"), **{k: v for k, v in summary.items() if _number(v)}}
    failed = read_json(os.path.join(workdir, "failed.json"))
    return {"status": "pending"} if failed is None else {"status": "failed", "error": failed["error"]}


def collect(run_ids: Sequence[str], points: Sequence[dict], workdir: str, search: dict[str, dict]) -> list[dict]:
    """One row per run: run id, status, epochs trained, each swept key, val/* and test/* metrics, wall time, and
    the run's `search` columns ({run id: {column: value}}, `search_columns`: they replace the point's values)."""
    rows = []
    for run_id, point in zip(run_ids, points):
        result = read_run(os.path.join(workdir, "runs", run_id))
        metrics = {k: v for k, v in result.items() if k.startswith(("val/", "test/")) or k in ("wall_time_s", "epochs")}
        if any(k.startswith("test/") for k in metrics) and isinstance(metrics.get("epochs"), int):
            metrics["test_at_epoch"] = metrics["epochs"]
        rows.append({"run_id": run_id, "status": result["status"], **point, **metrics, **search.get(run_id, {})})
    return rows


# The direction of a metric, by its term (the part after the last "/", else that part's last "_" word):
# "val/elbo" higher, "val/recon" and "val/disc_loss" lower. `--select METRIC:min|max` overrides it.
HIGHER = frozenset({"elbo", "auroc", "auc", "auprc", "ap", "psnr", "ssim", "accuracy", "acc", "rank1", "rank5",
                    "precision", "recall", "f1", "r2", "likelihood", "loglik", "log_likelihood", "iou", "dice"})
LOWER = frozenset({"mse", "rmse", "mae", "loss", "nll", "kl", "eer", "recon", "error", "err", "bpd", "fid",
                   "penalty", "sparsity", "fro2", "l1"})


def direction(metric: str) -> bool | None:
    """True when lower is better, False when higher is, None when aejax does not know (see HIGHER, LOWER)."""
    term = metric.rsplit("/", 1)[-1].lower()
    for name in (term, term.rsplit("_", 1)[-1]):
        if name in LOWER or name in HIGHER:
            return name in LOWER
    return None


def parse_select(select: str) -> tuple[str, bool]:
    """"val/mse" -> ("val/mse", True: lower is better); "val/elbo" -> ("val/elbo", False); a ":min" or ":max"
    suffix decides (e.g. "val/active_dims:max"). A metric whose direction aejax does not know needs one (a
    ConfigError in one line), unless its term is close to a known one (a typo: left to the name check's "did
    you mean", which follows)."""
    metric, _, suffix = str(select).partition(":")
    if suffix not in ("", "min", "max"):
        raise ConfigError(f"--select takes METRIC or METRIC:min / METRIC:max, got {select!r}.")
    if suffix:
        return metric, suffix == "min"
    lower = direction(metric)
    if lower is None:
        term = metric.rsplit("/", 1)[-1].lower()
        close = difflib.get_close_matches(term, sorted(HIGHER | LOWER), n=1, cutoff=0.75)
        if not close:
            raise ConfigError(f"--select {select!r}: aejax does not know whether higher or lower {metric} is better; "
                              f"add :min or :max (--select {metric}:min).")
        lower = close[0] in LOWER
    return metric, lower


_STATUS_ORDER = {"done": 0, "stopped": 1, "paused": 2, "failed": 3, "pending": 4}


def best_run(rows: Sequence[dict], select: str) -> dict | None:
    """The finished row with the best value of the selection metric (None when none has it)."""
    metric, lower = parse_select(select)
    scored = [r for r in rows if r["status"] == "done" and isinstance(r.get(metric), (int, float))
              and math.isfinite(r[metric])]
    return (min if lower else max)(scored, key=lambda r: r[metric], default=None)


def ordered(rows: Sequence[dict], select: str) -> list[dict]:
    """Rows by status (done, stopped, paused, failed, pending), then by `select`'s metric, best first (rows
    without a finite value last), then by run id."""
    metric, lower = parse_select(select)

    def key(row):
        value = row.get(metric)
        finite = _number(value) and math.isfinite(value)
        return (_STATUS_ORDER.get(row["status"], 5), not finite, (value if lower else -value) if finite else 0.0,
                row["run_id"])

    return sorted(rows, key=key)


def write_tables(rows: Sequence[dict], swept: Sequence[str], workdir: str, *, select: str) -> tuple[str, str]:
    """DIR/results.csv (sweep order) and DIR/results.md (sorted: `ordered`; a stopped member's test metrics
    marked with a footnote)."""
    metrics = sorted({k for r in rows for k in r if k.startswith(("val/", "test/"))})
    searched = [k for k in ("rung", "parent", "lineage") if any(k in r for r in rows)]
    starts = sorted({k for r in rows for k in r if k.startswith("start:")})
    tested = ["test_at_epoch"] if any("test_at_epoch" in r for r in rows) else []
    columns = ["run_id", "status", "epochs", *searched, *swept, *starts, *metrics, *tested, "wall_time_s"]

    def cell(row, c):  # a test metric measured when the search stopped the member gets a "*"
        text = _md(row.get(c, ""))
        return text + "*" if text and c.startswith("test/") and row["status"] != "done" else text

    table = [[cell(row, c) for c in columns] for row in ordered(rows, select)]
    foot = "\n\\* measured when the search stopped the member, at the epoch in `epochs`, not after train.epochs.\n"
    marked = any(cell(row, c) != _md(row.get(c, "")) for row in rows for c in metrics)
    return _write_table(workdir, "results", rows, columns, table, foot=foot if marked else "")


def _cell(value: Any) -> Any:
    return repr(value) if isinstance(value, (tuple, list)) else value


def _md(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(_cell(value))


def metric_figures(rows: Sequence[dict], swept: Sequence[str], workdir: str) -> list[str]:
    """For each numeric swept key other than the seed, DIR/figures/vs_<key>.png: every val/* and test/* metric
    against the key's value. Finished runs: the mean and the spread (standard deviation) over the runs that share
    the value (seeds and the other swept keys); stopped runs: each alone, hollow grey (value when stopped)."""
    from matplotlib.figure import Figure

    shown = [r for r in rows if r["status"] in ("done", "stopped")]
    done = [r for r in shown if r["status"] == "done"]
    stopped = [r for r in shown if r["status"] == "stopped"]
    metrics = sorted({k for r in shown for k, v in r.items() if k.startswith(("val/", "test/"))
                      and isinstance(v, (int, float))})
    paths = []
    out = os.path.join(workdir, "figures")
    for key in swept:
        values = [r.get(key) for r in shown]
        if key == "seed" or not values or not metrics or not all(map(_number, values)):
            continue
        xs = sorted({r.get(key) for r in done})
        cols = min(4, len(metrics))
        nrows = -(-len(metrics) // cols)
        fig = Figure(figsize=(3.6 * cols, 2.8 * nrows))
        axes = fig.subplots(nrows, cols, squeeze=False)
        for ax, metric in zip(axes.flat, metrics):
            by_x = [[r[metric] for r in done if r.get(key) == x and isinstance(r.get(metric), (int, float))]
                    for x in xs]
            if xs:
                mean = np.array([np.mean(v) if v else np.nan for v in by_x])
                spread = np.array([np.std(v) if v else np.nan for v in by_x])
                ax.errorbar(xs, mean, yerr=spread, fmt="o-", capsize=3, label="finished")
            early = [(r[key], r[metric]) for r in stopped if isinstance(r.get(metric), (int, float))]
            if early:
                ax.plot(*zip(*early), "o", mfc="none", color="0.55", ms=5, label="stopped (at the epoch reached)")
            if len(set(values)) > 2 and min(values) > 0 and max(values) / min(values) >= 10:
                ax.set_xscale("log")
            ax.set_title(metric, fontsize=9)
            ax.set_xlabel(key, fontsize=8)
            ax.grid(alpha=0.3)
        if stopped:
            axes.flat[0].legend(fontsize=6)
        for ax in list(axes.flat)[len(metrics):]:
            ax.set_visible(False)
        counts = sorted({sum(r.get(key) == x for r in done) for x in xs})
        title = f"metrics vs {key}: mean and std over {'/'.join(map(str, counts)) or 0} finished runs per value"
        fig.suptitle(title + (f"; {len(stopped)} stopped runs alone" if stopped else ""), fontsize=10)
        fig.tight_layout()
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, f"vs_{key.replace('.', '_')}.png")
        fig.savefig(path, dpi=90)
        paths.append(path)
    return paths


def search_figure(rows: Sequence[dict], workdir: str, decisions: dict[int, dict], *, metric: str) -> str:
    """DIR/figures/search.png: every member's validation `metric` against epochs (stopped members grey, PBT's
    exploits drawn as the jump to the parent's curve) and, for PBT, each searched hp against epochs."""
    from matplotlib.figure import Figure

    from aejax.train.metrics import read_metrics

    pbt = any("parents" in d for d in decisions.values())
    hp_keys = sorted({k for d in decisions.values() for h in d.get("hp", {}).values() for k in h})
    fig = Figure(figsize=(5 * (1 + len(hp_keys)), 3.6))
    axes = fig.subplots(1, 1 + len(hp_keys), squeeze=False)
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
            xs, ys = [0], [row.get(f"start:{key}", row.get(key))]  # PBT: hp.* columns hold the last
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
    return path


def write_hparams(rows: Sequence[dict], swept: Sequence[str], workdir: str) -> None:
    """TensorBoard's HParams summaries in DIR/tensorboard/ (the dashboard's table and parallel coordinates): per
    finished or stopped run its swept values, after PBT also its start:hp.* point, and its val/* and test/* metrics."""
    from tensorboardX import SummaryWriter

    def plain(v):
        return v if isinstance(v, (int, float, str, bool)) else repr(v)

    shutil.rmtree(os.path.join(workdir, "tensorboard"), ignore_errors=True)  # rebuilt whole, like the tables
    starts = sorted({k for r in rows for k in r if k.startswith("start:")})  # PBT: the swept keys hold the last hp
    with SummaryWriter(os.path.join(workdir, "tensorboard")) as writer:
        for row in rows:
            metrics = {f"hparam/{k}": v for k, v in row.items()
                       if k.startswith(("val/", "test/")) and isinstance(v, (int, float))}
            if row["status"] in ("done", "stopped") and metrics:
                writer.add_hparams({k: plain(row.get(k)) for k in [*swept, *starts]} | {"status": row["status"]},
                                   metrics, name=row["run_id"])


def collect_results(workdir: str, *, select: str = "val/mse") -> dict[str, Any]:
    """Rebuilds DIR/results.csv, results.md and the figures from DIR/sweep.json and every run's outputs
    (what `aejax sweep DIR --collect` does after the shards of a cluster array job); with MLflow, the sweep's
    run gets the best metrics and each member's run its status (`tracking.log_search_results`)."""
    if (sweep := read_json(os.path.join(workdir, "sweep.json"))) is None:
        raise ConfigError(f"{workdir} has no sweep.json; pass the --workdir of an `aejax sweep`.")
    ids = [r["run_id"] for r in sweep["runs"]]
    points = [{k: tuple(v) if isinstance(v, list) else v for k, v in r["point"].items()} for r in sweep["runs"]]
    search = read_json(os.path.join(workdir, "search.json"))  # a search's decisions, by epoch end
    decisions = None if search is None else {int(k): v for k, v in search["decisions"].items()}
    rows = collect(ids, points, workdir, search=search_columns(decisions, ids, points))
    csv_path, md_path = write_tables(rows, sweep["swept"], workdir, select=select)
    figures = metric_figures(rows, sweep["swept"], workdir)
    if decisions is not None:
        figures.append(search_figure(rows, workdir, decisions, metric=parse_select(select)[0]))
    write_hparams(rows, sweep["swept"], workdir)
    best = best_run(rows, select)
    from aejax.train.tracking import log_search_results

    log_search_results(workdir, rows, best=best, select=select)
    out = {"rows": rows, "best": best, "select": select, "results_csv": csv_path, "results_md": md_path,
           "figures": figures}
    if "data.fold" in sweep["swept"]:  # cross-validation: each point's fold mean and standard error, ranked by it
        folded = fold_rows(rows, [k for k in sweep["swept"] if k != "data.fold"])
        out["folds_csv"], out["folds_md"] = write_fold_tables(folded, workdir)
        out["fold_rows"], out["best"] = folded, best_run(folded, select)
    return out


def search_columns(decisions: dict[int, dict] | None, ids: Sequence[str], points: Sequence[Mapping]) -> dict[str, dict]:
    """A search's results columns: halving's `rung` (the last rung a member was ranked at); PBT's `parent` (the
    member it last took its state from; "" when it never did) and, from the members' starting `points`,
    `pbt_history`'s last hp (as the hp.* columns), `start:hp.*` and `lineage`."""
    if not decisions:
        return {}
    if any("parents" in d for d in decisions.values()):
        parents = {i: "" for i in ids} | {member: parent for end in sorted(decisions)
                                          for member, parent in decisions[end]["parents"].items()}
        history = pbt_history(decisions, ids, points)
        return {i: {"parent": p, **history.get(i, {})} for i, p in parents.items()}
    rungs = {i: end for end in sorted(decisions) for i in decisions[end]["kept"] + decisions[end]["stopped"]}
    return {i: {"rung": rungs.get(i, "")} for i in ids}


def pbt_history(decisions: Mapping[int, dict], ids: Sequence[str],
                points: Sequence[Mapping[str, Any]]) -> dict[str, dict]:
    """Each PBT member's hp at its last epoch, its starting point and its lineage, from search.json's decisions:
    {run id: {"hp.KEY": last value, "start:hp.KEY": first value, "lineage": "e4:PARENTx1.2;e8:..."}}. A lineage
    entry is the decision's epoch, the parent and per explored key (sorted) its factor "x1.2" or, where it was
    resampled or stepped, "=VALUE"; without any "factors" in the record (before they were recorded, every explore
    multiplied) the factor is the ratio to the parent's value at that decision."""
    hp = {i: {k: v for k, v in p.items() if k.startswith("hp.")} for i, p in zip(ids, points)}
    start = {i: dict(h) for i, h in hp.items()}
    lineage: dict[str, list[str]] = {i: [] for i in ids}
    derive = not any("factors" in d for d in decisions.values())
    for end in sorted(decisions):
        decision, before = decisions[end], {i: dict(h) for i, h in hp.items()}
        for member, parent in sorted(decision.get("parents", {}).items()):
            new = decision.get("hp", {}).get(member, {})
            factors = dict(decision.get("factors", {}).get(member, {}))
            if derive:
                factors = {k: v / before[parent][k] for k, v in new.items()
                           if _number(v) and _number(before.get(parent, {}).get(k)) and before[parent][k] != 0}
            hp.setdefault(member, {}).update(new)
            steps = [f"x{factors[k]:.4g}" if factors.get(k) is not None else f"={_md(new[k])}" for k in sorted(new)]
            lineage.setdefault(member, []).append(f"e{end}:{parent}" + ",".join(steps))
    return {i: {**hp[i], **{f"start:{k}": v for k, v in start.get(i, {}).items()}, "lineage": ";".join(lineage[i])}
            for i in ids}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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


def _write_table(workdir: str, name: str, rows: Sequence[dict], columns: Sequence[str], table: Sequence[list[str]],
                 *, head: str = "", foot: str = "") -> tuple[str, str]:
    """DIR/<name>.csv (`rows`) and DIR/<name>.md: `head`, the markdown cells `table`, `foot`."""
    csv_path, md_path = os.path.join(workdir, f"{name}.csv"), os.path.join(workdir, f"{name}.md")
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({c: _cell(row.get(c, "")) for c in columns} for row in rows)
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(head + "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n")
        f.writelines("| " + " | ".join(cells) + " |\n" for cells in table)
        f.write(foot)
    return csv_path, md_path


def write_fold_tables(rows: Sequence[dict], workdir: str) -> tuple[str, str]:
    """DIR/results_folds.csv and DIR/results_folds.md: `fold_rows`' table."""
    lead = ["run_id", "status", "folds"]
    columns = lead + [k for k in dict.fromkeys(k for r in rows for k in r) if k not in lead]
    return _write_table(workdir, "results_folds", rows, columns, [[_md(r.get(c, "")) for c in columns] for r in rows],
                        head="Each point's mean over its folds and the standard error (`_se`) of that mean; test "
                        "columns average the fold models' scores on the one test split (no refit on the whole "
                        "training split).\n\n")
