"""Importance-weighted log-likelihood bounds (IWAE) as negative log-likelihood estimates.

log p(x) >= IWAE_k = E[log (1/k) sum_s p(x, z_s) / q(z_s | x)], z_s ~ q(z|x); IWAE_1 is the
ELBO and IWAE_k rises toward log p(x) as k grows (Burda et al. 2015, Theorem 1). The k
samples are drawn in chunks inside one `lax.scan` that carries a running log-sum-exp, so
memory depends on the chunk size, not on k: k = 5000 costs no more memory than k = 100.

References: Burda, Grosse & Salakhutdinov 2015, "Importance Weighted Autoencoders".
"""

from __future__ import annotations

import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax.errors import ConfigError
from aejax.models.protocols import Likelihood


def check_num_samples(num_samples: int, chunk_size: int) -> None:
    if int(num_samples) != num_samples or num_samples < 1:
        raise ConfigError(f"the number of importance samples k must be an integer >= 1, got {num_samples}.")
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ConfigError(f"chunk_size must be an integer >= 1, got {chunk_size}.")


def _per_example_log_weights(model, params, batch, keys_B, num_samples: int, hp):
    """log w [S, B] with example b's samples drawn from keys_B[b] alone (a batch of one, vmapped)."""
    y = batch.get("y")

    def one(x, y1, k):
        b1 = {"x": x[None]} if y1 is None else {"x": x[None], "y": y1[None]}
        return model.log_importance_weights(params, b1, key=k, num_samples=num_samples, hp=hp)[:, 0]

    if y is None:
        return jax.vmap(lambda x, k: one(x, None, k), out_axes=1)(batch["x"], keys_B)
    return jax.vmap(one, out_axes=1)(batch["x"], y, keys_B)


