"""Where the MLP training step's time goes, against the machine's matmul rate, measured interleaved.

    python scripts/profile_mlp_step.py [--batch 128] [--repeats 7]

The 784-512-32 sigmoid MLP autoencoder (MSE, Adam; the `aejax bench` reference) on random
images: the forward pass alone, forward and backward, the Adam update alone and the whole step,
each as a jitted `lax.scan` over S steps, and the matrix products the step is made of (the
forward product x @ W and the weight-gradient product x^T @ g at the widest layer) beside the
peak matmul (the best of `aejax.bench.machine.PEAK_SHAPES`). One repeat times every piece once,
so a change of load hits all of them; the table shows medians and each piece's fraction of the
peak (its matmul FLOPs counted as in `aejax.bench.steps.counted_mlp_step_flops`).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import jax
import jax.numpy as jnp
import optax

from aejax.bench.machine import matmul_peak_flops_per_s
from aejax.models import model_from_options

WIDTHS = (784, 512, 32, 512, 784)


def scanned(fn, steps: int):
    """jit(scan(fn)) over `steps` copies of the batch: carry -> carry."""
    return jax.jit(lambda carry, xs: jax.lax.scan(lambda c, x: (fn(c, x), None), carry, xs)[0])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    b, steps = args.batch, max(2, 6400 // args.batch)
    model = model_from_options("undercomplete", input_shape=(28, 28, 1), num_classes=10, hidden=(512,),
                               code_size=32, activation="sigmoid")
    x = jax.random.uniform(jax.random.key(0), (b, 28, 28, 1))
    xs = jnp.broadcast_to(x, (steps, *x.shape)) + 0.0
    params = jax.jit(model.init)(jax.random.key(1), {"x": x[:1]})
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)
    loss = lambda p, xb: model.loss(p, {"x": xb}, None, {})[0]

    def full_step(carry, xb):
        p, o = carry
        updates, o = tx.update(jax.grad(loss)(p, xb), o, p)
        return optax.apply_updates(p, updates), o

    def adam_only(carry, xb):
        del xb
        p, o = carry
        updates, o = tx.update(p, o, p)  # the params stand in for a gradient of the same shapes
        return optax.apply_updates(p, updates), o

    forward = 2.0 * b * sum(i * o for i, o in itertools.pairwise(WIDTHS))
    backward = 2 * forward - 2.0 * b * WIDTHS[0] * WIDTHS[1]
    layer = 2.0 * b * WIDTHS[0] * WIDTHS[1]
    g = jax.random.normal(jax.random.key(2), (b, WIDTHS[1]))
    w = params["encoder"]["Dense_0"]["kernel"]
    xf = x.reshape(b, -1)
    pieces = {  # name: (function, args, matmul FLOPs per step, steps per call)
        "forward": (scanned(lambda c, xb: c + loss(params, xb), steps), (jnp.float32(0), xs), forward, steps),
        "forward + backward": (scanned(lambda c, xb: jax.tree_util.tree_map(jnp.add, c, jax.grad(loss)(params, xb)),
                                       steps), (params, xs), forward + backward, steps),
        "Adam update alone": (scanned(adam_only, steps), ((params, opt_state), xs), None, steps),
        "whole step": (scanned(full_step, steps), ((params, opt_state), xs), forward + backward, steps),
        "x @ W (784->512)": (jax.jit(jnp.matmul), (xf, w), layer, 1),
        "x^T @ g (its weight gradient)": (jax.jit(lambda a, c: jnp.einsum("bi,bj->ij", a, c)), (xf, g), layer, 1),
    }
    for fn, fn_args, _, _ in pieces.values():
        jax.block_until_ready(fn(*fn_args))
    seconds = {k: [] for k in pieces}
    peaks = []
    for _ in range(args.repeats):
        for name, (fn, fn_args, _, per_call) in pieces.items():
            calls = 1 if per_call > 1 else 50
            start = time.perf_counter()
            for _ in range(calls):
                out = fn(*fn_args)
            jax.block_until_ready(out)
            seconds[name].append((time.perf_counter() - start) / (calls * per_call))
        peaks.append(matmul_peak_flops_per_s())
    peak = statistics.median(peaks)
    print(f"784-512-32 sigmoid MLP AE, batch {b}, {jax.devices()[0].device_kind}; peak matmul {peak / 1e9:.1f} "
          f"GFLOP/s (median of {args.repeats})\n")
    print("| piece | ms per step | share of the whole step | matmul GFLOP/s | fraction of peak |\n|---|---|---|---|---|")
    whole = statistics.median(seconds["whole step"])
    for name, (_, _, flops, per_call) in pieces.items():
        t = statistics.median(seconds[name])
        fraction = (statistics.median(flops / s / p for s, p in zip(seconds[name], peaks)) if flops else None)
        share = f"{t / whole:.2f}" if per_call > 1 else "-"
        rate = f"{flops / t / 1e9:.1f}" if flops else "-"
        print(f"| {name} | {1e3 * t:.3f} | {share} | {rate} | {'-' if fraction is None else f'{fraction:.2f}'} |")


if __name__ == "__main__":
    main()
