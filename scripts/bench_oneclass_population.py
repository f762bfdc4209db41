"""One-class per class: the ten classes as one population against ten runs one after another.

Both arms are `aejax sweep` as a library call over the experiment's ten `data.normal_class` values, everything
included (setup, compiles, validation, checkpoints, summaries; no figures): `--parallel vmap` (one population,
one compiled training program: the members index one copy of the training split) against
`--parallel sequential` (each class its own run and programs, as before issue 29). Each member is then scored
with the anomaly task (autoencoder AUROC against the whole test split; no baselines) and the mean over classes
is printed beside the wall times and their ratio, measured side by side in one process.

    python scripts/bench_oneclass_population.py                      # digits, 20 epochs
    python scripts/bench_oneclass_population.py --experiment fmnist_oneclass --epochs 2 --set data.val_size=5000
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from aejax.config import parse_overrides
from aejax.evaluate import evaluate_workdir
from aejax.sweep import run_sweep


def arm(experiment: str, parallel: str, overrides: dict, root: str) -> dict:
    workdir = f"{root}/{parallel}"
    start = time.perf_counter()
    out = run_sweep(experiment, workdir, overrides=overrides, parallel=parallel, progress=False)
    seconds = time.perf_counter() - start
    aurocs = [evaluate_workdir(f"{workdir}/runs/{r['run_id']}", "anomaly", baselines=False)["test/auroc"]
              for r in out["rows"]]
    return {"seconds": seconds, "groups": out["groups"], "auroc": float(np.mean(aurocs)), "members": len(aurocs)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="digits_oneclass")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    overrides = {"train.epochs": args.epochs, "train.figures": False, "train.tensorboard": False,
                 "train.progress": False, **parse_overrides(args.set)}
    with tempfile.TemporaryDirectory() as root:
        population = arm(args.experiment, "vmap", overrides, root)
        sequential = arm(args.experiment, "sequential", overrides, root)
    print(f"{args.experiment}, {population['members']} classes, {args.epochs} epochs, everything included\n")
    print("| | groups (programs) | wall time (s) | mean AUROC |\n|---|---|---|---|")
    for name, r in (("one population", population), ("one run after another", sequential)):
        print(f"| {name} | {r['groups']} | {r['seconds']:.1f} | {r['auroc']:.4f} |")
    print(f"\nratio (one after another / population): {sequential['seconds'] / population['seconds']:.2f}x")


if __name__ == "__main__":
    main()
