"""Per-class and mean AUROC of a one-class sweep: the autoencoder beside PCA, Isolation Forest, one-class SVM.

Usage:
    aejax sweep experiments/fmnist_oneclass.py --workdir sweeps/fmnist_oneclass
    python scripts/oneclass_table.py sweeps/fmnist_oneclass [--score smoothed_mse] [--metric pr_auc]

The same as `aejax eval SWEEPDIR --task anomaly --option score=...` (`aejax.evaluate.oneclass`): runs the
anomaly task on every finished member, prints the Markdown table (one row per normal class, then the mean)
and writes it to DIR/oneclass_table.md (.csv, .json) and DIR/report.md.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir")
    parser.add_argument("--score", default="auto", help="the anomaly task's score option (default auto)")
    parser.add_argument("--metric", default="auroc", choices=("auroc", "pr_auc"))
    args = parser.parse_args(argv)

    from aejax.evaluate import evaluate_workdir
    from aejax.evaluate.oneclass import oneclass_table

    if not os.path.isfile(os.path.join(args.sweep_dir, "sweep.json")):
        print(f"no sweep in {args.sweep_dir}; train one with `aejax sweep`.", file=sys.stderr)
        return 2
    oneclass_table(args.sweep_dir, evaluate_workdir, metric=args.metric, score=args.score)
    with open(os.path.join(args.sweep_dir, "oneclass_table.md"), encoding="utf-8") as f:
        print(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
