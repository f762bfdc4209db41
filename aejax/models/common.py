"""Pieces every autoencoder kind composes: parameter init, reconstruction likelihoods, checks.

The contract every kind follows (see DESIGN.md):

    init(key, batch) -> params
    loss(params, batch, key, hp) -> (scalar, aux)   # aux: every term by name, scalars
    encode(params, batch) -> codes [B, K]           # deterministic (the mean for a VAE)
    reconstruct(params, batch) -> x_hat             # deterministic, in data space
    default_hp() -> dict of float hyperparameters   # travel as arrays in `hp`
    check_hp(hp) / check_data(x, y)                 # raise ConfigError / DataError

A kind may also define `init_opt_state(tx, params)` and
`update(tx, params, opt_state, batch, key, hp) -> (params, opt_state, loss, aux, grad_norm)`
when one step is more than one gradient update (the adversarial autoencoder).
`batch` is a dict with "x" [B, H, W, C] float32 and "y" [B] int32.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from aejax.data.datasets import check_images
from aejax.errors import ConfigError, DataError
from aejax.objectives import reconstruction as rec

LIKELIHOODS = ("mse", "bernoulli")


def init_encoder_decoder(encoder, decoder, key, x_1xD) -> dict:
    """Initializes an encoder on one example and a decoder on that example's code.

    Returns {"encoder": ..., "decoder": ...}; the key is split in two, encoder first.
    """
    k_enc, k_dec = jax.random.split(key)
    enc = encoder.init(k_enc, x_1xD)["params"]
    z = encoder.apply({"params": enc}, x_1xD)
    dec = decoder.init(k_dec, z)["params"]
    return {"encoder": enc, "decoder": dec}


def check_likelihood(likelihood: str, allowed=LIKELIHOODS) -> None:
    if likelihood not in allowed:
        raise ConfigError(f"unknown likelihood {likelihood!r}; choose one of {list(allowed)}.")


def reconstruction_per_pixel(likelihood: str, logits, x):
    """Per-example reconstruction loss averaged over pixels -> [B].

    "mse": squared error of sigmoid(logits) against x; "bernoulli": binary cross-entropy.
    """
    if likelihood == "mse":
        per_example = rec.squared_error(jax.nn.sigmoid(logits), x)
    else:
        per_example = rec.bernoulli_nll(logits, x)
    return rec.per_feature_mean(per_example, x)


def check_data_for_likelihood(likelihood: str, x: np.ndarray, y: np.ndarray | None = None) -> None:
    """Shapes, dtype, finiteness, and [0, 1] range when the likelihood needs it."""
    check_images(x, what="input images", unit_range=likelihood in ("bernoulli", "continuous_bernoulli"))
    if y is not None:
        y = np.asarray(y)
        if y.shape != (np.asarray(x).shape[0],):
            raise DataError(f"labels must have shape [{np.asarray(x).shape[0]}] to match the images, got {y.shape}.")


def check_nonnegative(hp: Mapping[str, Any], *names: str) -> None:
    for name in names:
        value = np.asarray(hp[name])
        if not np.all(np.isfinite(value)) or np.any(value < 0):
            raise ConfigError(f"hp.{name} must be a finite value >= 0, got {value}; set a non-negative hp.{name}.")


def check_hp_keys(hp: Mapping[str, Any], required: tuple[str, ...]) -> None:
    missing = [k for k in required if k not in hp]
    if missing:
        raise ConfigError(f"this model needs hyperparameters {missing} in hp; add them to the config's hp section.")


def as_hp(values: Mapping[str, float]) -> dict[str, jax.Array]:
    """Turns a mapping of hyperparameters into float32 scalars, the `hp` pytree."""
    return {k: jnp.asarray(v, jnp.float32) for k, v in values.items()}
