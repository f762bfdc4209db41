"""Sparsity terms on codes: L1, KL to a target rate, top-k codes and the AuxK selection.

Per-example terms return [B]; the KL term is a function of the batch-mean activation
(Ng's formulation) and so returns one scalar for the batch.

References: Ng 2011, "Sparse autoencoder" (CS294A lecture notes); Makhzani & Frey 2013,
"k-Sparse autoencoders"; Gao et al. 2024, "Scaling and evaluating sparse autoencoders".
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from aejax.errors import ConfigError
from aejax.objectives._checks import says


def _codes(where, z_BxK):
    chex.assert_rank(z_BxK, 2, **says(f"{where}: codes must be [B, K]"))


def l1_penalty(z_BxK):
    """L1 norm of each code, sum_k |z_k| -> [B].

    References: Goodfellow, Bengio & Courville 2016, Deep Learning, section 14.2.1.
    """
    _codes("l1_penalty(z_BxK)", z_BxK)
    return jnp.sum(jnp.abs(z_BxK.reshape(z_BxK.shape[0], -1)), axis=-1)


def check_rate(rho) -> None:
    """Raises ConfigError unless every target rate lies strictly inside (0, 1)."""
    value = np.asarray(rho, dtype=np.float64)
    if not np.all(np.isfinite(value)) or np.any(value <= 0.0) or np.any(value >= 1.0):
        raise ConfigError(f"the sparsity target rho must lie strictly between 0 and 1, got {value}; "
                          "set hp.rho to e.g. 0.05.")


def bernoulli_kl(rho, rho_hat, *, eps: float = 1e-6):
    """KL(Bernoulli(rho) || Bernoulli(rho_hat)) elementwise; rho_hat is clipped to [eps, 1 - eps].

    References: Ng 2011, "Sparse autoencoder", CS294A lecture notes, section 3.
    """
    chex.assert_is_broadcastable(jnp.shape(rho), jnp.shape(rho_hat),
                                 **says("bernoulli_kl(rho, rho_hat): rho must broadcast against rho_hat"))
    rho_hat = jnp.clip(rho_hat, eps, 1.0 - eps)
    return rho * (jnp.log(rho) - jnp.log(rho_hat)) + (1.0 - rho) * (jnp.log1p(-rho) - jnp.log1p(-rho_hat))


def kl_sparsity(h_BxK, rho):
    """sum_j KL(rho || rho_hat_j), rho_hat_j = mean_b h_bj the batch-mean activation -> scalar.

    Args:
      h_BxK: codes in (0, 1) (sigmoid activations).
      rho: target mean activation in (0, 1); an array so it can be swept.
    Returns:
      A scalar: the penalty belongs to the batch, not to single examples.

    References: Ng 2011, "Sparse autoencoder", CS294A lecture notes, section 3.
    """
    _codes("kl_sparsity(h_BxK, rho)", h_BxK)
    chex.assert_is_broadcastable(jnp.shape(rho), jnp.shape(h_BxK)[1:],
                                 **says("kl_sparsity(h_BxK, rho): rho must be a scalar or [K]"))
    rho_hat_K = jnp.mean(h_BxK, axis=0)
    return jnp.sum(bernoulli_kl(rho, rho_hat_K))


def check_k(k: int, code_width: int, what: str = "k") -> None:
    """Raises ConfigError unless 1 <= k < code_width."""
    if not 1 <= int(k) < int(code_width):
        raise ConfigError(f"top-k sparsity needs 1 <= {what} < code width ({code_width}), got {what}={k}; "
                          f"lower model.{what} or widen model.code_size.")


def top_k_mask(z_BxK, k: int):
    """Boolean mask [B, K] with exactly `k` True entries per row: the k largest values (ties by index)."""
    _codes(f"top_k_mask(z_BxK, k={k})", z_BxK)
    chex.assert_axis_dimension_gteq(z_BxK, 1, int(k),
                                    **says(f"top_k_mask: k={k} is wider than the codes {tuple(z_BxK.shape)} [B, K]"))
    _, idx_Bxk = jax.lax.top_k(z_BxK, k)
    rows = jnp.arange(z_BxK.shape[0])[:, None]
    return jnp.zeros(z_BxK.shape, bool).at[rows, idx_Bxk].set(True)


def top_k(z_BxK, k: int):
    """k-sparse codes: keeps the k largest entries of each row and zeros the rest -> [B, K].

    The gradient flows only through the kept entries.

    References: Makhzani & Frey 2013, "k-Sparse autoencoders".
    """
    _codes(f"top_k(z_BxK, k={k})", z_BxK)
    return jnp.where(top_k_mask(z_BxK, k), z_BxK, jnp.zeros_like(z_BxK))


def auxk_codes(z_BxK, dead_K, k_aux: int):
    """The AuxK codes: the `k_aux` largest pre-activations among dead units, zero elsewhere -> [B, K].

    Live units are excluded by pushing them to -inf before the selection; when fewer than
    `k_aux` units are dead the selection only keeps dead ones (the rest are zeroed).

    References: Gao et al. 2024, "Scaling and evaluating sparse autoencoders", section 2.4 (AuxK).
    """
    _codes("auxk_codes(z_BxK, dead_K, k_aux)", z_BxK)
    chex.assert_shape(dead_K, jnp.shape(z_BxK)[1:], **says("auxk_codes: dead_K must be [K] for codes [B, K]"))
    dead_BxK = jnp.broadcast_to(dead_K, z_BxK.shape)
    masked = jnp.where(dead_BxK, z_BxK, -jnp.inf)
    keep = top_k_mask(masked, k_aux) & dead_BxK
    return jnp.where(keep, z_BxK, jnp.zeros_like(z_BxK))


def l0(z_BxK, *, threshold: float = 0.0):
    """Number of units with |z| > threshold in each code -> [B]."""
    _codes("l0(z_BxK)", z_BxK)
    return jnp.sum((jnp.abs(z_BxK) > threshold).astype(jnp.float32), axis=-1)
