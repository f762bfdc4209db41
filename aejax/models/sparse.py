"""The sparse autoencoder: L1 on ReLU codes, KL to a target rate on sigmoid codes, or top-k codes.

  sparsity="l1"    z = relu(e(x)); loss = recon + hp.sparsity_weight * mean_b ||z_b||_1
  sparsity="kl"    z = sigmoid(e(x)); loss = recon + hp.sparsity_weight * sum_j KL(hp.rho || mean_b z_bj)
  sparsity="topk"  z = top_k(e(x), k) (exactly k nonzeros); loss = recon + hp.aux_weight * AuxK,
                   AuxK reconstructing x from the kept codes (gradient stopped) plus the `aux_k`
                   largest pre-activations of dead units.

A unit is dead when it has not fired for `dead_window` training steps; the counters live in the
optimizer state (checkpointed with it), so `update` is defined here. Outside training
(`loss` alone, e.g. evaluation) a unit counts as dead when it fires for no example of the batch.
"Fires": z != 0 for "l1" and "topk"; z > 0.5 for "kl". Metrics in aux: mean_activation
(mean |z|), l0 (active units per example), dead_fraction.

References: Ng 2011, "Sparse autoencoder" (CS294A notes); Makhzani & Frey 2013, "k-Sparse
autoencoders"; Gao et al. 2024, "Scaling and evaluating sparse autoencoders" (AuxK, dead latents).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from aejax.errors import ConfigError
from aejax.models import common
from aejax.models.updates import gradient_step
from aejax.objectives import sparsity as sp

SPARSITY_KINDS = ("l1", "kl", "topk")


@dataclasses.dataclass(frozen=True)
class SparseAE:
    """Encoder -> sparse code [B, K] -> decoder, with an L1, KL or top-k sparsity mechanism.

    Attributes:
      encoder, decoder: linen modules (see `aejax.nets`); the encoder outputs pre-activations.
      input_shape: shape of one example.
      code_size: K.
      sparsity: "l1", "kl" or "topk".
      k: nonzeros per code ("topk"); aux_k: dead units the AuxK term may use (0: min(2k, K)).
      dead_window: training steps without firing after which a unit counts as dead.
      likelihood: "mse" or "bernoulli".
    """

    encoder: nn.Module
    decoder: nn.Module
    input_shape: tuple[int, ...]
    code_size: int
    sparsity: str = "kl"
    k: int = 8
    aux_k: int = 0
    dead_window: int = dataclasses.field(default=500, metadata={"unit": "steps"})
    likelihood: str = "mse"
    name = "sparse"

    def __post_init__(self):
        common.check_likelihood(self.likelihood)
        if self.sparsity not in SPARSITY_KINDS:
            raise ConfigError(f"unknown sparsity {self.sparsity!r}; choose one of {list(SPARSITY_KINDS)}.")
        if self.sparsity == "topk":
            sp.check_k(self.k, self.code_size, "k")
            if not 0 <= self.aux_k <= self.code_size:
                raise ConfigError(f"aux_k must lie in [0, {self.code_size}] (the code width; 0 picks min(2k, K)), "
                                  f"got {self.aux_k}; set model.aux_k.")
        if self.dead_window < 1:
            raise ConfigError(f"dead_window must be a positive number of steps, got {self.dead_window}.")

    @staticmethod
    def inactive_options(options: Mapping[str, Any]) -> dict[str, tuple[str, tuple]]:
        """k and aux_k serve the top-k code only."""
        return {} if options["sparsity"] == "topk" else dict.fromkeys(("k", "aux_k"), ("sparsity", ("topk",)))

    # -- the contract -------------------------------------------------------------------------
    init = common.init
    pre_activations = common.encode  # the encoder's output, before the sparse code function
    decode_logits = common.decode_logits
    reconstruct = common.reconstruct
    build = classmethod(common.build)
    default_hp = common.default_hp

    def code(self, pre_BxK):
        if self.sparsity == "l1":
            return jax.nn.relu(pre_BxK)
        if self.sparsity == "kl":
            return jax.nn.sigmoid(pre_BxK)
        return sp.top_k(pre_BxK, self.k)

    def fired(self, z_BxK):
        """[B, K] bool: which units fire in each example."""
        return z_BxK > 0.5 if self.sparsity == "kl" else z_BxK != 0

    def encode(self, params, batch):
        return self.code(self.pre_activations(params, batch))

    def loss(self, params, batch, key, hp, *, step=None):
        del step
        loss, (aux, _) = self.loss_with_dead(params, batch, key, hp, dead_K=None)
        return loss, aux

    def loss_with_dead(self, params, batch, key, hp, *, dead_K=None):
        """The loss, given which units are dead (None: units that fire for no example of the batch).

        Returns (loss, (aux, fired_K)) where fired_K [K] says which units fired in this batch.
        """
        del key
        x = batch["x"]
        pre_BxK = self.pre_activations(params, batch)
        z_BxK = self.code(pre_BxK)
        recon = jnp.mean(common.reconstruction_per_pixel(self.likelihood, self.decode_logits(params, z_BxK), x))
        fired_BxK = self.fired(z_BxK)
        fired_K = jnp.any(fired_BxK, axis=0)
        if dead_K is None:
            dead_K = ~fired_K
        if self.sparsity == "l1":
            term = jnp.mean(sp.l1_penalty(z_BxK))
            loss = recon + hp["sparsity_weight"] * term
        elif self.sparsity == "kl":
            term = sp.kl_sparsity(z_BxK, hp["rho"])
            loss = recon + hp["sparsity_weight"] * term
        else:
            aux_BxK = sp.auxk_codes(pre_BxK, dead_K, self.aux_k or min(2 * self.k, self.code_size))
            aux_logits = self.decode_logits(params, jax.lax.stop_gradient(z_BxK) + aux_BxK)
            aux_recon = jnp.mean(common.reconstruction_per_pixel(self.likelihood, aux_logits, x))
            term = jnp.where(jnp.any(dead_K), aux_recon, 0.0)
            loss = recon + hp["aux_weight"] * term
        aux = {
            "recon": recon,
            "sparsity": term,
            "mean_activation": jnp.mean(jnp.abs(z_BxK)),
            "l0": jnp.mean(jnp.sum(fired_BxK.astype(jnp.float32), axis=-1)),
            "dead_fraction": jnp.mean(dead_K.astype(jnp.float32)),
        }
        return loss, (aux, fired_K)

    # -- training with dead-unit tracking -----------------------------------------------------
    def init_opt_state(self, tx, params):
        return {"tx": tx.init(params), "steps_since_fired": jnp.zeros((self.code_size,), jnp.int32)}

    def update(self, tx, params, opt_state, batch, key, hp, *, step):
        """One gradient step given which units are dead; then the counters advance."""
        del step
        since_K = opt_state["steps_since_fired"]
        loss_fn = functools.partial(self.loss_with_dead, dead_K=since_K >= self.dead_window)
        params, tx_state, loss, (aux, fired_K), grads = gradient_step(
            loss_fn, tx, params, opt_state["tx"], hp["learning_rate"], batch, key, hp)
        since_K = jnp.where(fired_K, 0, since_K + 1)
        return params, {"tx": tx_state, "steps_since_fired": since_K}, loss, aux, optax.tree.norm(grads)

    @staticmethod
    def hp_defaults(options):
        return {"sparsity_weight": {"l1": 1e-3, "kl": 0.05, "topk": 0.0}[options["sparsity"]], "rho": 0.05,
                "aux_weight": 1.0 / 32.0}

    def check_hp(self, hp):
        common.check_hp_keys(hp, ("sparsity_weight", "rho", "aux_weight"))
        common.check_nonnegative(hp, "sparsity_weight", "aux_weight")
        if self.sparsity == "kl":
            sp.check_rate(hp["rho"])

    def check_data(self, x, y=None):
        common.check_data_for_likelihood(self.likelihood, x, y)

