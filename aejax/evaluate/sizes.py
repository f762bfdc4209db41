"""The data-size curve of a sweep over `data.train_examples`: validation and test error against the
training-set size (log x), beside PCA with the same code size fitted on each member's same rows.

`aejax.run_sweep` (and so `aejax sweep`) draws it after training when data.train_examples is swept:
SWEEPDIR/figures/size_curve.png and SWEEPDIR/size_curve.csv (one row per size: the autoencoder's val/mse and
test/mse, averaged over the members of that size, e.g. seeds, and PCA's on the same rows).
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import numpy as np


def pca_errors(train_x: np.ndarray, others: dict[str, np.ndarray], code_size: int) -> dict[str, float]:
    """Per-pixel MSE of PCA with `code_size` components fitted on `train_x`, on each of `others`."""
    from sklearn.decomposition import PCA

    flat = lambda x: np.asarray(x, np.float64).reshape(len(x), -1)
    pca = PCA(n_components=min(code_size, *flat(train_x).shape), svd_solver="full").fit(flat(train_x))
    return {name: float(np.mean(np.square(pca.inverse_transform(pca.transform(flat(x))) - flat(x))))
            for name, x in others.items()}


def size_curve(sweep_dir: str) -> str | None:
    """Draws the curve when the sweep in `sweep_dir` swept data.train_examples; returns the figure's path."""
    from aejax.config import config_from_json
    from aejax.data.subsets import view
    from aejax.train.setup import data_rows, source_key, whole_dataset

    with open(os.path.join(sweep_dir, "sweep.json"), encoding="utf-8") as f:
        sweep = json.load(f)
    if "data.train_examples" not in sweep["swept"]:
        return None
    loaded: dict[str, Any] = {}
    by_size: dict[int, list[dict[str, float]]] = {}
    for entry in sweep["runs"]:
        run = os.path.join(sweep_dir, "runs", entry["run_id"])
        if not os.path.isfile(os.path.join(run, "summary.json")):
            continue
        with open(os.path.join(run, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
        with open(os.path.join(run, "config.json"), encoding="utf-8") as f:
            config = config_from_json(f.read())
        key = source_key(config.data)
        if key not in loaded:
            loaded[key] = whole_dataset(config.data)
        data = view(loaded[key], data_rows(config.data, loaded[key]))
        size = len(data.train)
        point = {"val/mse": summary.get("val/mse", np.nan), "test/mse": summary.get("test/mse", np.nan)}
        if "code_size" in config.model:
            pca = pca_errors(data.train.x, {"val": data.val.x, "test": data.test.x}, int(config.model.code_size))
            point.update({"pca_val/mse": pca["val"], "pca_test/mse": pca["test"]})
        by_size.setdefault(size, []).append(point)
    if not by_size:
        return None
    sizes = sorted(by_size)
    columns = sorted({k for points in by_size.values() for k in points[0]})
    rows = [{"train_examples": n, "members": len(by_size[n]),
             **{c: float(np.mean([p[c] for p in by_size[n]])) for c in columns}} for n in sizes]
    with open(os.path.join(sweep_dir, "size_curve.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["train_examples", "members", *columns])
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    styles = {"val/mse": ("C0", "-", "autoencoder, validation"), "test/mse": ("C0", "--", "autoencoder, test"),
              "pca_val/mse": ("C1", "-", "PCA (same code size), validation"),
              "pca_test/mse": ("C1", "--", "PCA (same code size), test")}
    for c in columns:
        colour, line, label = styles[c]
        ax.plot(sizes, [r[c] for r in rows], line, color=colour, marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("training examples (data.train_examples)")
    ax.set_ylabel("MSE per pixel")
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.join(sweep_dir, "figures"), exist_ok=True)
    path = os.path.join(sweep_dir, "figures", "size_curve.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["pca_errors", "size_curve"]
