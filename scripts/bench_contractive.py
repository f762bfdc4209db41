"""Cost of one contractive training step per Jacobian method, relative to the plain step, in one run.

    python scripts/bench_contractive.py [--batches 128 1024] [--reps 5] [--json FILE]

Model: a 784-512-32 sigmoid MLP encoder (sigmoid hidden layer and sigmoid code) with the mirrored
decoder, MSE reconstruction, Adam; one jitted step = loss + gradient + update. "plain" is the
same step with the reconstruction term alone (the penalty is not computed). Every step is
compiled first, then timed as the median of `reps` runs of `inner` steps each
(block_until_ready at the end of each run). The closed form
does not apply to this two-layer encoder; it is timed on a 784-32 single sigmoid layer,
relative to that model's own plain step.
Check: "auto" must cost at most 1/5 of "jacfwd" at every batch size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

from aejax.models import common
from aejax.models.contractive import ContractiveAE
from aejax.nets import MLPDecoder, MLPEncoder

METHODS = ("plain", "auto", "jacrev", "jacfwd", "hutchinson1", "hutchinson4")


def plain_loss(model, params, x):
    """The same reconstruction term without the penalty (nothing Jacobian-related is computed)."""
    logits = model.decode_logits(params, model.encode_fn(params)(x))
    return jnp.mean(common.reconstruction_per_pixel(model.likelihood, logits, x))


def make_step(model, method_hp, plain: bool = False):
    tx = optax.adam(1e-3)

    def step(params, opt_state, x, key):
        def loss_fn(p):
            if plain:
                return plain_loss(model, p, x)
            return model.loss(p, {"x": x}, key, method_hp)[0]
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return tx, jax.jit(step, donate_argnums=(0, 1))


def time_method(model, hp, x, *, reps: int, inner: int, plain: bool = False) -> float:
    """Median seconds per step."""
    params = model.init(jax.random.key(0), {"x": x})
    tx, step = make_step(model, hp, plain)
    opt_state = tx.init(params)
    key = jax.random.key(1)
    params, opt_state, loss = step(params, opt_state, x, key)  # compile
    loss.block_until_ready()
    times = []
    for r in range(reps):
        t0 = time.perf_counter()
        for i in range(inner):
            params, opt_state, loss = step(params, opt_state, x, jax.random.fold_in(key, r * inner + i))
        loss.block_until_ready()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def build(method: str, hidden=(512,), code=32):
    encoder = MLPEncoder(tuple(hidden), code, "sigmoid")
    decoder = MLPDecoder(tuple(reversed(hidden)), (28, 28, 1), "sigmoid")
    if method == "plain":
        return ContractiveAE(encoder, decoder, (28, 28, 1), code, "sigmoid", "jacrev"), 0.0
    name, probes = (("hutchinson", int(method[len("hutchinson"):])) if method.startswith("hutchinson")
                    else (method, 1))
    return ContractiveAE(encoder, decoder, (28, 28, 1), code, "sigmoid", name, probes), 0.1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", help="also write the results as JSON to this file")
    args = parser.parse_args(argv)

    rows = []
    for batch in args.batches:
        x = jax.random.uniform(jax.random.key(batch), (batch, 28, 28, 1))
        base = None
        for method in METHODS:
            model, weight = build(method)
            hp = {"contractive_weight": jnp.float32(weight)}
            # Fewer inner steps for the expensive methods keep the run short.
            inner = 20 if method in ("plain", "hutchinson1", "hutchinson4") else (2 if method == "jacfwd" else 5)
            reps = args.reps if method != "jacfwd" else max(2, args.reps // 2)
            if batch >= 1024:
                inner = max(1, inner // 4)
            seconds = time_method(model, hp, x, reps=reps, inner=inner, plain=method == "plain")
            base = seconds if method == "plain" else base
            rows.append({"batch": batch, "encoder": "784-512-32", "method": method, "ms_per_step": 1e3 * seconds,
                         "relative_to_plain": seconds / base})
            print(f"  batch {batch:5d}  {method:12s} {1e3 * seconds:9.2f} ms  x{seconds / base:7.2f}",
                  file=sys.stderr, flush=True)
        # The closed form on a single sigmoid layer, against that layer's own plain step.
        encoder, decoder = MLPEncoder((), 32, "sigmoid"), MLPDecoder((), (28, 28, 1), "sigmoid")
        plain1 = time_method(ContractiveAE(encoder, decoder, (28, 28, 1), 32, "sigmoid", "jacrev"),
                             {"contractive_weight": jnp.float32(0.0)}, x, reps=args.reps, inner=20, plain=True)
        for method in ("closed_form", "jacrev"):
            model = ContractiveAE(encoder, decoder, (28, 28, 1), 32, "sigmoid", method)
            seconds = time_method(model, {"contractive_weight": jnp.float32(0.1)}, x, reps=args.reps,
                                  inner=20 if method == "closed_form" else 5)
            rows.append({"batch": batch, "encoder": "784-32", "method": method, "ms_per_step": 1e3 * seconds,
                         "relative_to_plain": seconds / plain1})

    print(f"\ncontractive training step cost relative to the plain step ({jax.devices()[0].platform}, "
          f"{jax.device_count()} device(s))\n")
    print(f"| {'encoder':10s} | {'batch':>5s} | {'method':12s} | {'ms/step':>9s} | {'x plain':>8s} |")
    print(f"|{'-' * 12}|{'-' * 7}|{'-' * 14}|{'-' * 11}|{'-' * 10}|")
    for r in rows:
        print(f"| {r['encoder']:10s} | {r['batch']:5d} | {r['method']:12s} | {r['ms_per_step']:9.2f} | "
              f"{r['relative_to_plain']:8.2f} |")
    ok = True
    for batch in args.batches:
        cost = {r["method"]: r["ms_per_step"] for r in rows if r["batch"] == batch and r["encoder"] == "784-512-32"}
        ratio = cost["auto"] / cost["jacfwd"]
        ok &= ratio <= 0.2
        print(f"batch {batch}: auto / jacfwd = {ratio:.3f} ({'ok' if ratio <= 0.2 else 'FAIL'}: must be <= 0.2)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rows": rows, "auto_within_fifth_of_jacfwd": bool(ok)}, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
