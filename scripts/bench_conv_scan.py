"""Why aejax's conv nets use im2col on CPU: one training step of the fmnist_ae conv autoencoder,
timed in a standalone jitted step and inside the scanned epoch, for both convolution kinds.

    python scripts/bench_conv_scan.py [--steps 4]

XLA:CPU runs the weight-gradient convolution far slower inside `lax.scan` than outside it;
as im2col (slices + one matrix product) the step is fast in both places.
"""

import argparse
import time

import jax
import jax.numpy as jnp

from aejax.models.common import as_hp
from aejax.models.undercomplete import UndercompleteAE
from aejax.nets.conv import ConvDecoder, ConvEncoder
from aejax.train import make_optimizer
from aejax.train.step import epoch_body, init_train_state, make_train_step


def time_step(conv_impl: str, steps: int, batch_size: int = 128) -> tuple[float, float]:
    n = batch_size * steps
    x = jax.random.uniform(jax.random.key(0), (n, 28, 28, 1))
    y = jnp.zeros(n, jnp.int32)
    model = UndercompleteAE(ConvEncoder((32, 64), (256,), 32, conv_impl=conv_impl),
                            ConvDecoder((32, 64), (256,), (28, 28, 1), conv_impl=conv_impl), (28, 28, 1), 32)
    tx = make_optimizer("adam", total_steps=100)
    hp = as_hp({"learning_rate": 1e-3})
    step = make_train_step(model, tx, skip_nonfinite=False)
    key = jax.random.key(1)
    fresh = lambda: init_train_state(model, tx, model.init(jax.random.key(0), {"x": x[:1]}))

    jitted, state = jax.jit(step), fresh()
    state, metrics, _ = jitted(state, {"x": x[:batch_size], "y": y[:batch_size]}, key, hp)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for i in range(steps):
        batch = {"x": x[i * batch_size:(i + 1) * batch_size], "y": y[:batch_size]}
        state, metrics, _ = jitted(state, batch, key, hp)
    jax.block_until_ready(metrics)
    standalone = (time.perf_counter() - start) / steps

    epoch, state = jax.jit(epoch_body(step, num_examples=n, batch_size=batch_size), donate_argnums=(0,)), fresh()
    state, out = epoch(state, x, y, hp, key, key, jnp.int32(0))
    jax.block_until_ready(out)
    start = time.perf_counter()
    state, out = epoch(state, x, y, hp, key, key, jnp.int32(1))
    jax.block_until_ready(out)
    return standalone, (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    print(f"backend {jax.default_backend()}; conv AE 32/64 channels, batch 128; ms per step")
    print(f"{'conv':<8}{'jitted step':>13}{'in lax.scan':>13}{'scan/step':>11}")
    for impl in ("im2col", "xla"):
        standalone, scanned = time_step(impl, args.steps)
        print(f"{impl:<8}{standalone * 1e3:>13.1f}{scanned * 1e3:>13.1f}{scanned / standalone:>11.2f}")


if __name__ == "__main__":
    main()
