"""ViT-style patch transformers (Flax linen) for images [B, H, W, C].

An image is cut into non-overlapping p x p patches (P = (H / p) * (W / p) tokens, row-major),
each patch is embedded by one Dense layer, positions are added (fixed 2-D sine-cosine or
learned), and pre-norm blocks run on the tokens: x + MHA(LN(x)), then x + MLP(LN(x)).

* `ViTEncoder` ends in a LayerNorm; with `code_size > 0` it mean-pools the tokens and maps
  them with a Dense layer to a code [B, code_size] (no [CLS] token); with `code_size == 0` it
  returns the token features [B, P', width]. `keep_BxV` (indices of the patches to keep)
  gathers those patches of the input and their positions before the embedding, so the blocks see
  only V tokens (the masked autoencoder's encoder); a gather of data has no backward pass.
* `ViTDecoder` maps a code to P tokens (one Dense to P * width), adds positions, runs blocks
  and projects each token to a patch of logits, put back together as [B, H, W, C].
* `MaskedTokenDecoder` (the masked autoencoder's light decoder) appends a learned mask token for
  every hidden patch to the visible tokens, adds each token's patch position, runs blocks and
  returns per-patch logits: of the masked patches in a given order (training: no scatter) or of
  all patches in patch order.

Mixed precision: `dtype="bfloat16"` computes every layer in bfloat16 with float32 parameters
(`param_dtype` stays float32, so gradients and optimizer state are float32 too); LayerNorm
statistics, the pooled code head and the outputs are float32.

References: Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words: Transformers for Image
Recognition at Scale"; Vaswani et al. 2017, "Attention Is All You Need"; Xiong et al. 2020,
"On Layer Normalization in the Transformer Architecture" (pre-norm); He et al. 2021, "Masked
Autoencoders Are Scalable Vision Learners" (2-D sine-cosine positions, mask tokens).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from aejax.errors import ConfigError, DataError
from aejax.nets.common import DTYPES, append_condition, check_condition, check_input, compute_dtype

POSITIONS = ("sinusoidal", "learned")


def patch_grid(input_shape: Sequence[int], patch_size: int) -> tuple[int, int]:
    """(H / p, W / p) for an image shape (H, W, C); a ConfigError when p does not divide H and W."""
    if len(input_shape) != 3:
        raise ConfigError(f"transformer nets need images shaped (H, W, C), got {tuple(input_shape)}; "
                          "use net='mlp'.")
    height, width = int(input_shape[0]), int(input_shape[1])
    p = int(patch_size)
    if p < 1 or height % p or width % p:
        fits = [d for d in range(1, min(height, width) + 1) if height % d == 0 and width % d == 0]
        raise ConfigError(f"patch size {p} does not divide the {height}x{width} image; "
                          f"set model.patch_size to one of {fits}.")
    return height // p, width // p


def patchify(x_BxHxWxC, patch_size: int):
    """[B, H, W, C] -> [B, P, p * p * C], patches in row-major order, each flattened (row, column, channel)."""
    b, h, w, c = x_BxHxWxC.shape
    p = patch_size
    x = x_BxHxWxC.reshape(b, h // p, p, w // p, p, c)
    x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(t_BxPxD, patch_size: int, output_shape: Sequence[int]):
    """The inverse of `patchify`: [B, P, p * p * C] -> [B, H, W, C]."""
    h, w, c = output_shape
    p = patch_size
    b = t_BxPxD.shape[0]
    x = t_BxPxD.reshape(b, h // p, w // p, p, p, c)
    x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def sincos_positions_2d(grid: tuple[int, int], width: int) -> np.ndarray:
    """Fixed 2-D sine-cosine positions [P, width]: a quarter of the channels each for sin/cos of
    the row and of the column, at frequencies 1 / 10000^(i / (width / 4))."""
    if width % 4:
        raise ConfigError(f"sinusoidal 2-D positions need a width divisible by 4, got {width}; "
                          "change model.width or set model.positions='learned'.")
    quarter = width // 4
    omega = 1.0 / 10000.0 ** (np.arange(quarter, dtype=np.float64) / quarter)
    rows, cols = np.meshgrid(np.arange(grid[0]), np.arange(grid[1]), indexing="ij")
    parts = []
    for coord in (rows.reshape(-1), cols.reshape(-1)):
        angles = np.outer(coord, omega)
        parts += [np.sin(angles), np.cos(angles)]
    return np.concatenate(parts, axis=1).astype(np.float32)


class PatchPositions(nn.Module):
    """Positions [P, width] for a patch grid: fixed sine-cosine or learned (normal, std 0.02)."""

    width: int
    kind: str = "sinusoidal"

    @nn.compact
    def __call__(self, grid: tuple[int, int]):
        if self.kind == "learned":
            return self.param("pos", nn.initializers.normal(0.02), (grid[0] * grid[1], self.width))
        if self.kind != "sinusoidal":
            raise ConfigError(f"unknown positions {self.kind!r}; choose one of {list(POSITIONS)}.")
        return jnp.asarray(sincos_positions_2d(grid, self.width))


def take_tokens(t_BxPxF, idx_BxV):
    """Tokens (or patches) [B, V, F] at the indices idx [B, V] of each example: one gather along the token axis."""
    return jnp.take_along_axis(t_BxPxF, idx_BxV[:, :, None], axis=1)


def positions_at(pos_PxF, idx_BxV, learned: bool):
    """Positions [B, V, F] of the patches idx [B, V]. A fixed table is gathered (nothing flows back into
    it); a learned one is picked by a one-hot matrix product, whose gradient is a matrix product too (a
    gather's gradient would be a scatter-add: atomics on a GPU, an expanded loop with deterministic ops)."""
    if not learned:
        return jnp.take(pos_PxF, idx_BxV, axis=0)
    return jnp.einsum("bvp,pf->bvf", jax.nn.one_hot(idx_BxV, pos_PxF.shape[0], dtype=pos_PxF.dtype), pos_PxF)


def complement_indices(keep_BxV, num_patches: int):
    """The patch indices [B, P - V] not in keep (ascending), by comparison and a stable sort: no scatter."""
    kept_BxP = jnp.any(keep_BxV[:, :, None] == jnp.arange(num_patches), axis=1)
    return jnp.argsort(kept_BxP, axis=1, stable=True)[:, :num_patches - keep_BxV.shape[1]].astype(keep_BxV.dtype)


class TransformerBlock(nn.Module):
    """Pre-norm block on tokens [B, T, width]: x + MHA(LN(x)), then x + MLP(LN(x)) (GELU, hidden mlp_ratio * width)."""

    width: int
    heads: int
    mlp_ratio: float = 2.0
    dtype: str = "float32"

    @nn.compact
    def __call__(self, x_BxTxF):
        dt = compute_dtype(self.dtype)
        y = nn.LayerNorm(dtype=dt, name="norm_attn")(x_BxTxF)
        y = nn.MultiHeadDotProductAttention(self.heads, dtype=dt, qkv_features=self.width, out_features=self.width,
                                            force_fp32_for_softmax=True, name="attn")(y, y)
        x_BxTxF = x_BxTxF + y
        y = nn.LayerNorm(dtype=dt, name="norm_mlp")(x_BxTxF)
        y = nn.gelu(nn.Dense(max(1, round(self.mlp_ratio * self.width)), dtype=dt, name="mlp_in")(y))
        y = nn.Dense(self.width, dtype=dt, name="mlp_out")(y)
        return x_BxTxF + y


def _check_shape(width: int, depth: int, heads: int, mlp_ratio: float) -> None:
    if width < 1 or depth < 0 or heads < 1 or mlp_ratio <= 0:
        raise ConfigError(f"transformer width, heads and mlp_ratio must be positive and depth >= 0, got width "
                          f"{width}, depth {depth}, heads {heads}, mlp_ratio {mlp_ratio}.")
    if width % heads:
        raise ConfigError(f"the transformer width {width} must be divisible by the number of heads {heads}; "
                          "change model.width or model.heads.")


class ViTEncoder(nn.Module):
    """Patches -> tokens -> pre-norm blocks -> LayerNorm -> mean-pool -> Dense code [B, code_size].

    Attributes:
      patch_size: p; must divide H and W.
      width: token width.
      depth: number of blocks.
      heads: attention heads (divide `width`).
      mlp_ratio: MLP hidden width over `width`.
      positions: "sinusoidal" (fixed 2-D sine-cosine) or "learned".
      dtype: "float32" or "bfloat16" (compute dtype; parameters stay float32).
      code_size: width of the code; 0 returns the normalized token features [B, P', width] instead.
    """

    patch_size: int
    width: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 2.0
    positions: str = "sinusoidal"
    dtype: str = "float32"
    code_size: int = 0

    @nn.compact
    def __call__(self, x_BxHxWxC, condition=None, keep_BxV=None):
        check_input(x_BxHxWxC, "ViTEncoder: the images x [B, H, W, C]", rank=4)
        check_condition(x_BxHxWxC, condition, "ViTEncoder")
        if keep_BxV is not None:
            check_input(keep_BxV, "ViTEncoder: the kept patch indices keep [B, V]", rank=2)
            if keep_BxV.shape[0] != x_BxHxWxC.shape[0]:
                raise DataError(f"ViTEncoder: keep shaped {tuple(keep_BxV.shape)} has another batch size than the "
                                f"images shaped {tuple(x_BxHxWxC.shape)}.")
        dt = compute_dtype(self.dtype)
        grid = patch_grid(x_BxHxWxC.shape[1:], self.patch_size)
        patches_BxPxD = patchify(x_BxHxWxC, self.patch_size)
        pos_PxF = PatchPositions(self.width, self.positions, name="positions")(grid)
        if keep_BxV is None:
            h = nn.Dense(self.width, dtype=dt, name="embed")(patches_BxPxD) + pos_PxF.astype(dt)
        else:  # the visible patches and their positions only: gathered from the input, the blocks never see the others
            h = nn.Dense(self.width, dtype=dt, name="embed")(take_tokens(patches_BxPxD, keep_BxV))
            h = h + positions_at(pos_PxF, keep_BxV, self.positions == "learned").astype(dt)
        for i in range(self.depth):
            h = TransformerBlock(self.width, self.heads, self.mlp_ratio, self.dtype, name=f"block_{i}")(h)
        h = nn.LayerNorm(dtype=dt, name="norm")(h).astype(jnp.float32)
        if not self.code_size:
            return h
        pooled_BxF = append_condition(jnp.mean(h, axis=1), condition)
        return nn.Dense(self.code_size, name="code")(pooled_BxF)


class ViTDecoder(nn.Module):
    """Code [B, K] -> Dense to P * width tokens + positions -> blocks -> per-token patch logits -> [B, H, W, C].

    Attributes:
      output_shape: (H, W, C).
      patch_size, width, depth, heads, mlp_ratio, positions, dtype: as for `ViTEncoder`.
    """

    output_shape: Sequence[int]
    patch_size: int
    width: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 2.0
    positions: str = "sinusoidal"
    dtype: str = "float32"

    @nn.compact
    def __call__(self, z_BxK, condition=None):
        check_input(z_BxK, "ViTDecoder: the code z [B, K]", rank=2)
        check_condition(z_BxK, condition, "ViTDecoder")
        dt = compute_dtype(self.dtype)
        grid = patch_grid(self.output_shape, self.patch_size)
        num_patches = grid[0] * grid[1]
        h = nn.Dense(num_patches * self.width, dtype=dt, name="tokens")(append_condition(z_BxK, condition))
        h = h.reshape(z_BxK.shape[0], num_patches, self.width)
        h = h + PatchPositions(self.width, self.positions, name="positions")(grid).astype(dt)
        for i in range(self.depth):
            h = TransformerBlock(self.width, self.heads, self.mlp_ratio, self.dtype, name=f"block_{i}")(h)
        h = nn.LayerNorm(dtype=dt, name="norm")(h)
        patch_dim = self.patch_size ** 2 * int(self.output_shape[2])
        logits_BxPxD = nn.Dense(patch_dim, dtype=dt, name="patch_out")(h).astype(jnp.float32)
        return unpatchify(logits_BxPxD, self.patch_size, self.output_shape)


class MaskedTokenDecoder(nn.Module):
    """Visible token features [B, V, F] of the patches keep [B, V] -> per-patch logits [B, P, p * p * C].

    The visible features are projected to `width`; every other patch gets a learned mask token;
    positions are added to all P tokens before the blocks. The tokens run in the order
    [keep, masked]: the blocks are permutation-equivariant (attention has no positional bias; the
    positions travel with the tokens), so the order changes nothing but rounding, and no token is
    scattered into place.

    Called with `masked_BxM` (the masked patch indices, e.g. the rest of a random permutation whose
    first V are `keep`), it returns the logits of those patches only [B, M, p * p * C], in that order:
    the training loss's path, with no scatter or gather of tokens in the forward or backward pass.
    Without it, the masked patches are the complement of keep and the logits come back in patch order
    [B, P, p * p * C] (one gather), for inpainting any mask.

    Attributes:
      output_shape: (H, W, C) of the full image.
      patch_size, width, depth, heads, mlp_ratio, positions, dtype: as for `ViTEncoder`.
    """

    output_shape: Sequence[int]
    patch_size: int
    width: int = 32
    depth: int = 1
    heads: int = 4
    mlp_ratio: float = 2.0
    positions: str = "sinusoidal"
    dtype: str = "float32"

    @nn.compact
    def __call__(self, visible_BxVxF, keep_BxV, masked_BxM=None):
        check_input(visible_BxVxF, "MaskedTokenDecoder: the visible tokens [B, V, F]", rank=3)
        check_input(keep_BxV, "MaskedTokenDecoder: the kept patch indices keep [B, V]", rank=2)
        if tuple(keep_BxV.shape) != tuple(visible_BxVxF.shape[:2]):
            raise DataError(f"MaskedTokenDecoder: keep shaped {tuple(keep_BxV.shape)} does not match the visible "
                            f"tokens shaped {tuple(visible_BxVxF.shape)} (expected [B, V] and [B, V, F]).")
        dt = compute_dtype(self.dtype)
        grid = patch_grid(self.output_shape, self.patch_size)
        num_patches = grid[0] * grid[1]
        b, v = keep_BxV.shape
        in_patch_order = masked_BxM is None
        if in_patch_order:
            masked_BxM = complement_indices(keep_BxV, num_patches)
        else:
            check_input(masked_BxM, "MaskedTokenDecoder: the masked patch indices [B, M]", rank=2)
            if masked_BxM.shape[0] != b:
                raise DataError(f"MaskedTokenDecoder: masked shaped {tuple(masked_BxM.shape)} has another batch size "
                                f"than keep shaped {tuple(keep_BxV.shape)}.")
        order_BxT = jnp.concatenate([keep_BxV, masked_BxM.astype(keep_BxV.dtype)], axis=1)
        h_BxVxF = nn.Dense(self.width, dtype=dt, name="embed")(visible_BxVxF)
        mask_token = self.param("mask_token", nn.initializers.normal(0.02), (self.width,))
        masked_tokens = jnp.broadcast_to(mask_token.astype(h_BxVxF.dtype), (b, masked_BxM.shape[1], self.width))
        h = jnp.concatenate([h_BxVxF, masked_tokens], axis=1)
        pos_PxF = PatchPositions(self.width, self.positions, name="positions")(grid)
        h = h + positions_at(pos_PxF, order_BxT, self.positions == "learned").astype(h.dtype)
        for i in range(self.depth):
            h = TransformerBlock(self.width, self.heads, self.mlp_ratio, self.dtype, name=f"block_{i}")(h)
        h = nn.LayerNorm(dtype=dt, name="norm")(h)
        patch_dim = self.patch_size ** 2 * int(self.output_shape[2])
        out = nn.Dense(patch_dim, dtype=dt, name="patch_out")
        if not in_patch_order:
            return out(h[:, v:]).astype(jnp.float32)
        logits_BxPxD = out(h).astype(jnp.float32)
        return take_tokens(logits_BxPxD, jnp.argsort(order_BxT, axis=1))


def check_transformer_options(*, width: int, depth: int, heads: int, mlp_ratio: float, positions: str,
                              dtype: str) -> None:
    """ConfigErrors for impossible transformer options (before anything is built)."""
    _check_shape(int(width), int(depth), int(heads), float(mlp_ratio))
    if positions not in POSITIONS:
        raise ConfigError(f"unknown positions {positions!r}; choose one of {list(POSITIONS)}.")
    if positions == "sinusoidal" and width % 4:
        raise ConfigError(f"sinusoidal 2-D positions need a width divisible by 4, got {width}; "
                          "change model.width or set model.positions='learned'.")
    compute_dtype(dtype)


def num_patches(input_shape: Sequence[int], patch_size: int) -> int:
    return math.prod(patch_grid(input_shape, patch_size))


__all__ = ["DTYPES", "POSITIONS", "MaskedTokenDecoder", "PatchPositions", "TransformerBlock", "ViTDecoder",
           "ViTEncoder", "check_transformer_options", "complement_indices", "num_patches", "patch_grid", "patchify",
           "positions_at", "sincos_positions_2d", "take_tokens", "unpatchify"]
