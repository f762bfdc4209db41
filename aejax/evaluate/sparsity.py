"""Code sparsity over a full pass of a split: dead units, L0, mean rate, population and lifetime sparsity.

Two notions of "active":
  * the model's own: `model.fired(z)` (z != 0 for L1 and top-k codes, z > 0.5 for sigmoid KL
    codes). A unit is dead over the pass when it fires for no example.
  * relative to each unit's range: unit k is active on example n when |z_nk| > 0.5 max_n |z_nk|
    (its maximum over the split). This is what tells a selective code, where a few units are
    strongly on for each example and each unit is on for few examples, from a dense one where
    every unit sits near the target rate rho on every example (which also meets a KL target).
Population sparsity is, per example, the fraction of units active on it; lifetime sparsity
is, per unit, the fraction of examples it is active on (Willmore & Tolhurst 2001 name the
two). Because one outlier sets a unit's maximum, the task also reports the outlier-robust
sparseness index S = (1 - (mean |z|)^2 / mean z^2) / (1 - 1/n) over a unit's n examples (lifetime)
and over an example's n units (population): 0 when the values are all equal (every unit near
rho), near 1 when a few carry all the activity (Vinje & Gallant 2000, after Rolls & Tovee 1995).
Writes OUT_DIR/sparsity.png: histograms of firing rates, lifetime and population
sparsity.

References: Makhzani & Frey 2013, "k-Sparse autoencoders"; Gao et al. 2024, "Scaling and
evaluating sparse autoencoders" (dead latents); Willmore & Tolhurst 2001, "Characterizing
the sparseness of neural codes"; Vinje & Gallant 2000, "Sparse coding and decorrelation in
primary visual cortex during natural vision".
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax.errors import ConfigError
from aejax.models.protocols import SparseCodes

SPLITS = ("train", "val", "test")


def _summary(name: str, values: np.ndarray) -> dict[str, float]:
    return {f"{name}_mean": float(np.mean(values)), f"{name}_median": float(np.median(values)),
            f"{name}_min": float(np.min(values)), f"{name}_max": float(np.max(values))}


def _sparseness_index_jnp(mean_abs, mean_sq, n: int):
    ratio = jnp.where(mean_sq > 0, jnp.square(mean_abs) / jnp.where(mean_sq > 0, mean_sq, 1.0), 1.0)
    return (1.0 - ratio) / (1.0 - 1.0 / n) if n > 1 else jnp.zeros_like(ratio)


def _sparseness_index(mean_abs, mean_sq, n: int):
    """(1 - mean|z|^2 / mean z^2) / (1 - 1/n), elementwise; 0 where every value is 0."""
    ratio = np.divide(np.square(mean_abs), mean_sq, out=np.ones_like(mean_sq), where=mean_sq > 0)
    return (1.0 - ratio) / (1.0 - 1.0 / n) if n > 1 else np.zeros_like(ratio)


def code_statistics(model, params, x, *, batch_size: int = 1000) -> dict[str, Any]:
    """Firing, population and lifetime statistics of `model.encode` over all of `x` [N, ...].

    Two passes: the first finds each unit's maximum |z| over `x`, the second counts, per example
    and per unit, the entries above half of it (a unit whose maximum is 0 is never active).

    Returns:
      dead_fraction, l0 (mean units fired per example), l0_min, l0_max, mean_activation
      (mean |z|); population_sparsity_{mean,median,min,max} over examples and
      lifetime_sparsity_{mean,median,min,max} over units (see the module docstring);
      lifetime_index_{mean,median,min,max} and population_index_{mean,median,min,max} (the
      sparseness index S of each unit over examples and of each example over units);
      unit_max_{mean,median,min,max} (the units' maxima |z| over `x`);
      and lists per unit: firing_rate (fraction of examples where it fires), lifetime_sparsity,
      unit_max; per example: population_sparsity.
    """
    if not isinstance(model, SparseCodes):
        raise ConfigError(f"the sparsity task needs a sparse model (kind 'sparse'), got {model.name!r}.")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")

    @jax.jit
    def first_pass(p, xb):
        z = model.encode(p, {"x": xb})
        fired = model.fired(z)
        counts = jnp.sum(fired, axis=-1)
        a = jnp.abs(z)
        population_s = _sparseness_index_jnp(jnp.mean(a, axis=-1), jnp.mean(a * a, axis=-1), z.shape[-1])
        return (jnp.sum(fired, axis=0), jnp.sum(counts), jnp.min(counts), jnp.max(counts), jnp.sum(a),
                jnp.max(a, axis=0), jnp.sum(a, axis=0), jnp.sum(a * a, axis=0), population_s)

    @jax.jit
    def second_pass(p, xb, max_K):
        active_BxK = (jnp.abs(model.encode(p, {"x": xb})) > 0.5 * max_K) & (max_K > 0)
        return jnp.mean(active_BxK, axis=-1), jnp.sum(active_BxK, axis=0)

    starts = range(0, len(x), batch_size)
    fire_counts, l0_sum, l0_min, l0_max, act_sum, max_K = None, 0, np.inf, -np.inf, 0.0, None
    abs_K, sq_K, population_index_N = 0.0, 0.0, []
    for start in starts:
        f, c, lo, hi, a, m, s1, s2, pi = jax.device_get(first_pass(params, x[start:start + batch_size]))
        fire_counts = f if fire_counts is None else fire_counts + f
        max_K = m if max_K is None else np.maximum(max_K, m)
        abs_K, sq_K = abs_K + np.asarray(s1, np.float64), sq_K + np.asarray(s2, np.float64)
        population_index_N.append(np.asarray(pi, np.float64))
        l0_sum, act_sum = l0_sum + int(c), act_sum + float(a)
        l0_min, l0_max = min(l0_min, int(lo)), max(l0_max, int(hi))
    population_N, active_counts_K = [], 0
    for start in starts:
        pop, cnt = jax.device_get(second_pass(params, x[start:start + batch_size], max_K))
        population_N.append(np.asarray(pop, np.float64))
        active_counts_K = active_counts_K + np.asarray(cnt, np.int64)
    population_N = np.concatenate(population_N)
    n, k = len(x), int(fire_counts.shape[0])
    lifetime_K = active_counts_K / n
    lifetime_index_K = _sparseness_index(abs_K / n, sq_K / n, n)
    return {"dead_fraction": float(np.mean(fire_counts == 0)), "l0": l0_sum / n, "l0_min": int(l0_min),
            "l0_max": int(l0_max), "mean_activation": act_sum / (n * k),
            **_summary("population_sparsity", population_N), **_summary("lifetime_sparsity", lifetime_K),
            **_summary("lifetime_index", lifetime_index_K), **_summary("unit_max", np.asarray(max_K, np.float64)),
            **_summary("population_index", np.concatenate(population_index_N)),
            "firing_rate": (np.asarray(fire_counts) / n).tolist(), "lifetime_sparsity": lifetime_K.tolist(),
            "unit_max": np.asarray(max_K, np.float64).tolist(), "population_sparsity": population_N.tolist(),
            "lifetime_index": lifetime_index_K.tolist()}


def sparsity_task(model, params, dataset, hp, *, seed: int, out_dir: str, batch_size: int = 1000,
                  split: str = "test") -> dict[str, Any]:
    """Dead units, L0, mean rate, population and lifetime sparsity over a split (see `code_statistics`).

    Args:
      model, params, dataset, hp: the trained run (`dataset` an `aejax.data.Dataset`).
      seed: unused (the statistics are deterministic); accepted like every task's.
      out_dir: where sparsity.png goes.
      batch_size: evaluation batch size.
      split: "test", "val" or "train".
    Returns:
      "<split>/<statistic>" for every scalar of `code_statistics`, the per-unit lists
      "firing_rate" and "lifetime_sparsity", "rho" and "<split>/mean_activation_rel_error" for a
      KL code, and "figures".
    """
    import matplotlib.pyplot as plt

    del seed
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {list(SPLITS)}, got {split!r}.")
    stats = code_statistics(model, params, getattr(dataset, split).x, batch_size=batch_size)
    lists = ("firing_rate", "lifetime_sparsity", "unit_max", "population_sparsity", "lifetime_index")
    results: dict[str, Any] = {f"{split}/{k}": v for k, v in stats.items() if k not in lists}
    if "rho" in hp and model.sparsity == "kl":
        rho = float(hp["rho"])
        results["rho"] = rho
        results[f"{split}/mean_activation_rel_error"] = abs(stats["mean_activation"] - rho) / rho
    results["firing_rate"] = stats["firing_rate"]
    results["lifetime_sparsity"] = stats["lifetime_sparsity"]

    os.makedirs(out_dir, exist_ok=True)
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    panels = [
        (stats["firing_rate"], "fraction of examples where the unit fires", "units",
         f"model's 'fires': dead {stats['dead_fraction']:.1%}, L0 {stats['l0']:.2f}"),
        (stats["lifetime_sparsity"], "fraction of examples with |z| > half the unit's max", "units",
         f"lifetime: median {stats['lifetime_sparsity_median']:.3f}"),
        (stats["population_sparsity"], "fraction of units with |z| > half their max", "examples",
         f"population: mean {stats['population_sparsity_mean']:.3f}"),
        (stats["lifetime_index"], "sparseness index S of the unit over examples", "units",
         f"lifetime S: median {stats['lifetime_index_median']:.2f}; max |z| median {stats['unit_max_median']:.2f}"),
    ]
    for ax, (values, xlabel, ylabel, title) in zip(axes, panels):
        top = 1.0 if ax is axes[-1] else max(1e-3, float(np.max(values)))
        ax.hist(values, bins=40, range=(0.0, top))
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"{model.name} codes on the {split} split ({len(getattr(dataset, split).x)} examples, "
                 f"{len(stats['firing_rate'])} units)", fontsize=10)
    fig.tight_layout()
    path = os.path.join(out_dir, "sparsity.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    results["figures"] = [path]
    return results
