"""Searches inside the population, measured side by side (docs/search.md holds the figures and the commands).

    python scripts/bench_search.py halving   # fmnist_mlp_ae, 27 Sobol points of lr x weight decay: successive
                                             # halving against the same points trained to the full budget
    python scripts/bench_search.py pbt       # digits_ae: PBT against random search, same population and
                                             # member-epochs, three seeds
    python scripts/bench_search.py optuna    # digits_ae: aejax's halving against Optuna's TPE sampler with its
                                             # SuccessiveHalvingPruner, same space and epoch budget (pip install optuna)
    python scripts/bench_search.py showcase  # fmnist_mlp_ae: a halving search for a better test MSE than the file's

Each prints one JSON line per result and writes it to --out (default bench_search.json, appended).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

from aejax.sweep import run_sweep
from aejax.sweep.search import SearchOptions

QUIET = {"train.figures": False, "train.tensorboard": False, "train.progress": False}


def _best(out, metric="val/mse"):
    rows = [r for r in out["rows"] if r["status"] == "done" and math.isfinite(r.get(metric, math.nan))]
    return min(rows, key=lambda r: r[metric])


def halving(root: str, points: int, epochs: int) -> dict:
    """Halving (eta 3, rungs 2, 6, 18) against the same sampled points trained to `epochs`."""
    space = {"hp.learning_rate": "loguniform(1e-4,1e-2)", "optim.weight_decay": "loguniform(1e-6,1e-2)"}
    overrides = {**QUIET, "optim.name": "adamw", "train.epochs": epochs}
    start = time.perf_counter()
    search = run_sweep("fmnist_mlp_ae", f"{root}/halving", overrides=overrides, space=space, sample=points,
                       sampler="sobol", search=SearchOptions("halving", eta=3, min_epochs=2), progress=False)
    search_s = time.perf_counter() - start
    start = time.perf_counter()
    full = run_sweep("fmnist_mlp_ae", f"{root}/full", overrides=overrides, space=space, sample=points,
                     sampler="sobol", progress=False)
    full_s = time.perf_counter() - start
    best_h, best_f = _best(search), _best(full)
    return {"bench": "halving", "experiment": "fmnist_mlp_ae", "points": points, "epochs": epochs,
            "halving_best_val_mse": best_h["val/mse"], "halving_best_test_mse": best_h["test/mse"],
            "full_best_val_mse": best_f["val/mse"], "full_best_test_mse": best_f["test/mse"],
            "val_gap": best_h["val/mse"] / best_f["val/mse"] - 1, "halving_member_epochs": search["member_epochs"],
            "full_member_epochs": full["member_epochs"],
            "member_epoch_ratio": search["member_epochs"] / full["member_epochs"],
            "halving_wall_s": search_s, "full_wall_s": full_s, "same_best_point": best_h["run_id"] == best_f["run_id"]}


def pbt(root: str, members: int, epochs: int, seeds: int) -> dict:
    """PBT against random search: the same sampled population trained for the same epochs, `seeds` repeats."""
    space = {"hp.learning_rate": "loguniform(1e-4,1e-1)"}
    out = {"bench": "pbt", "experiment": "digits_ae", "members": members, "epochs": epochs, "pbt": [], "random": []}
    for seed in range(seeds):
        overrides = {**QUIET, "train.epochs": epochs, "seed": seed}
        kwargs = dict(overrides=overrides, space=space, sample=members, sampler="random", progress=False)
        for name, search in (("pbt", SearchOptions("pbt", ready_epochs=4, quantile=0.25)), ("random", None)):
            start = time.perf_counter()
            result = run_sweep("digits_ae", f"{root}/{name}{seed}", search=search, **kwargs)
            out[name].append({"seed": seed, "best_val_mse": _best(result)["val/mse"],
                              "best_test_mse": _best(result)["test/mse"], "member_epochs": result["member_epochs"],
                              "wall_s": time.perf_counter() - start})
    for name in ("pbt", "random"):
        vals = [r["best_val_mse"] for r in out[name]]
        out[f"{name}_mean"], out[f"{name}_std"] = float(np.mean(vals)), float(np.std(vals))
    out["pbt_better_in"] = sum(p["best_val_mse"] < r["best_val_mse"] for p, r in zip(out["pbt"], out["random"]))
    return out


def optuna_side(trials: int, epochs: int, min_epochs: int, seed: int) -> dict:
    """Optuna's TPE sampler and SuccessiveHalvingPruner on digits_ae: each trial trains aejax's own jitted epoch
    in this process and reports val/mse after every epoch, so the pruner sees what aejax's halving sees."""
    import jax
    import optuna

    from aejax.config import get_experiment_config
    from aejax.train.setup import config_dataset, setup_run
    from aejax.train.step import epoch_body, make_eval_fn

    dataset = config_dataset(get_experiment_config("digits_ae").data)
    epochs_trained = []

    def objective(trial):
        lr = trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True)
        run = setup_run(get_experiment_config("digits_ae", {**QUIET, "train.epochs": epochs, "hp.learning_rate": lr}),
                        dataset=dataset)
        epoch_fn = jax.jit(epoch_body(run.train_step(), num_examples=len(dataset.train),
                                      batch_size=run.train.batch_size), donate_argnums=(0,))
        evaluate = make_eval_fn(run.model, batch_size=run.train.eval_batch_size)
        x, y = jax.device_put(dataset.train.x), jax.device_put(dataset.train.y)
        val = (jax.device_put(dataset.val.x), jax.device_put(dataset.val.y))
        state, value = run.init_state(), math.inf
        for e in range(epochs):
            state, _ = epoch_fn(state, x, y, run.hp, run.keys.data, run.keys.loop, e)
            value = evaluate(state["params"], *val, run.hp, jax.random.fold_in(run.keys.eval, e))["mse"]
            trial.report(value, e + 1)
            if trial.should_prune():
                epochs_trained.append(e + 1)
                raise optuna.TrialPruned()
        epochs_trained.append(epochs)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=min_epochs,
                                                                              reduction_factor=3))
    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return {"best_val_mse": study.best_value, "best_learning_rate": study.best_params["learning_rate"],
            "member_epochs": int(sum(epochs_trained)), "wall_s": time.perf_counter() - start}


