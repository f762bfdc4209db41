"""Code sparsity over a full pass of the test split: dead units, L0 per example, mean activation.

A unit is dead over the pass when it fires for no test example ("fires": z != 0 for L1 and
top-k codes, z > 0.5 for sigmoid KL codes). Writes figures/sparsity.png: a histogram of the
units' firing rates.

References: Makhzani & Frey 2013, "k-Sparse autoencoders"; Gao et al. 2024, "Scaling and
evaluating sparse autoencoders" (dead latents).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax.errors import ConfigError
from aejax.evaluate.run import LoadedRun


def code_statistics(model, params, x, *, batch_size: int = 1000) -> dict[str, Any]:
    """Firing statistics of `model.encode` over all of `x` (model needs `fired(z) -> [B, K] bool`).

    Returns dead_fraction, l0 (mean active units per example), l0_min, l0_max, mean_activation
    (mean |z|) and firing_rate (a list: per unit, the fraction of examples where it fires).
    """
    if not hasattr(model, "fired"):
        raise ConfigError(f"the sparsity task needs a sparse model (kind 'sparse'), got {type(model).__name__}.")

    @jax.jit
    def batch_stats(p, xb):
        z = model.encode(p, {"x": xb})
        fired = model.fired(z)
        counts = jnp.sum(fired, axis=-1)
        return jnp.sum(fired, axis=0), jnp.sum(counts), jnp.min(counts), jnp.max(counts), jnp.sum(jnp.abs(z))

    fire_counts, l0_sum, l0_min, l0_max, act_sum = None, 0, np.inf, -np.inf, 0.0
    for start in range(0, len(x), batch_size):
        f, c, lo, hi, a = jax.device_get(batch_stats(params, x[start:start + batch_size]))
        fire_counts = f if fire_counts is None else fire_counts + f
        l0_sum, act_sum = l0_sum + int(c), act_sum + float(a)
        l0_min, l0_max = min(l0_min, int(lo)), max(l0_max, int(hi))
    n, k = len(x), int(fire_counts.shape[0])
    return {"dead_fraction": float(np.mean(fire_counts == 0)), "l0": l0_sum / n, "l0_min": int(l0_min),
            "l0_max": int(l0_max), "mean_activation": act_sum / (n * k),
            "firing_rate": (np.asarray(fire_counts) / n).tolist()}


def sparsity_task(run: LoadedRun, *, batch_size: int = 1000) -> dict[str, Any]:
    """Dead-unit fraction, L0 and mean activation over the test split (see `code_statistics`)."""
    import matplotlib.pyplot as plt

    stats = code_statistics(run.model, run.params, run.dataset.test.x, batch_size=batch_size)
    results: dict[str, Any] = {f"test/{k}": v for k, v in stats.items() if k != "firing_rate"}
    if "rho" in run.hp and getattr(run.model, "sparsity", "") == "kl":
        rho = float(run.hp["rho"])
        results["rho"] = rho
        results["test/mean_activation_rel_error"] = abs(stats["mean_activation"] - rho) / rho
    results["firing_rate"] = stats["firing_rate"]
    out = os.path.join(run.workdir, "figures")
    os.makedirs(out, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.hist(stats["firing_rate"], bins=40)
    ax.set_xlabel("fraction of test examples where the unit fires")
    ax.set_ylabel("units")
    ax.set_title(f"dead units: {stats['dead_fraction']:.1%}, L0 {stats['l0']:.2f}")
    fig.tight_layout()
    path = os.path.join(out, "sparsity.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    results["figures"] = [path]
    return results
