"""Figures for generative models (matplotlib, Agg): sample grids, interpolations, 2-D code maps.

Image grids reuse `aejax.viz.figures.image_rows`.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from aejax.viz.figures import image_rows  # noqa: E402


def sample_grid(rows: Sequence[np.ndarray], labels: Sequence[str], path: str, *, title: str = "") -> str:
    """Saves samples [N, H, W, C] per row (e.g. one row per class) with a label on the left."""
    return image_rows(rows, labels, path, title=title)


def interpolation_figure(rows: Sequence[np.ndarray], labels: Sequence[str], path: str, *, title: str = "") -> str:
    """Saves interpolation paths, one row per path (endpoints are the first and last image)."""
    return image_rows(rows, labels, path, title=title)


def code_map(codes_Nx2: np.ndarray, labels_N: np.ndarray, path: str, *, title: str = "",
             class_names: Sequence[str] | None = None, centres_Cx2: np.ndarray | None = None,
             axis_labels: tuple[str, str] = ("z1", "z2")) -> str:
    """Scatter of 2-D codes coloured by label; optional prior component centres as black crosses."""
    codes = np.asarray(codes_Nx2)
    labels = np.asarray(labels_N)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        sel = labels == c
        name = class_names[int(c)] if class_names is not None and int(c) < len(class_names) else str(c)
        ax.scatter(codes[sel, 0], codes[sel, 1], s=3, alpha=0.5, color=cmap(i % cmap.N), label=name)
    if centres_Cx2 is not None:
        centres = np.asarray(centres_Cx2)
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", s=15, linewidths=1.0, color="black", label="prior means")
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", s=70, linewidths=2.0, color="black")
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.legend(markerscale=4, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