def optuna_bench(root: str, trials: int, epochs: int) -> dict:
    space = {"hp.learning_rate": "loguniform(1e-3,3e-2)"}
    start = time.perf_counter()
    ours = run_sweep("digits_ae", f"{root}/optuna_aejax", overrides={**QUIET, "train.epochs": epochs}, space=space,
                     sample=trials, sampler="sobol", search=SearchOptions("halving", eta=3, min_epochs=2),
                     progress=False)
    aejax_s = time.perf_counter() - start
    theirs = optuna_side(trials, epochs, 2, seed=0)
    return {"bench": "optuna", "experiment": "digits_ae", "trials": trials, "epochs": epochs,
            "aejax_best_val_mse": _best(ours)["val/mse"], "aejax_member_epochs": ours["member_epochs"],
            "aejax_wall_s": aejax_s, "optuna_best_val_mse": theirs["best_val_mse"],
            "optuna_member_epochs": theirs["member_epochs"], "optuna_wall_s": theirs["wall_s"],
            "wall_ratio": theirs["wall_s"] / aejax_s}


def showcase(root: str, points: int, epochs: int) -> dict:
    """A halving search of fmnist_mlp_ae (learning rate, weight decay, Adam's b2, the warm-up share) for a test
    MSE below the file's own; the winner's values are printed as a variant to paste into the experiment."""
    space = {"hp.learning_rate": "loguniform(3e-4,1e-2)", "optim.weight_decay": "loguniform(1e-6,1e-2)",
             "optim.b2": "uniform(0.95,0.999)"}
    overrides = {**QUIET, "optim.name": "adamw", "train.epochs": epochs}
    start = time.perf_counter()
    out = run_sweep("fmnist_mlp_ae", f"{root}/showcase", overrides=overrides, space=space, sample=points,
                    sampler="sobol", search=SearchOptions("halving", eta=3, min_epochs=3), progress=False)
    best = _best(out)
    variant = {"optim.name": "adamw", "train.epochs": epochs, **{k: best[k] for k in space}}
    return {"bench": "showcase", "experiment": "fmnist_mlp_ae", "points": points, "epochs": epochs,
            "best_val_mse": best["val/mse"], "best_test_mse": best["test/mse"], "member_epochs": out["member_epochs"],
            "wall_s": time.perf_counter() - start, "variant": variant}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["halving", "pbt", "optuna", "showcase"])
    parser.add_argument("--root", default="bench_search_runs", help="where the sweeps' workdirs go")
    parser.add_argument("--points", type=int, default=27)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="bench_search.json")
    args = parser.parse_args(argv)
    if args.bench == "halving":
        result = halving(args.root, args.points, args.epochs)
    elif args.bench == "pbt":
        result = pbt(args.root, args.points, args.epochs, args.seeds)
    elif args.bench == "optuna":
        result = optuna_bench(args.root, args.points, args.epochs)
    else:
        result = showcase(args.root, args.points, args.epochs)
    result["load_average"] = os.getloadavg()[0]
    line = json.dumps(result, default=float)
    print(line)
    with open(args.out, "a", encoding="utf-8") as f:
        f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
