"""The denoising autoencoder: reconstruct the clean input from a corrupted copy.

The corruption (structural, `corruption`) is applied on the device inside the loss with the
step's key at level hp.noise_level (an array, so a sweep can vmap over it); the
reconstruction term compares with the clean input. `reconstruct` and `encode` see the
input as given (no corruption): to denoise, pass a corrupted batch.
Aux: recon (denoised against clean) and input_mse (corrupted against clean, per pixel).

References: Vincent, Larochelle, Bengio & Manzagol 2008, "Extracting and composing robust
features with denoising autoencoders" (ICML); Vincent et al. 2010, "Stacked denoising autoencoders".
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from aejax.data import corruptions
from aejax.errors import DataError
from aejax.models import common


@dataclasses.dataclass(frozen=True)
class DenoisingAE:
    """corrupt(x) -> encoder -> z [B, K] -> decoder -> logits; loss against the clean x.

    Attributes:
      encoder, decoder: linen modules (see `aejax.nets`).
      input_shape: shape of one example.
      code_size: K (may exceed the input width: the corruption, not the bottleneck, regularizes).
      corruption: a name in `aejax.data.corruptions.CORRUPTIONS`.
      likelihood: "mse" or "bernoulli".
    """

    encoder: nn.Module
    decoder: nn.Module
    input_shape: tuple[int, ...]
    code_size: int
    corruption: str = "gaussian"
    likelihood: str = "mse"
    name = "denoising"

    def __post_init__(self):
        common.check_likelihood(self.likelihood)
        corruptions.check_corruption(self.corruption)

    init = common.init
    encode = common.encode
    decode_logits = common.decode_logits
    reconstruct = common.reconstruct
    build = classmethod(common.build)
    default_hp = common.default_hp

    def corrupt(self, x, level, *, key):
        return corruptions.get_corruption(self.corruption)(x, level, key=key)

    def loss(self, params, batch, key, hp, *, step=None):
        del step
        x = batch["x"]
        x_tilde = self.corrupt(x, hp["noise_level"], key=key)
        logits = self.decode_logits(params, self.encode(params, {**batch, "x": x_tilde}))
        recon = jnp.mean(common.reconstruction_per_pixel(self.likelihood, logits, x))
        return recon, {"recon": recon, "input_mse": jnp.mean(jnp.square(x_tilde - x))}

    @staticmethod
    def hp_defaults(options):
        del options
        return {"noise_level": 0.2}

    def check_hp(self, hp):
        common.check_hp_keys(hp, ("noise_level",))
        corruptions.check_level(self.corruption, hp["noise_level"])

    def check_data(self, x, y=None):
        common.check_data_for_likelihood(self.likelihood, x, y)
        x = np.asarray(x)
        if x.ndim == 4 and (x.min() < 0.0 or x.max() > 1.0):  # sequences [N, T, C] may take any values
            raise DataError(f"denoising corrupts images in [0, 1] but the data lie in [{x.min():.4g}, {x.max():.4g}]; "
                            "rescale the images to [0, 1].")

