"""A sweep as one vmapped program against the same runs one after another, measured in one process.

Two measurements for R runs that differ only in their seed (the Fashion-MNIST 784-512-256-32 MLP
autoencoder by default, digits when Fashion-MNIST is missing):
  * program: the scanned training epochs alone (`epoch_body` vmapped over R against R jitted
    single-run epochs), after one compiling epoch each;
  * sweep (--end-to-end): `aejax sweep` as a library call, vmapped against --parallel sequential,
    everything included (setup, compile, validation, checkpoints, figures, summaries).

    python scripts/bench_sweep.py                       # R = 16
    python scripts/bench_sweep.py --runs 64 256 --epochs 1
    python scripts/bench_sweep.py --runs 8 --end-to-end --experiment digits_ae
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import jax
import jax.numpy as jnp

from aejax.config import get_experiment_config
from aejax.sweep import run_sweep
from aejax.train.population import stack
from aejax.train.setup import setup_run
from aejax.train.step import epoch_body, over_runs


def program_times(experiment: str, runs: int, epochs: int, overrides: dict | None = None) -> dict:
    overrides = dict(overrides or {})
    config = get_experiment_config(experiment, {**overrides, "train.progress": False})
    first = setup_run(config)
    setups = [first] + [setup_run(get_experiment_config(experiment, {**overrides, "seed": s}), dataset=first.dataset)
                        for s in range(1, runs)]
    x, y = jax.device_put(first.dataset.train.x), jax.device_put(first.dataset.train.y)
    body = epoch_body(first.train_step(), num_examples=len(x), batch_size=first.train.batch_size)

    single = jax.jit(body, donate_argnums=(0,))
    states = [s.init_state() for s in setups]
    t0 = time.perf_counter()
    for e in range(epochs + 1):
        if e == 1:
            jax.block_until_ready(states)
            t0 = time.perf_counter()
        states = [single(st, x, y, s.hp, s.keys.data, s.keys.loop, e)[0] for st, s in zip(states, setups)]
    jax.block_until_ready(states)
    sequential = time.perf_counter() - t0

    group = jax.jit(over_runs(body, shared=(1, 2, 6)), donate_argnums=(0,))
    state = stack([s.init_state() for s in setups])
    hp = stack([s.hp for s in setups])
    data_keys = jnp.stack([s.keys.data for s in setups])
    loop_keys = jnp.stack([s.keys.loop for s in setups])
    for e in range(epochs + 1):
        if e == 1:
            jax.block_until_ready(state)
            t0 = time.perf_counter()
        state = group(state, x, y, hp, data_keys, loop_keys, e)[0]
    jax.block_until_ready(state)
    vmapped = time.perf_counter() - t0
    return {"runs": runs, "epochs": epochs, "sequential_s": sequential, "vmapped_s": vmapped,
            "speedup": sequential / vmapped}


def sweep_times(experiment: str, runs: int, epochs: int, overrides: dict | None = None) -> dict:
    overrides = {**(overrides or {}), "train.epochs": epochs}
    out = {}
    for parallel in ("sequential", "vmap"):
        with tempfile.TemporaryDirectory() as workdir:
            t0 = time.perf_counter()
            run_sweep(experiment, workdir, overrides=overrides, seeds=runs, parallel=parallel, progress=False)
            out[f"{parallel}_s"] = time.perf_counter() - t0
    return {"runs": runs, "epochs": epochs, **out, "speedup": out["sequential_s"] / out["vmap_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default=None, help="default: fmnist_mlp_ae, or digits_ae without Fashion-MNIST")
    parser.add_argument("--runs", type=int, nargs="+", default=[16])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (program) or training epochs (sweep)")
    parser.add_argument("--end-to-end", action="store_true", help="also time whole sweeps, outputs included")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                        help="a config override for every run (repeatable), e.g. model.dtype=bfloat16")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    from aejax.config import parse_overrides

    overrides = parse_overrides(args.set)
    experiment = args.experiment
    if experiment is None:
        from aejax.data import find_fashion_mnist
        from aejax.errors import DatasetNotFoundError

        try:
            find_fashion_mnist(None)
            experiment = "fmnist_mlp_ae"
        except DatasetNotFoundError:
            experiment = "digits_ae"
    device = jax.devices()[0].device_kind
    print(f"{experiment} on {device} ({jax.default_backend()}), jax {jax.__version__}")
    print(f"{'what':<9}{'runs':>6}{'epochs':>8}{'sequential s':>14}{'vmapped s':>11}{'speedup':>9}")
    results = []
    for runs in args.runs:
        r = program_times(experiment, runs, args.epochs, overrides)
        results.append({"what": "program", **r})
        print(f"{'program':<9}{runs:>6}{args.epochs:>8}{r['sequential_s']:>14.2f}{r['vmapped_s']:>11.2f}"
              f"{r['speedup']:>8.2f}x")
        if args.end_to_end:
            s = sweep_times(experiment, runs, args.epochs, overrides)
            results.append({"what": "sweep", **s})
            print(f"{'sweep':<9}{runs:>6}{args.epochs:>8}{s['sequential_s']:>14.2f}{s['vmap_s']:>11.2f}"
                  f"{s['speedup']:>8.2f}x")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"experiment": experiment, "device": device, "jax": jax.__version__, "overrides": overrides,
                       "results": results}, f, indent=2, default=str)


if __name__ == "__main__":
    main()
