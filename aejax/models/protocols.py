"""The contract every autoencoder kind follows, and the optional capabilities, as Protocols.

Trainer and evaluation code ask `isinstance(model, Sampler)` rather than probing with
`hasattr`. Shapes: `batch` is {"x": [B, *input_shape] float32, "y": [B] int32}; codes are
[B, K]; `hp` is a dict of float32 arrays (see docs/architecture.md for the shape legend).
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

import jax
import numpy as np
import optax

Params = Any
Batch = Mapping[str, jax.Array]
HP = Mapping[str, jax.Array]


@runtime_checkable
class Autoencoder(Protocol):
    """Every kind: init, a loss with all its terms in aux, deterministic encode/reconstruct, checks."""

    name: str
    input_shape: tuple[int, ...]
    code_size: int

    def init(self, key: jax.Array, batch: Batch) -> Params:
        """Parameters from one example of `batch`."""

    def loss(self, params: Params, batch: Batch, key: jax.Array, hp: HP, *, step: jax.Array | None = None
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """(scalar loss, aux with every term by name). `step` is the global training step
        (None outside training: scheduled terms then take their final weight)."""

    def encode(self, params: Params, batch: Batch) -> jax.Array:
        """Deterministic codes [B, K] (the posterior mean for a VAE)."""

    def reconstruct(self, params: Params, batch: Batch) -> jax.Array:
        """Deterministic reconstruction in data space, shaped like batch["x"]."""

    def default_hp(self) -> dict[str, float]:
        """The kind's continuous hyperparameters and their defaults (travel in `hp`)."""

    def check_hp(self, hp: Mapping[str, Any]) -> None:
        """Raises ConfigError for an impossible value."""

    def check_data(self, x: np.ndarray, y: np.ndarray | None = None) -> None:
        """Raises DataError for data the kind cannot use."""


@runtime_checkable
class CustomUpdate(Protocol):
    """A kind whose training step is more than one gradient step on `loss` (the AAE's three
    updates, the sparse kind's dead-unit counters). It composes `aejax.models.updates.gradient_step`."""

    def init_opt_state(self, tx: optax.GradientTransformation, params: Params) -> Any:
        ...

    def update(self, tx: optax.GradientTransformation, params: Params, opt_state: Any, batch: Batch,
               key: jax.Array, hp: HP, *, step: jax.Array) -> tuple[Params, Any, jax.Array, dict, jax.Array]:
        """-> (params, opt_state, loss, aux, grad_norm)."""


@runtime_checkable
class Sampler(Protocol):
    """A generative kind: codes from a prior, decoded to data space."""

    label_conditional: bool

    def sample_prior(self, num: int, *, key: jax.Array, labels=None) -> jax.Array:
        """Codes [num, K] from the prior."""

    def decode(self, params: Params, z_BxK: jax.Array, labels=None) -> jax.Array:
        """Decoder mean in data space [B, *input_shape]."""

    def sample(self, params: Params, num: int, *, key: jax.Array, labels=None) -> jax.Array:
        """Decoder means of `num` prior codes; label-conditional kinds need `labels` [num]."""

    def sample_codes(self, params: Params, batch: Batch, *, key: jax.Array) -> jax.Array:
        """Codes the model matches to its prior (posterior samples) [B, K]."""

    def prior_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean [K] and covariance [K, K] of the prior."""

    def prior_centres(self) -> np.ndarray | None:
        """Component means [C, K] of a mixture prior, None for a unimodal one."""


@runtime_checkable
class Likelihood(Protocol):
    """A kind with a tractable ELBO and importance weights (VAE, CVAE)."""

    likelihood: str

    def elbo(self, params: Params, batch: Batch, *, key: jax.Array, hp: HP | None = None) -> jax.Array:
        """Per-example ELBO [B]."""

    def log_importance_weights(self, params: Params, batch: Batch, *, key: jax.Array, num_samples: int,
                               hp: HP | None = None) -> jax.Array:
        """log p(x, z_s) - log q(z_s | x) -> [S, B]."""


@runtime_checkable
class SparseCodes(Protocol):
    """A kind whose codes have units that fire or not (the sparse kind)."""

    sparsity: str

    def fired(self, z_BxK: jax.Array) -> jax.Array:
        """[B, K] bool: which units fire in each example."""


@runtime_checkable
class Corrupting(Protocol):
    """A kind trained on corrupted inputs (the denoising kind)."""

    corruption: str


__all__ = ["Autoencoder", "Batch", "Corrupting", "CustomUpdate", "HP", "Likelihood", "Params", "Sampler",
           "SparseCodes"]
