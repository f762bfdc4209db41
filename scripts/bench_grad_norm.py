"""What the global gradient norm costs aejax's step, against the plain flax + optax scan.

aejax's step computes the global gradient norm every step (the `train/grad_norm` metric and the
non-finite guard); the plain scan (`scripts/plain_scan.py`) does not. This script compiles aejax's bare
scan of the bench's reference model four times, with the norm as aejax computes it, without it, as
optax computes it (no optimization barrier) and as a dot per leaf, and times them against the plain scan
over the same batches: rounds in shuffled order, one call (a short turn: this CPU's speed drifts over
seconds) per program per round, medians of the per-round ratios.

    python scripts/bench_grad_norm.py                 # digits 64-512-32, batch 64, 40 rounds of 200 steps
    python scripts/bench_grad_norm.py --batch-size 128 --rounds 20
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import aejax.train.step as step_module
from aejax.bench.steps import hlo_counts
from aejax.bench.suite import CODE, HIDDEN, load_plain_scan, reference_config
from aejax.models.updates import gradient_norm
from aejax.train.benchmark import make_bare_scan
from aejax.train.setup import setup_run
from aejax.train.step import epoch_batch_indices


def dot_per_leaf(grads):
    return jnp.sqrt(sum(jnp.vdot(g.ravel(), g.ravel()) for g in jax.tree_util.tree_leaves(grads)))


NORMS = {"aejax (barrier on CPU)": gradient_norm, "no norm": lambda grads: jnp.float32(0.0),
         "optax.tree.norm": optax.tree.norm, "a dot per leaf": dot_per_leaf}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    config = reference_config("digits", batch_size=args.batch_size)
    run = setup_run(config)
    x = run.dataset.train.x.reshape(len(run.dataset.train), -1)
    epochs = -(-args.steps // run.steps_per_epoch)
    idx_SxB = jnp.concatenate([epoch_batch_indices(run.keys.data, e, num_examples=len(x), batch_size=args.batch_size)
                               for e in range(epochs)])[:args.steps]
    programs = {}
    for name, norm in NORMS.items():
        step_module.gradient_norm = norm  # the step reads it when it is traced, just below
        fresh = setup_run(config)
        programs[name] = [make_bare_scan(fresh).lower(fresh.init_state(), idx_SxB).compile(), fresh.init_state()]
        print(f"{name:24s} fusions in the scan body: {hlo_counts(programs[name][0].as_text(), loop_body=True)['fusion']}")
    step_module.gradient_norm = gradient_norm
    plain = load_plain_scan()
    train, _, state = plain.make_plain_scan(x, hidden=HIDDEN[0], code=CODE, learning_rate=float(run.hp["learning_rate"]))
    programs["plain"] = [train.lower(state, idx_SxB).compile(), state]
    for program in programs.values():  # warm up
        program[1], out = program[0](program[1], idx_SxB)
        jax.block_until_ready(out)
    rates: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(args.rounds):
        order = list(programs)
        random.shuffle(order)
        for name in order:
            program = programs[name]
            start = time.perf_counter()
            program[1], out = program[0](program[1], idx_SxB)
            jax.block_until_ready(out)
            rates[name].append(args.steps / (time.perf_counter() - start))
    for name, values in rates.items():
        ratio = statistics.median(a / b for a, b in zip(values, rates["plain"]))
        print(f"{name:24s} {statistics.median(values):9.1f} steps/s, {ratio:.3f}x the plain scan")


if __name__ == "__main__":
    main()