def iwae_bound(model, params, batch, *, key, num_samples: int, chunk_size: int = 100, hp=None, index=None):
    """Per-example IWAE_k and Monte Carlo ELBO from the same k samples -> ([B], [B]).

    Example b's samples come from fold_in(key, index[b]) alone (chunk c of them from
    fold_in(fold_in(key, index[b]), c)), so with `index` the examples' positions in the data
    set the values do not depend on how the set is batched, only on (key, k, chunk_size).
    Samples are drawn `chunk_size` at a time; the last chunk is masked when chunk_size does
    not divide k.

    Args:
      model: a kind with `log_importance_weights(params, batch, *, key, num_samples, hp)`.
      batch: {"x": [B, ...], "y": [B]}.
      num_samples: k >= 1.
      index: [B] integer positions of the examples in their data set (default 0..B-1).
    Returns:
      (iwae_B, elbo_B): log (1/k) sum_s w_s and (1/k) sum_s log w_s, in nats.
    """
    check_num_samples(num_samples, chunk_size)
    chunk = min(int(chunk_size), int(num_samples))
    num_chunks = -(-int(num_samples) // chunk)
    b = batch["x"].shape[0]
    index_B = jnp.arange(b) if index is None else jnp.asarray(index)
    keys_B = jax.vmap(lambda i: jax.random.fold_in(key, i))(index_B)

    def body(carry, c):
        m_B, s_B, total_B = carry
        chunk_keys_B = jax.vmap(lambda k: jax.random.fold_in(k, c))(keys_B)
        lw_CxB = _per_example_log_weights(model, params, batch, chunk_keys_B, chunk, hp)
        valid_C = (c * chunk + jnp.arange(chunk)) < num_samples
        lw_CxB = jnp.where(valid_C[:, None], lw_CxB, -jnp.inf)
        new_m = jnp.maximum(m_B, jnp.max(lw_CxB, axis=0))
        s_B = s_B * jnp.exp(m_B - new_m) + jnp.sum(jnp.exp(lw_CxB - new_m), axis=0)
        total_B = total_B + jnp.sum(jnp.where(valid_C[:, None], lw_CxB, 0.0), axis=0)
        return (new_m, s_B, total_B), None

    init = (jnp.full((b,), -jnp.inf), jnp.zeros((b,)), jnp.zeros((b,)))
    (m_B, s_B, total_B), _ = jax.lax.scan(body, init, jnp.arange(num_chunks))
    return m_B + jnp.log(s_B) - math.log(num_samples), total_B / num_samples


def dataset_iwae(model, params, x, y, *, key, num_samples: int, chunk_size: int = 100, batch_size: int = 100,
                 hp=None) -> tuple[np.ndarray, np.ndarray]:
    """IWAE_k and MC ELBO for every example of (x, y) -> ([N], [N]) on the host.

    Example n draws its samples from fold_in(key, n), so the values do not depend on
    `batch_size`. Full batches run in one jitted `lax.map`, a remainder once more.
    """
    check_num_samples(num_samples, chunk_size)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
    n = int(x.shape[0])
    bound = lambda xb, yb, ib: iwae_bound(model, params, {"x": xb, "y": yb}, key=key, num_samples=num_samples,
                                          chunk_size=chunk_size, hp=hp, index=ib)

    @jax.jit
    def full(x_MxB, y_MxB, i_MxB):
        return jax.lax.map(lambda a: bound(*a), (x_MxB, y_MxB, i_MxB))

    m = n // batch_size
    iw, el = [], []
    if m:
        a, b = full(jnp.asarray(x[: m * batch_size]).reshape(m, batch_size, *x.shape[1:]),
                    jnp.asarray(y[: m * batch_size]).reshape(m, batch_size),
                    jnp.arange(m * batch_size).reshape(m, batch_size))
        iw.append(np.asarray(a).reshape(-1))
        el.append(np.asarray(b).reshape(-1))
    if m * batch_size < n:
        a, b = jax.jit(bound)(jnp.asarray(x[m * batch_size:]), jnp.asarray(y[m * batch_size:]),
                              jnp.arange(m * batch_size, n))
        iw.append(np.asarray(a))
        el.append(np.asarray(b))
    return np.concatenate(iw), np.concatenate(el)


def binarize_images(x: np.ndarray, *, key) -> np.ndarray:
    """One fixed stochastic binarization x_b ~ Bernoulli(x) (the dynamically binarized test set)."""
    return np.asarray(jax.random.bernoulli(key, jnp.asarray(x)), np.float32)


def likelihood_task(model, params, dataset, hp, *, seed: int, out_dir: str, num_samples: int = 1000,
                    chunk_size: int = 100, batch_size: int = 100, num_examples: int = 0, binarize: bool = False,
                    split: str = "test") -> dict[str, Any]:
    """NLL estimate -IWAE_k (nats per example and bits per dimension) on a split.

    Args:
      model, params, dataset, hp: the trained run (`dataset` an `aejax.data.Dataset`).
      seed: the run's seed; keys for the binarization and the importance samples derive from it.
      out_dir: unused (this task writes no figure); accepted like every task's.
      num_samples: k, the importance samples per example (>= 1).
      chunk_size: samples drawn at once (memory scales with chunk_size * batch_size).
      batch_size: examples per batch (does not change the estimate).
      num_examples: evaluate the first N examples only (0: the whole split).
      binarize: evaluate on one fixed stochastic binarization of the split (Bernoulli
        likelihood only; the usual protocol for binarized-MNIST-style numbers).
      split: "test", "val" or "train".
    """
    del out_dir
    check_num_samples(num_samples, chunk_size)
    if not isinstance(model, Likelihood):
        raise ConfigError(f"model kind {model.name!r} defines no likelihood; the likelihood task needs "
                          "a VAE or CVAE.")
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split must be 'train', 'val' or 'test', got {split!r}.")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
    if binarize and model.likelihood != "bernoulli":
        raise ConfigError(f"binarize needs the 'bernoulli' likelihood, the model uses {model.likelihood!r}.")
    data = getattr(dataset, split)
    x, y = data.x, data.y
    if num_examples:
        if num_examples < 0:
            raise ConfigError(f"num_examples must be >= 0, got {num_examples}.")
        x, y = x[:num_examples], y[:num_examples]
    model.check_data(x, y)
    key = jax.random.key(seed)
    k_bin, k_iw = jax.random.split(key)
    if binarize:
        x = binarize_images(x, key=k_bin)
    t0 = time.perf_counter()
    iwae, elbo = dataset_iwae(model, params, x, y, key=k_iw, num_samples=num_samples, chunk_size=chunk_size,
                              batch_size=min(batch_size, len(x)), hp=hp)
    dt = time.perf_counter() - t0
    d = int(np.prod(x.shape[1:]))
    nll = float(-np.mean(iwae))
    tag = f"{split}{'_bin' if binarize else ''}"
    return {
        f"{tag}/nll_iwae{num_samples}": nll,
        f"{tag}/nll_iwae{num_samples}_stderr": float(np.std(iwae) / np.sqrt(len(iwae))),
        f"{tag}/bits_per_dim_iwae{num_samples}": nll / (d * math.log(2.0)),
        f"{tag}/elbo": float(np.mean(elbo)),
        f"{tag}/iwae_minus_elbo": float(np.mean(iwae - elbo)),
        "num_examples": int(len(x)),
        "num_samples": int(num_samples),
        "wall_time_s": dt,
    }
