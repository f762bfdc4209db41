"""The gradient step that the trainer and every multi-update kind share.

Optimizers from `aejax.train.optim` return the update *direction* times the schedule's
multiplier; the step scales it by the learning rate, which travels in `hp` as an array (so
one compiled step serves every value and a sweep can vmap over it).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import optax


def apply_scaled_updates(params, updates, learning_rate):
    """params - learning_rate * updates (the descent step for a direction from `make_optimizer`)."""
    return jax.tree_util.tree_map(lambda p, u: p - (learning_rate * u).astype(p.dtype), params, updates)


def gradient_norm(grads) -> jax.Array:
    """The global L2 norm of `grads`, the same number as `optax.tree.norm(grads)` (bitwise).

    On the CPU the squares are taken behind an optimization barrier: without it XLA shares the g**2
    of Adam's second moment with this sum and writes it out as one more array per leaf (XLA:CPU does not
    fuse a reduction with a sibling elementwise update), which measured 3-4 more fusions and about 2%
    of the reference MLP step. On other backends the norm is left to XLA's multi-output fusion.
    """
    if jax.default_backend() == "cpu":
        grads = jax.lax.optimization_barrier(grads)
    return optax.tree.norm(grads)


def gradient_step(loss_fn: Callable[..., tuple[jax.Array, Any]], tx: optax.GradientTransformation, params,
                  opt_state, learning_rate, *args) -> tuple[Any, Any, jax.Array, Any, Any]:
    """One descent step on `loss_fn(params, *args) -> (loss, aux)`.

    Returns (params, opt_state, loss, aux, grads); the caller decides what to report
    (`optax.tree.norm(grads)` is the usual gradient norm).
    """
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, *args)
    updates, opt_state = tx.update(grads, opt_state, params)
    return apply_scaled_updates(params, updates, learning_rate), opt_state, loss, aux, grads


__all__ = ["apply_scaled_updates", "gradient_norm", "gradient_step"]
