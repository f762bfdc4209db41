"""The reference model trained the plain way: flax.linen + optax in one `lax.scan`, written by hand.

This is the program a JAX user would write for the 784-512-32 sigmoid MLP autoencoder (MSE of
sigmoid(logits) against x, Adam at 1e-3, batch 128, Fashion-MNIST): no aejax in the model, the step
or the loop, so `aejax bench` can time aejax's bare scanned step against it. Without Fashion-MNIST
(or with --quick) it is the 64-512-32 one on scikit-learn's 8x8 digits.

    python scripts/plain_scan.py                    # Fashion-MNIST if found, else digits
    python scripts/plain_scan.py --quick            # digits, a few hundred steps
    python scripts/plain_scan.py --data-dir DIR --steps 400 --repeats 5 --json plain.json

`aejax.bench` loads this file by path and calls `make_plain_scan` / `plain_steps_per_s` with the
training split and the batch indices it gives its own bare scan, so both programs see the same
batches. Only jax, flax, optax and numpy are imported here (scikit-learn for digits).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import struct
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

FMNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)
FMNIST_TRAIN = "train-images-idx3-ubyte.gz"


class MLPAutoencoder(nn.Module):
    """features -> hidden (sigmoid) -> code (linear) -> hidden (sigmoid) -> features (logits)."""

    features: int
    hidden: int = 512
    code: int = 32

    @nn.compact
    def __call__(self, x_BxD):
        h = nn.sigmoid(nn.Dense(self.hidden)(x_BxD))
        z = nn.Dense(self.code)(h)
        h = nn.sigmoid(nn.Dense(self.hidden)(z))
        return nn.Dense(self.features)(h)


def make_plain_scan(x_NxD, *, hidden: int = 512, code: int = 32, learning_rate: float = 1e-3, seed: int = 0):
    """(train, step, state): train(state, idx_SxB) -> (state, loss_S) is one jitted `lax.scan` of S Adam steps
    on the batches x[idx_SxB[s]] (the state argument is donated); step(state, x_BxD) -> (state, loss) is
    the jitted single step; state = (params, opt_state)."""
    x_NxD = jnp.asarray(x_NxD, jnp.float32)
    model = MLPAutoencoder(int(x_NxD.shape[1]), hidden, code)
    params = model.init(jax.random.key(seed), x_NxD[:1])
    tx = optax.adam(learning_rate)

    def loss_fn(params, x_BxD):
        return jnp.mean(jnp.square(jax.nn.sigmoid(model.apply(params, x_BxD)) - x_BxD))

    def step(state, x_BxD):
        params, opt_state = state
        loss, grads = jax.value_and_grad(loss_fn)(params, x_BxD)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def train(state, idx_SxB):
        return jax.lax.scan(lambda s, idx_B: step(s, x_NxD[idx_B]), state, idx_SxB)

    return jax.jit(train, donate_argnums=(0,)), jax.jit(step), (params, tx.init(params))


def fusion_count(hlo_text: str) -> int:
    """`fusion` instructions in an optimized HLO module's text: XLA's fused kernels (each is one kernel
    launch on a GPU). `aejax.bench.steps.hlo_counts` counts the same way and more."""
    return len(re.findall(r"=\s*\S+\s+fusion\(", hlo_text))


def plain_steps_per_s(x_NxD, idx_SxB, *, repeats: int = 3, hidden: int = 512, code: int = 32,
                      learning_rate: float = 1e-3, seed: int = 0) -> dict:
    """Steps/s of the plain scan over the S batches of `idx_SxB` (median of `repeats` calls after a compiling one),
    with the compile time, the fusions of the compiled scan and of the single step, and the last loss."""
    x_NxD = np.asarray(x_NxD, np.float32).reshape(len(x_NxD), -1)
    idx_SxB = jnp.asarray(idx_SxB)
    train, step, state = make_plain_scan(x_NxD, hidden=hidden, code=code, learning_rate=learning_rate, seed=seed)
    start = time.perf_counter()
    compiled = train.lower(state, idx_SxB).compile()
    compile_s = time.perf_counter() - start
    step_hlo = step.lower(state, jnp.asarray(x_NxD[:idx_SxB.shape[1]])).compile().as_text()
    state, losses = compiled(state, idx_SxB)  # first call: allocations, caches
    jax.block_until_ready(losses)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        state, losses = compiled(state, idx_SxB)
        jax.block_until_ready((state, losses))
        rates.append(idx_SxB.shape[0] / (time.perf_counter() - start))
    return {"steps_per_s": statistics.median(rates), "steps_per_s_repeats": rates, "steps": int(idx_SxB.shape[0]),
            "batch_size": int(idx_SxB.shape[1]), "compile_s": compile_s,
            "scan_fusions": fusion_count(compiled.as_text()), "step_fusions": fusion_count(step_hlo),
            "final_loss": float(losses[-1])}


def load_training_images(data_dir: str | None, quick: bool) -> tuple[np.ndarray, str]:
    """([N, D] float32 in [0, 1], name): Fashion-MNIST's training images, or scikit-learn's digits."""
    if not quick:
        for place in ([data_dir] if data_dir else []) + [os.environ.get("AEJAX_DATA_DIR", "")] + list(FMNIST_DIRS):
            for sub in ("", "fashion-mnist"):
                path = os.path.join(place or "", sub, FMNIST_TRAIN)
                if place and os.path.isfile(path):
                    with gzip.open(path, "rb") as f:
                        raw = f.read()
                    n, rows, cols = struct.unpack(">3I", raw[4:16])
                    images = np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows * cols)
                    return images.astype(np.float32) / 255.0, "fashion_mnist"
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float32) / 16.0, "digits"


def epoch_indices(n: int, batch_size: int, steps: int, seed: int = 0) -> jax.Array:
    """[steps, B] indices: per-epoch permutations (last partial batch dropped), as many epochs as needed."""
    per_epoch = n // batch_size
    key = jax.random.key(seed)
    epochs = [jax.random.permutation(jax.random.fold_in(key, e), n)[:per_epoch * batch_size].reshape(per_epoch, -1)
              for e in range(-(-steps // per_epoch))]
    return jnp.concatenate(epochs)[:steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="a directory with Fashion-MNIST's IDX files")
    parser.add_argument("--quick", action="store_true", help="digits and fewer steps")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=None, help="steps per timed call (default: about an epoch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    x, name = load_training_images(args.data_dir, args.quick)
    steps = args.steps or min(len(x) // args.batch_size, 100 if args.quick else 400)
    result = {"dataset": name, "model": f"{x.shape[1]}-512-32 sigmoid MLP AE, Adam 1e-3",
              "device": jax.devices()[0].device_kind, "backend": jax.default_backend(), "jax": jax.__version__,
              **plain_steps_per_s(x, epoch_indices(len(x), args.batch_size, steps), repeats=args.repeats)}
    print(f"plain flax+optax scan, {result['model']}, {name}, batch {args.batch_size} on {result['device']}: "
          f"{result['steps_per_s']:.1f} steps/s (compile {result['compile_s']:.1f} s; {result['step_fusions']} "
          f"fusions in the step, {result['scan_fusions']} in the scan; last loss {result['final_loss']:.5f})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
