"""The contractive autoencoder: reconstruction plus lambda * ||d h / d x||_F^2 per example.

Both terms are divided by the number of input features D, so the loss is Rifai et al.'s
objective (squared error summed over pixels + lambda ||J||_F^2) divided by D, and
hp.contractive_weight is their lambda. The Jacobian method is structural (`method`): "auto"
(forward or reverse mode by shape, the closed form for one sigmoid layer), "jacfwd",
"jacrev", "hutchinson" (with `num_probes`, using the step's key) or "closed_form" (only for
net="mlp", hidden=() and code_activation="sigmoid": a single sigmoid layer).

References: Rifai, Vincent, Muller, Glorot & Bengio 2011, "Contractive auto-encoders: explicit
invariance during feature extraction" (ICML).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping
import math

import flax.linen as nn
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.models import common
from aejax.nets import ACTIVATIONS, MLPEncoder
from aejax.objectives.contractive import METHODS, SigmoidLayer, contractive_penalty


@dataclasses.dataclass(frozen=True)
class ContractiveAE:
    """x -> h = code_activation(encoder(x)) [B, K] -> decoder; loss = recon + lambda ||J||_F^2 (per feature).

    Attributes:
      encoder, decoder: linen modules (see `aejax.nets`).
      input_shape: shape of one example.
      code_size: K.
      code_activation: applied to the encoder's output ("sigmoid" as in Rifai et al.).
      method: Jacobian method for `aejax.objectives.contractive_penalty`.
      num_probes: random projections per example for "hutchinson".
      likelihood: "mse" or "bernoulli".
    """

    encoder: nn.Module
    decoder: nn.Module
    input_shape: tuple[int, ...]
    code_size: int
    code_activation: str = "sigmoid"
    method: str = "auto"
    num_probes: int = 1
    likelihood: str = "mse"
    name = "contractive"

    def __post_init__(self):
        common.check_likelihood(self.likelihood)
        if self.code_activation not in ACTIVATIONS:
            raise ConfigError(f"unknown code_activation {self.code_activation!r}; choose one of {sorted(ACTIVATIONS)}.")
        if self.method not in METHODS:
            raise ConfigError(f"unknown contractive method {self.method!r}; choose one of {list(METHODS)}.")
        if self.num_probes < 1:
            raise ConfigError(f"num_probes must be a positive integer, got {self.num_probes}; set model.num_probes.")
        if self.method == "closed_form" and not self.single_sigmoid_layer:
            raise ConfigError("method='closed_form' applies only to a single sigmoid layer (net='mlp', hidden=(), "
                              "code_activation='sigmoid'); use method='auto' for this encoder.")

    @staticmethod
    def inactive_options(options: Mapping[str, Any]) -> dict[str, tuple[str, tuple]]:
        """num_probes serves the Hutchinson estimator only."""
        return {} if options["method"] == "hutchinson" else {"num_probes": ("method", ("hutchinson",))}

    @property
    def single_sigmoid_layer(self) -> bool:
        return (isinstance(self.encoder, MLPEncoder) and len(tuple(self.encoder.hidden)) == 0
                and self.code_activation == "sigmoid")

    init = common.init
    decode_logits = common.decode_logits
    reconstruct = common.reconstruct
    build = classmethod(common.build)
    default_hp = common.default_hp

    def encode_fn(self, params):
        """The encoder as a function of x alone (a `SigmoidLayer` when the closed form applies)."""
        if self.single_sigmoid_layer and self.method in ("auto", "closed_form"):
            code = params["encoder"]["code"]
            return SigmoidLayer(code["kernel"], code["bias"])
        act = ACTIVATIONS[self.code_activation]
        return lambda x: act(self.encoder.apply({"params": params["encoder"]}, x))

    def encode(self, params, batch):
        return self.encode_fn(params)(batch["x"])

    def loss(self, params, batch, key, hp, *, step=None):
        del step
        x = batch["x"]
        encode = self.encode_fn(params)
        recon_B = common.reconstruction_per_pixel(self.likelihood, self.decode_logits(params, encode(x)), x)
        jac_B = contractive_penalty(encode, x, method=self.method, key=key, num_probes=self.num_probes)
        recon, jac = jnp.mean(recon_B), jnp.mean(jac_B)
        loss = recon + hp["contractive_weight"] * jac / math.prod(self.input_shape)
        return loss, {"recon": recon, "jacobian_fro2": jac}

    @staticmethod
    def hp_defaults(options):
        del options
        return {"contractive_weight": 0.1}

    def check_hp(self, hp):
        common.check_hp_keys(hp, ("contractive_weight",))
        common.check_nonnegative(hp, "contractive_weight")

    def check_data(self, x, y=None):
        common.check_data_for_likelihood(self.likelihood, x, y)

