"""Transformer nets: step benchmark (compile time apart from step time) and float32 against bfloat16.

Part 1, the step benchmark: for the transformer autoencoder (experiments/fmnist_transformer_ae.py)
and the MAE (experiments/fmnist_mae.py), each in float32 and bfloat16, the jitted training step
(loss, gradient, optimizer update) at batch 128 on Fashion-MNIST-shaped inputs: the compile time
(lower + compile, measured alone) and the median step time over `--steps` calls after one warm-up.

Part 2, the accuracy cost: the transformer autoencoder trained with `fit` for `--epochs` epochs
with model.dtype=float32 and with model.dtype=bfloat16, same seed, one after the other in this
run; test MSE, steady-state steps/s and wall time side by side. bfloat16 computes the layers in
bfloat16 with float32 parameters and optimizer state.

Command:
    python scripts/bench_transformer.py [--epochs 2] [--steps 20] [--skip-train] [--json FILE]

On a CPU without native bfloat16 matrix units, bfloat16 is expected to be slower, not faster
(XLA:CPU converts); the option is for GPUs and TPUs. Results measured here are in the README.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp

from aejax.config import get_experiment_config
from aejax.train.fit import fit
from aejax.train.setup import setup_run

QUIET = {"train.progress": False, "train.figures": False, "train.tensorboard": False}
MODELS = {"transformer AE": "fmnist_transformer_ae", "MAE": "fmnist_mae"}


def step_benchmark(experiment: str, dtype: str, *, steps: int) -> dict:
    config = get_experiment_config(experiment, {**QUIET, "model.dtype": dtype})
    run = setup_run(config)
    step = jax.jit(run.train_step(), donate_argnums=(0,))
    state = run.init_state()
    bs = run.train.batch_size
    batch = {"x": jnp.asarray(run.dataset.train.x[:bs]), "y": jnp.asarray(run.dataset.train.y[:bs])}
    start = time.perf_counter()
    compiled = step.lower(state, batch, run.keys.loop, run.hp).compile()
    compile_s = time.perf_counter() - start
    state, metrics, _ = compiled(state, batch, run.keys.loop, run.hp)  # warm-up
    jax.block_until_ready(metrics)
    times = []
    for i in range(steps):
        start = time.perf_counter()
        state, metrics, _ = compiled(state, batch, jax.random.fold_in(run.keys.loop, i), run.hp)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    net = config.model
    shape = f"p{net.patch_size} w{net.width} d{net.depth}"
    return {"experiment": experiment, "dtype": dtype, "shape": shape, "batch_size": bs,
            "compile_s": compile_s, "step_ms": 1e3 * statistics.median(times)}


def accuracy_run(dtype: str, *, epochs: int) -> dict:
    config = get_experiment_config("fmnist_transformer_ae", {**QUIET, "model.dtype": dtype, "train.epochs": epochs,
                                                              "train.checkpoint_every": epochs})
    with tempfile.TemporaryDirectory() as workdir:
        summary = fit(config, workdir)
    return {"dtype": dtype, "epochs": epochs, "test_mse": summary["test/mse"],
            "steps_per_s": summary["perf/steps_per_s"], "wall_s": summary["wall_time_s"]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--skip-train", action="store_true", help="only the step benchmark")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    backend = jax.default_backend()
    print(f"backend: {backend} ({jax.devices()[0].device_kind})")
    out: dict = {"backend": backend, "steps": [], "accuracy": []}
    print(f"\nstep benchmark (jitted train step, median of {args.steps} after warm-up; compile measured apart)")
    print(f"{'model':<16}{'net':<14}{'dtype':<10}{'batch':>6}{'compile s':>11}{'step ms':>10}{'steps/s':>9}")
    for name, experiment in MODELS.items():
        for dtype in ("float32", "bfloat16"):
            r = step_benchmark(experiment, dtype, steps=args.steps)
            out["steps"].append({"model": name, **r})
            print(f"{name:<16}{r['shape']:<14}{dtype:<10}{r['batch_size']:>6}{r['compile_s']:>11.2f}"
                  f"{r['step_ms']:>10.1f}{1e3 / r['step_ms']:>9.1f}", flush=True)
    if not args.skip_train:
        print(f"\naccuracy: fmnist_transformer_ae, {args.epochs} epochs each, same seed")
        print(f"{'dtype':<10}{'test MSE':>10}{'steps/s':>9}{'wall s':>8}")
        for dtype in ("float32", "bfloat16"):
            r = accuracy_run(dtype, epochs=args.epochs)
            out["accuracy"].append(r)
            print(f"{dtype:<10}{r['test_mse']:>10.5f}{r['steps_per_s']:>9.2f}{r['wall_s']:>8.1f}", flush=True)
        f32, bf16 = out["accuracy"]
        out["bf16_over_f32_test_mse"] = bf16["test_mse"] / f32["test_mse"]
        out["bf16_over_f32_step_time"] = f32["steps_per_s"] / bf16["steps_per_s"]
        print(f"bfloat16 / float32: test MSE x{out['bf16_over_f32_test_mse']:.3f}, "
              f"step time x{out['bf16_over_f32_step_time']:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
