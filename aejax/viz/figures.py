"""Figures (matplotlib, Agg backend): reconstruction grids and training curves.

Images [N, H, W, C] are drawn as tiles; sequences [N, T, C] as line plots (one panel per
example, one line per channel), through the same `image_rows` entry point.
"""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402



def _tile(images_NxHxWxC: np.ndarray, gap: int = 1) -> np.ndarray:
    """Images side by side with a white gap: [H, N * (W + gap) - gap, C], clipped to [0, 1]."""
    images = np.clip(np.asarray(images_NxHxWxC, np.float32), 0.0, 1.0)
    n, h, w, c = images.shape
    out = np.ones((h, n * (w + gap) - gap, c), np.float32)
    for j in range(n):
        out[:, j * (w + gap):j * (w + gap) + w] = images[j]
    return out


def sequence_rows(rows: Sequence[np.ndarray], labels: Sequence[str], path: str, *, title: str = "",
                  overlay: bool = False) -> str:
    """Saves sequences [N, T, C] as line plots: one panel per example, one line per channel.

    With `overlay`, every row is drawn into the same panels (e.g. inputs dashed under their
    reconstructions, the legend naming the rows); otherwise one row of panels per array.
    """
    n = min(len(r) for r in rows)
    grid_rows = 1 if overlay else len(rows)
    fig, axes = plt.subplots(grid_rows, n, figsize=(1.6 * n, 1.3 * grid_rows + 0.4), squeeze=False,
                             sharex=True, sharey=True)
    styles = ("--", "-", ":", "-.")
    for r, (row, label) in enumerate(zip(rows, labels)):
        row = np.asarray(row, np.float32)
        for j in range(n):
            ax = axes[0 if overlay else r, j]
            for c in range(row.shape[-1]):
                ax.plot(row[j, :, c], styles[r % len(styles)] if overlay else "-", lw=1.0, color=f"C{c}",
                        alpha=0.6 if overlay and r == 0 else 1.0, label=label if overlay and c == 0 and j == 0 else None)
            ax.tick_params(labelsize=6)
        if not overlay:
            axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center")
    if overlay:
        axes[0, 0].legend(fontsize=6, loc="best")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def image_rows(rows: Sequence[np.ndarray], labels: Sequence[str], path: str, *, title: str = "") -> str:
    """Saves a grid with one row per array of images [N, H, W, C], labelled on the left.

    Each row is one tiled image (one axes per row, not per image: cheap to draw for every run of a sweep).
    Sequences [N, T, C] are drawn as lines instead (`sequence_rows`).
    """
    if np.ndim(rows[0]) == 3:
        return sequence_rows(rows, labels, path, title=title)
    n = min(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(1.1 * n, 1.2 * len(rows)), squeeze=False)
    for ax, row, label in zip(axes[:, 0], rows, labels):
        tiled = _tile(np.asarray(row)[:n])
        if tiled.shape[-1] == 1:
            ax.imshow(tiled[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(tiled, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


KL_WARMUP_LABEL = "KL warm-up: the loss rises as the KL weight grows"
LR_WARMUP_LABEL = "learning-rate warm-up"


def schedule_phases(records: Sequence[dict], *, kl_warmup_steps: int = 0,
                    lr_warmup_steps: int = 0) -> list[tuple[str, float, float]]:
    """The schedule phases that explain a training curve, as (label, first epoch, last epoch).

    Steps become epochs through the records' "step" field (the global step at the end of each
    epoch): a warm-up of S steps ends at epoch S / steps_per_epoch. Empty without step counts.
    """
    first = next((r for r in records if r.get("step") and r.get("epoch")), None)
    if first is None:
        return []
    steps_per_epoch = float(first["step"]) / float(first["epoch"])
    last_epoch = float(max(r.get("epoch", 0) for r in records))
    phases = []
    for label, steps in ((KL_WARMUP_LABEL, kl_warmup_steps), (LR_WARMUP_LABEL, lr_warmup_steps)):
        if steps and steps > 0:  # a warm-up longer than the run is shaded up to its last epoch
            phases.append((label, 0.0, min(float(steps) / steps_per_epoch, last_epoch)))
    return phases


def training_curves(records: Sequence[dict], path: str, *, kl_warmup_steps: int = 0, lr_warmup_steps: int = 0) -> str:
    """Plots train/val loss and val MSE per epoch from a run's metrics.jsonl records.

    Args:
      records: the run's metrics.jsonl records (`aejax.train.metrics.read_metrics`); path: the PNG to write.
      kl_warmup_steps, lr_warmup_steps: warm-up lengths in steps (0: none); each is shaded and
        labelled on both panels (converted to epochs with the records' "step" field), since a
        VAE's loss rises while its KL weight grows and a warm-up's curve is flat or jumps.
    """
    epochs = [r["epoch"] for r in records]
    fig, (ax_loss, ax_mse) = plt.subplots(1, 2, figsize=(9, 3.2))
    phases = schedule_phases(records, kl_warmup_steps=kl_warmup_steps, lr_warmup_steps=lr_warmup_steps)
    for ax in (ax_loss, ax_mse):
        for i, (label, start, end) in enumerate(phases):
            ax.axvspan(start, end, color=("C3", "C4")[i % 2], alpha=0.12, label=label if ax is ax_loss else None)
    for key in ("train/loss", "val/loss"):
        ax_loss.plot(epochs, [float(r.get(key, np.nan)) for r in records], label=key)
    ax_mse.plot(epochs, [float(r.get("val/mse", np.nan)) for r in records], label="val/mse", color="C2")
    for ax, name in ((ax_loss, "loss"), (ax_mse, "MSE per pixel")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    if phases:
        ax_loss.set_xlim(left=0)
        ax_mse.set_xlim(left=0)
    ax_mse.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def training_figures(model, params, dataset, workdir: str, *, records: Sequence[dict], num_images: int = 10,
                     lr_warmup_steps: int = 0) -> list[str]:
    """Writes figures/reconstructions.png (test inputs over reconstructions) and figures/curves.png (of
    `records`, the run's metrics.jsonl).

    The curves mark a VAE's linear KL warm-up (from the model) and the learning-rate warm-up
    (`lr_warmup_steps`, in steps, passed by the caller).
    """
    kl_warmup = model.kl_warmup if getattr(model, "kl_schedule", None) == "linear" else 0
    out = os.path.join(workdir, "figures")
    os.makedirs(out, exist_ok=True)
    x = dataset.test.x[:num_images]
    x_hat = np.asarray(model.reconstruct(params, {"x": x, "y": dataset.test.y[:num_images]}))
    if x.ndim == 3:
        paths = [sequence_rows([x, x_hat], ["input", "recon"], os.path.join(out, "reconstructions.png"),
                               title="test inputs (dashed) and reconstructions", overlay=True)]
    else:
        paths = [image_rows([x, x_hat], ["input", "recon"], os.path.join(out, "reconstructions.png"),
                            title="test inputs (top) and reconstructions (bottom)")]
    paths.append(training_curves(records, os.path.join(out, "curves.png"),
                                 kl_warmup_steps=kl_warmup, lr_warmup_steps=lr_warmup_steps))
    return paths
