"""Small helpers shared by the nets: activation lookup and conditioning."""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax.numpy as jnp

from aejax.errors import ConfigError

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
