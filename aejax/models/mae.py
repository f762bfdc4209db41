"""The masked autoencoder (MAE): hide most patches, encode the rest, predict the hidden ones.

Each example's P patches are shuffled by the argsort of uniform noise drawn from the step's
key (one sort of [B, P] keys per batch); the first V = round((1 - mask_ratio) * P) are kept, the
other P - V are masked. The ViT encoder gathers the V kept patches of the input and their
positions and embeds only those, so its blocks see only them (a gather by index, not zeroed
tokens). A light transformer decoder appends a learned mask token for each masked patch, adds
every token's position and predicts the masked patches; the loss is the squared error on the
masked patches only (per-patch mean, then mean over masked patches and the batch). With
`norm_pix_loss` the targets are each patch's pixels normalized by that patch's own mean and
standard deviation.

The training step runs in the shuffled order [kept, masked] throughout: the only gathers are of
data (the input's patches, the fixed positions), which have no backward pass, and nothing is
scattered; the transformer blocks are permutation-equivariant, so this is the same function as
placing the tokens back in patch order (up to rounding: sums run in another order). Masks are
drawn exactly as before this layout (same noise, same argsort), so the random stream is unchanged.

The mask ratio is structural (`model.mask_ratio`), not in `hp`: V fixes the encoder's sequence
length, a shape, so every ratio is its own compiled program anyway. A ratio in `hp` would need
a static maximum number of visible slots and an attention mask over the unused ones, which
costs the full sequence at every ratio and breaks the "encoder sees only V tokens" property.

The encoder options (patch_size, width, depth, heads, mlp_ratio, positions, dtype) come from
the NetSpec (`model.*`); the MAE always uses the transformer, whatever `model.net` says, and its
code is the mean-pooled encoder features of the full, unmasked image: code_size = model.width
(`model.code_size` is not used). The decoder's own width, depth and heads are the kind's
options `decoder_width`, `decoder_depth`, `decoder_heads`.

Deterministic outputs: `reconstruct` masks with a fixed key (`RECONSTRUCT_SEED`), keeps the
visible patches as they are and fills the masked ones with predictions; `inpaint` does the same
for a mask you choose (centre, block). With `norm_pix_loss` the predictions are normalized
pixels; they are mapped back with each masked patch's own mean and std, as the paper's figures do
(this uses the hidden patch's statistics).

References: He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners"; Dosovitskiy et
al. 2021, "An Image is Worth 16x16 Words".
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from aejax.errors import ConfigError
from aejax.models import common
from aejax.nets import NetSpec
from aejax.nets.transformer import (MaskedTokenDecoder, ViTEncoder, check_transformer_options, patch_grid,
                                    patchify, take_tokens, unpatchify)

RECONSTRUCT_SEED = 0
NORM_PIX_EPS = 1e-6


def num_visible(num_patches: int, mask_ratio: float) -> int:
    """V = round((1 - mask_ratio) * P), the patches the encoder sees."""
    return round((1.0 - float(mask_ratio)) * int(num_patches))


def random_patch_order(key, batch_size: int, num_patches: int):
    """Per-example random permutations [B, P] of the patch indices: the argsort of uniform noise."""
    noise_BxP = jax.random.uniform(key, (batch_size, num_patches))
    return jnp.argsort(noise_BxP, axis=1)


def random_keep_indices(key, batch_size: int, num_patches: int, num_keep: int):
    """Per-example random patch subsets: indices [B, V] of the kept patches (the first V of `random_patch_order`)."""
    return random_patch_order(key, batch_size, num_patches)[:, :num_keep]


def masked_from_keep(keep_BxV, num_patches: int):
    """[B, P] bool: True where a patch is masked (not among the kept indices); by comparison, no scatter."""
    return ~jnp.any(keep_BxV[:, :, None] == jnp.arange(num_patches), axis=1)


def normalize_patches(target_BxPxD):
    """Each patch's pixels minus its mean over its std ((var + 1e-6) ** 0.5)."""
    mean = jnp.mean(target_BxPxD, axis=-1, keepdims=True)
    var = jnp.var(target_BxPxD, axis=-1, keepdims=True)
    return (target_BxPxD - mean) / jnp.sqrt(var + NORM_PIX_EPS)


