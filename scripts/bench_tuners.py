"""Optuna's TPE in rounds against one Sobol population, on the same budget of member-epochs (docs/tuning.md).

    python scripts/bench_tuners.py --epochs 6 --rounds 4 --batch 8     # TPE: 4 populations of 8, each asked
                                                                       # from the results before it; Sobol: 32

Both sides search `hp.learning_rate=loguniform(1e-4,1e-1)` x `optim.weight_decay=loguniform(1e-6,1e-2)` (AdamW)
on experiments/digits_ae.py with `--epochs` epochs per member: rounds x batch members on both sides. The score
of a side is its best validation MSE at the members' last epoch (what the TPE side tells Optuna); the wall time
covers everything each side does (setup, compiles, training, results). Prints a markdown table and one JSON
line per repeat (written to --out, appended). Needs Optuna (pip install "aejax[tune]").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

from aejax.sweep import run_sweep
from aejax.tune.rounds import TunerOptions, run_tuner

SPACE = {"hp.learning_rate": "loguniform(1e-4,1e-1)", "optim.weight_decay": "loguniform(1e-6,1e-2)"}
QUIET = {"train.figures": False, "train.tensorboard": False, "train.progress": False, "optim.name": "adamw"}


def last_val(workdir: str, metric: str = "val/mse") -> float:
    """The member's validation metric at its last validated epoch."""
    from aejax.train.metrics import read_metrics

    values = [r[metric] for r in read_metrics(os.path.join(workdir, "metrics.jsonl")) if metric in r]
    return float(values[-1]) if values else math.nan


def one(root: str, *, epochs: int, rounds: int, batch: int, seed: int) -> dict:
    overrides = {**QUIET, "train.epochs": epochs, "seed": seed}
    start = time.perf_counter()
    tuned = run_tuner("digits_ae", os.path.join(root, "tpe"), TunerOptions("tpe", batch, rounds=rounds),
                      space=SPACE, overrides=overrides, progress=False)
    tpe_s = time.perf_counter() - start
    tpe_best = min((r["val/mse"] for r in tuned["trials"] if r["status"] == "done"), default=math.nan)
    start = time.perf_counter()
    sobol = run_sweep("digits_ae", os.path.join(root, "sobol"), overrides=overrides, space=SPACE,
                      sample=rounds * batch, sampler="sobol", progress=False)
    sobol_s = time.perf_counter() - start
    sobol_best = min(last_val(os.path.join(root, "sobol", "runs", r["run_id"])) for r in sobol["rows"]
                     if r["status"] == "done")
    return {"bench": "tuners", "experiment": "digits_ae", "epochs": epochs, "rounds": rounds, "batch": batch,
            "seed": seed, "member_epochs": rounds * batch * epochs, "tpe_best_val_mse": tpe_best,
            "sobol_best_val_mse": sobol_best, "tpe_wall_s": tpe_s, "sobol_wall_s": sobol_s,
            "tpe_trials_complete": sum(r["status"] == "done" for r in tuned["trials"])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1, help="seeds 0..N-1 (the config's seed: draws and training)")
    parser.add_argument("--root", help="where the workdirs go (default: a temporary directory)")
    parser.add_argument("--out", default="bench_tuners.json")
    args = parser.parse_args(argv)
    results = []
    for seed in range(args.repeats):
        root = os.path.join(args.root or tempfile.mkdtemp(prefix="bench_tuners_"), f"seed{seed}")
        result = one(root, epochs=args.epochs, rounds=args.rounds, batch=args.batch, seed=seed)
        result["load_1min"] = os.getloadavg()[0]
        print(json.dumps(result), flush=True)
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
        results.append(result)
    print(f"\n| seed | TPE {args.rounds} x {args.batch} best val/mse | Sobol {args.rounds * args.batch} best val/mse | "
          "TPE / Sobol | TPE wall s | Sobol wall s | TPE / Sobol |\n|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['seed']} | {r['tpe_best_val_mse']:.7f} | {r['sobol_best_val_mse']:.7f} | "
              f"{r['tpe_best_val_mse'] / r['sobol_best_val_mse']:.3f} | {r['tpe_wall_s']:.1f} | "
              f"{r['sobol_wall_s']:.1f} | {r['tpe_wall_s'] / r['sobol_wall_s']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
