"""Per-class and mean AUROC of a one-class sweep: the autoencoder beside PCA, Isolation Forest, one-class SVM.

Usage:
    aejax sweep experiments/fmnist_oneclass.py --workdir sweeps/fmnist_oneclass
    python scripts/oneclass_table.py sweeps/fmnist_oneclass [--score smoothed_mse] [--force]

Runs `aejax eval RUN --task anomaly` on every DIR/runs/*/ that has no eval_anomaly.json yet
(or all with --force), then prints a Markdown table (one row per normal class, then the mean)
and writes it to DIR/oneclass_table.md, with the numbers in DIR/oneclass_table.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

DETECTORS = (("autoencoder", ""), ("PCA recon.", "pca_"), ("PCA recon. smoothed", "pca_smoothed_"),
             ("Isolation Forest", "isolation_forest_"), ("one-class SVM", "ocsvm_"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir")
    parser.add_argument("--score", default="auto", help="the anomaly task's score option (default auto)")
    parser.add_argument("--force", action="store_true", help="re-run the anomaly task on every run")
    parser.add_argument("--metric", default="auroc", choices=("auroc", "pr_auc"))
    args = parser.parse_args(argv)

    from aejax.evaluate import evaluate_workdir

    runs = sorted(d for d in glob.glob(os.path.join(args.sweep_dir, "runs", "*")) if os.path.isdir(d))
    if not runs:
        print(f"no runs under {args.sweep_dir}/runs; train them with `aejax sweep`.", file=sys.stderr)
        return 2
    rows = []
    for run in runs:
        path = os.path.join(run, "eval_anomaly.json")
        t = time.time()
        if args.force or not os.path.isfile(path):
            evaluate_workdir(run, "anomaly", score=args.score)
            print(f"evaluated {run} in {time.time() - t:.1f} s", file=sys.stderr)
        with open(path, encoding="utf-8") as f:
            res = json.load(f)
        rows.append({"normal_class": res["normal_class"], "score": res["score"],
                     **{name: res[f"test/{prefix}{args.metric}"] for name, prefix in DETECTORS
                        if f"test/{prefix}{args.metric}" in res}})
    rows.sort(key=lambda r: r["normal_class"])
    names = [n for n, _ in DETECTORS if all(n in r for r in rows)]  # the smoothed PCA only for image data
    means = {name: sum(r[name] for r in rows) / len(rows) for name in names}
    lines = ["| normal class | " + " | ".join(f"{n} {args.metric.upper()}" if i == 0 else n
                                                for i, n in enumerate(names)) + " |",
             "|---" * (len(names) + 1) + "|"]
    for r in rows:
        lines.append(f"| {r['normal_class']} | " + " | ".join(f"{r[n]:.3f}" for n in names) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{means[n]:.3f}**" for n in names) + " |")
    table = "\n".join(lines)
    print(f"autoencoder score: {rows[0]['score']}\n")
    print(table)
    with open(os.path.join(args.sweep_dir, "oneclass_table.md"), "w", encoding="utf-8") as f:
        f.write(f"Autoencoder score: `{rows[0]['score']}`; {args.metric} on the whole test split.\n\n{table}\n")
    with open(os.path.join(args.sweep_dir, "oneclass_table.json"), "w", encoding="utf-8") as f:
        json.dump({"rows": rows, "mean": means, "metric": args.metric}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
