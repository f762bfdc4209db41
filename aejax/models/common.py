"""Pieces every autoencoder kind composes: the deterministic encode/decode block, likelihoods, checks.

The contract itself is `aejax.models.protocols.Autoencoder`. Kinds whose code is a plain
function of x (undercomplete, sparse, denoising, contractive) share the block below by
assigning its functions as methods (`encode = common.encode`), not by inheriting:

    init(key, batch)              encoder on one example, decoder on its code
    encode(params, batch)         encoder output [B, K]
    decode_logits(params, z_BxK)  decoder output (logits) [B, *input_shape]
    reconstruct(params, batch)    sigmoid(decode_logits(encode(x))) -- uses the kind's own `encode`
    build(net, ...)               the kind from a `NetSpec` and its options

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


def init_encoder_decoder(encoder, decoder, key, x_1) -> dict:
    """Initializes an encoder on one example and a decoder on that example's code.

    Returns {"encoder": ..., "decoder": ...}; the key is split in two, encoder first.
    """
    k_enc, k_dec = jax.random.split(key)
    enc = encoder.init(k_enc, x_1)["params"]
    z = encoder.apply({"params": enc}, x_1)
    dec = decoder.init(k_dec, z)["params"]
    return {"encoder": enc, "decoder": dec}


def init(model, key, batch) -> dict:
    """The deterministic block's parameters: {"encoder": ..., "decoder": ...}."""
    return init_encoder_decoder(model.encoder, model.decoder, key, batch["x"][:1])


def encode(model, params, batch):
    """Encoder output [B, K]."""
    return model.encoder.apply({"params": params["encoder"]}, batch["x"])


def decode_logits(model, params, z_BxK):
    """Decoder output (logits) [B, *input_shape]."""
    return model.decoder.apply({"params": params["decoder"]}, z_BxK)


def reconstruct(model, params, batch):
    """sigmoid(logits) of the code the kind's own `encode` gives (deterministic)."""
    return jax.nn.sigmoid(model.decode_logits(params, model.encode(params, batch)))


def build(cls, net, *, input_shape, num_classes: int, code_size: int, **options):
    """A kind made of one encoder and one decoder from `net` (a NetSpec); options go to the dataclass."""
    del num_classes
    encoder, decoder = net.encoder_decoder(input_shape, int(code_size))
    return cls(encoder, decoder, tuple(input_shape), int(code_size), **options)


def default_hp(model) -> dict:
    """The kind's hp defaults for its own options (its `hp_defaults(options)` at its fields)."""
    return model.hp_defaults(vars(model))


def no_hp(options) -> dict:
    """hp_defaults of a kind with no continuous hyperparameters of its own."""
    del options
    return {}


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
