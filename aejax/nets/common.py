"""Small helpers shared by the nets: activation lookup, conditioning, compute dtypes and shape checks."""

from __future__ import annotations

from typing import Callable

import chex
import flax.linen as nn
import jax.numpy as jnp

from aejax.errors import ConfigError, DataError

ACTIVATIONS: dict[str, Callable[[jnp.ndarray], jnp.ndarray]] = {
    "relu": nn.relu,
    "gelu": nn.gelu,
    "tanh": nn.tanh,
    "sigmoid": nn.sigmoid,
    "elu": nn.elu,
    "silu": nn.silu,
    "softplus": nn.softplus,
    "leaky_relu": nn.leaky_relu,
    "identity": lambda x: x,
}


DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(name: str):
    """The jnp dtype called `name` ("float32" or "bfloat16"); a ConfigError for any other name."""
    if name not in DTYPES:
        raise ConfigError(f"unknown dtype {name!r}; choose one of {list(DTYPES)}.")
    return DTYPES[name]


def layer_dtype(name: str):
    """The `dtype` to give linen layers for the compute dtype `name`.

    None for "float32": layers compute in the promoted dtype of their inputs and parameters, as plain
    linen layers do (so a float64 check stays float64 and the float32 program is the one without the
    option); jnp.bfloat16 for "bfloat16" (parameters stay float32: `param_dtype` is left alone).
    """
    dtype = compute_dtype(name)  # a ConfigError for an unknown name
    return None if name == "float32" else dtype


def cast_in(x, dtype):
    """x in the compute dtype before the first layer (unchanged when `dtype` is None)."""
    return x if dtype is None else x.astype(dtype)


def as_float32(x, dtype):
    """A code or output as float32 after a reduced-precision net; unchanged after a full-precision one."""
    return x if dtype is None else x.astype(jnp.float32)


def check_input(x, what: str, *, rank: int | set[int] | None = None, min_rank: int | None = None,
                trailing: tuple | None = None) -> None:
    """A shape check at a net's entry point (chex), before tracing goes deeper.

    Args:
      x: the array a net was called with.
      what: names the net and the argument in the message, e.g. "MLPDecoder: the code z_BxK".
      rank: the expected rank (or set of ranks); `min_rank`: the least rank (for nets that flatten).
      trailing: the expected trailing dimensions (None matches any size).

    Raises:
      DataError naming `what`, the shape it got and chex's message.
    """
    try:
        if rank is not None:
            chex.assert_rank(x, rank)
        if min_rank is not None and x.ndim < min_rank:
            raise AssertionError(f"expected rank >= {min_rank}, got rank {x.ndim}")
        if trailing is not None:
            chex.assert_shape(x, (..., *trailing))
    except AssertionError as e:
        raise DataError(f"{what} got an array shaped {tuple(x.shape)}: {e}") from None


def check_condition(x, condition, what: str) -> None:
    """A condition (e.g. one-hot labels) is [B, C] with the batch of `x`; nothing to check when None."""
    if condition is None:
        return
    check_input(condition, f"{what}: the condition [B, C]", rank=2)
    if condition.shape[0] != x.shape[0]:
        raise DataError(f"{what}: the condition shaped {tuple(condition.shape)} has another batch size than "
                        f"the input shaped {tuple(x.shape)}.")


def activation(name: str) -> Callable[[jnp.ndarray], jnp.ndarray]:
    """Returns the activation function called `name`."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


def append_condition(h_BxF: jnp.ndarray, condition_BxC: jnp.ndarray | None) -> jnp.ndarray:
    """Concatenates a conditioning vector (e.g. one-hot labels) to flat features."""
    if condition_BxC is None:
        return h_BxF
    return jnp.concatenate([h_BxF, condition_BxC.astype(h_BxF.dtype)], axis=-1)