def masked_patch_error(pred_BxPxD, target_BxPxD, masked_BxP):
    """Squared error per example on the masked patches only -> [B].

    Mean over each patch's values, then mean over the example's masked patches; visible
    patches contribute nothing.
    """
    per_patch_BxP = jnp.mean(jnp.square(pred_BxPxD - target_BxPxD), axis=-1)
    weights = masked_BxP.astype(per_patch_BxP.dtype)
    return jnp.sum(per_patch_BxP * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1.0)


@dataclasses.dataclass(frozen=True)
class MAE:
    """Masked autoencoder: random patch masking, encoder on visible patches, light decoder with mask tokens.

    Attributes:
      encoder: `ViTEncoder` returning token features (code_size 0).
      decoder: `MaskedTokenDecoder` returning per-patch logits [B, P, p * p * C].
      input_shape: (H, W, C).
      code_size: the encoder width (the mean-pooled features are the code).
      mask_ratio: fraction of patches hidden in training (0.75 in He et al.); structural.
      norm_pix_loss: targets are per-patch normalized pixels (He et al.'s better-features setting).
      decoder_width, decoder_depth, decoder_heads: the light decoder's size.
    """

    encoder: nn.Module
    decoder: nn.Module
    input_shape: tuple[int, ...]
    code_size: int
    mask_ratio: float = 0.75
    norm_pix_loss: bool = False
    decoder_width: int = 32
    decoder_depth: int = 1
    decoder_heads: int = 4
    name = "mae"

    def __post_init__(self):
        if not 0.0 < float(self.mask_ratio) < 1.0:
            raise ConfigError(f"model.mask_ratio must lie in (0, 1), got {self.mask_ratio}.")
        p = self.num_patches
        v = num_visible(p, self.mask_ratio)
        if not 1 <= v <= p - 1:
            raise ConfigError(f"mask ratio {self.mask_ratio} of {p} patches keeps {v} visible; at least one patch "
                              "must be visible and one masked: change model.mask_ratio or model.patch_size.")

    @classmethod
    def build(cls, net: NetSpec, *, input_shape, num_classes: int, code_size: int, **options):
        """An MAE from the NetSpec's transformer options (model.net and model.code_size are not used)."""
        del num_classes, code_size
        check_transformer_options(width=net.width, depth=net.depth, heads=net.heads, mlp_ratio=net.mlp_ratio,
                                  positions=net.positions, dtype=net.dtype)
        dec = {k: options.get(f"decoder_{k}", getattr(cls, f"decoder_{k}")) for k in ("width", "depth", "heads")}
        check_transformer_options(width=int(dec["width"]), depth=int(dec["depth"]), heads=int(dec["heads"]),
                                  mlp_ratio=net.mlp_ratio, positions=net.positions, dtype=net.dtype)
        input_shape = tuple(input_shape)
        patch_grid(input_shape, net.patch_size)
        shared = {"patch_size": net.patch_size, "mlp_ratio": net.mlp_ratio, "positions": net.positions,
                  "dtype": net.dtype}
        encoder = ViTEncoder(width=net.width, depth=net.depth, heads=net.heads, code_size=0, **shared)
        decoder = MaskedTokenDecoder(input_shape, width=int(dec["width"]), depth=int(dec["depth"]),
                                     heads=int(dec["heads"]), **shared)
        return cls(encoder, decoder, input_shape, int(net.width), **options)

    hp_defaults = staticmethod(common.no_hp)
    default_hp = common.default_hp

    # --- masks ---------------------------------------------------------------------------

    @property
    def patch_size(self) -> int:
        return int(self.encoder.patch_size)

    @property
    def num_patches(self) -> int:
        grid = patch_grid(self.input_shape, self.patch_size)
        return grid[0] * grid[1]

    @property
    def num_visible(self) -> int:
        return num_visible(self.num_patches, self.mask_ratio)

    def keep_indices(self, key, batch_size: int):
        """Indices [B, V] of the visible patches of each example, drawn from `key`."""
        return random_keep_indices(key, batch_size, self.num_patches, self.num_visible)

    # --- nets ----------------------------------------------------------------------------

    def init(self, key, batch):
        k_enc, k_dec = jax.random.split(key)
        x = batch["x"][:1]
        enc = self.encoder.init(k_enc, x)["params"]
        keep = jnp.arange(self.num_visible)[None, :]
        tokens = self.encoder.apply({"params": enc}, x, None, keep)
        dec = self.decoder.init(k_dec, tokens, keep)["params"]
        return {"encoder": enc, "decoder": dec}

    def predict_patches(self, params, x_BxHxWxC, keep_BxV):
        """Decoder logits [B, P, p * p * C] from the visible patches `keep_BxV` of x."""
        tokens_BxVxF = self.encoder.apply({"params": params["encoder"]}, x_BxHxWxC, None, keep_BxV)
        return self.decoder.apply({"params": params["decoder"]}, tokens_BxVxF, keep_BxV)

    def targets(self, x_BxHxWxC):
        """What the decoder predicts per patch: pixels, or per-patch normalized pixels."""
        target = patchify(x_BxHxWxC, self.patch_size)
        return normalize_patches(target) if self.norm_pix_loss else target

    def outputs(self, logits_BxPxD):
        """Decoder logits in target space: sigmoid pixels, or the raw values for normalized targets."""
        return logits_BxPxD if self.norm_pix_loss else jax.nn.sigmoid(logits_BxPxD)

    def loss(self, params, batch, key, hp, *, step=None):
        """Mean squared error on the masked patches; the masks come from `key`.

        The patches run in the order of a random permutation (kept first, then masked); the decoder
        predicts the masked ones only, which are compared with the same patches of x (see the module
        docstring: no scatter, no mask array).

        References: He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners".
        """
        del hp, step
        x = batch["x"]
        order_BxP = random_patch_order(key, x.shape[0], self.num_patches)
        keep_BxV, masked_BxM = order_BxP[:, :self.num_visible], order_BxP[:, self.num_visible:]
        tokens_BxVxF = self.encoder.apply({"params": params["encoder"]}, x, None, keep_BxV)
        logits_BxMxD = self.decoder.apply({"params": params["decoder"]}, tokens_BxVxF, keep_BxV, masked_BxM)
        target_BxMxD = take_tokens(patchify(x, self.patch_size), masked_BxM)
        if self.norm_pix_loss:
            target_BxMxD = normalize_patches(target_BxMxD)
        error_B = jnp.mean(jnp.square(self.outputs(logits_BxMxD) - target_BxMxD), axis=(1, 2))
        loss = jnp.mean(error_B)
        return loss, {"recon": loss}

    def encode(self, params, batch):
        """Mean-pooled encoder features of the full, unmasked image [B, width] (the linear-probe code)."""
        tokens = self.encoder.apply({"params": params["encoder"]}, batch["x"])
        return jnp.mean(tokens, axis=1)

    def inpaint(self, params, x_BxHxWxC, keep_BxV):
        """Images with the patches `keep_BxV` as given and every other patch predicted [B, H, W, C]."""
        pred = self.outputs(self.predict_patches(params, x_BxHxWxC, keep_BxV))
        target = patchify(x_BxHxWxC, self.patch_size)
        if self.norm_pix_loss:  # back to pixels with the hidden patches' own statistics (as in He et al.'s figures)
            mean = jnp.mean(target, axis=-1, keepdims=True)
            std = jnp.sqrt(jnp.var(target, axis=-1, keepdims=True) + NORM_PIX_EPS)
            pred = pred * std + mean
        masked = masked_from_keep(keep_BxV, self.num_patches)[:, :, None]
        return unpatchify(jnp.where(masked, pred, target), self.patch_size, self.input_shape)

    def reconstruct(self, params, batch):
        """`inpaint` with a mask at the training ratio drawn from a fixed key (deterministic)."""
        x = batch["x"]
        keep = self.keep_indices(jax.random.key(RECONSTRUCT_SEED), x.shape[0])
        return self.inpaint(params, x, keep)

    def check_hp(self, hp):
        del hp

    def check_data(self, x, y=None):
        common.check_data_for_likelihood("mse", x, y)
