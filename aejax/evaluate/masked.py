"""The masked autoencoder's evaluation: masked-patch PSNR and a linear probe of its features.

Masks are sets of patches (the MAE's own unit): "random" (the run's mask ratio, per image, from
the run's seed), "centre" (the central block of patches, half the patch grid's height and width)
and "block" (a block of the same size at a random position in each image). For each, the PSNR
= 10 log10(1 / MSE) with the MSE pooled over every masked pixel of the test split, for
  the MAE (visible patches in, masked patches predicted),
  "visible mean" filling: each masked pixel set to the mean of that image's visible pixels, and
  "train mean" filling: each masked pixel set to the training split's mean image at that pixel.
The linear probe is a scikit-learn LogisticRegression on standardized features of the first
`probe_train` training images, scored on the test split: the MAE's code (mean-pooled encoder
features of the full, unmasked image), raw pixels, and PCA with as many components as the code.
figures/eval_mae.png shows masked input (masked patches grey) / reconstruction / original rows.

References: He et al. 2021, "Masked Autoencoders Are Scalable Vision Learners" (masked-patch
reconstruction, linear probing of mean-pooled features); Pathak et al. 2016, "Context Encoders"
(centre and block masks).
"""

from __future__ import annotations

import os
import time
from typing import Protocol, runtime_checkable

import jax
import numpy as np

from aejax.errors import ConfigError
from aejax.nets.transformer import patch_grid, patchify, unpatchify

MASKS = ("random", "centre", "block")


@runtime_checkable
class MaskedPatchModel(Protocol):
    """A kind that predicts hidden patches from visible ones (the MAE)."""

    patch_size: int
    num_patches: int
    num_visible: int

    def keep_indices(self, key, batch_size: int):
        ...

    def inpaint(self, params, x_BxHxWxC, keep_BxV):
        ...


def block_mask(grid: tuple[int, int], top_N: np.ndarray, left_N: np.ndarray) -> np.ndarray:
    """[N, P] bool, True for the patches of a (grid_h // 2) x (grid_w // 2) block at (top, left)."""
    bh, bw = max(1, grid[0] // 2), max(1, grid[1] // 2)
    rows, cols = np.meshgrid(np.arange(grid[0]), np.arange(grid[1]), indexing="ij")
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    inside = ((rows[None] >= top_N[:, None]) & (rows[None] < top_N[:, None] + bh)
              & (cols[None] >= left_N[:, None]) & (cols[None] < left_N[:, None] + bw))
    return inside


def keep_from_masked(masked_NxP: np.ndarray) -> np.ndarray:
    """Indices [N, V] of the unmasked patches (every row must mask the same number)."""
    counts = masked_NxP.sum(axis=1)
    if not np.all(counts == counts[0]):
        raise ValueError("every image must mask the same number of patches")
    visible = masked_NxP.shape[1] - int(counts[0])
    return np.argsort(masked_NxP, axis=1, kind="stable")[:, :visible].astype(np.int32)


def masks_for(kind: str, model, num: int, key) -> np.ndarray:
    """[num, P] bool masks (True = hidden) of the given kind."""
    grid = patch_grid(model.input_shape, model.patch_size)
    if kind == "random":
        keep = np.asarray(model.keep_indices(key, num))
        masked = np.ones((num, model.num_patches), bool)
        masked[np.arange(num)[:, None], keep] = False
        return masked
    bh, bw = max(1, grid[0] // 2), max(1, grid[1] // 2)
    if kind == "centre":
        top, left = np.full(num, (grid[0] - bh) // 2), np.full(num, (grid[1] - bw) // 2)
    else:
        k_top, k_left = jax.random.split(key)
        top = np.asarray(jax.random.randint(k_top, (num,), 0, grid[0] - bh + 1))
        left = np.asarray(jax.random.randint(k_left, (num,), 0, grid[1] - bw + 1))
    return block_mask(grid, top, left)


def psnr_from_mse(mse: float) -> float:
    return float(10.0 * np.log10(1.0 / mse)) if mse > 0 else float("inf")


def linear_probe_accuracy(train_f: np.ndarray, train_y: np.ndarray, test_f: np.ndarray, test_y: np.ndarray,
                          *, seed: int) -> float:
    """Test accuracy of a logistic regression on standardized features (scikit-learn, lbfgs)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_f)
    clf = LogisticRegression(max_iter=1000, random_state=seed).fit(scaler.transform(train_f), train_y)
    return float(clf.score(scaler.transform(test_f), test_y))


def _inpaint_all(model, params, x, masked_NxP, batch_size: int) -> np.ndarray:
    keep = keep_from_masked(masked_NxP)
    inpaint = jax.jit(model.inpaint)
    out = [np.asarray(inpaint(params, x[s:s + batch_size], keep[s:s + batch_size]))
           for s in range(0, len(x), batch_size)]
    return np.concatenate(out)


def mae_task(model, params, dataset, hp, *, seed: int, out_dir: str, batch_size: int = 500,
             probe_train: int = 10000, probe: bool = True) -> dict:
    """Masked-patch PSNR (random, centre, block masks) against mean filling, and linear probes.

    Args:
      batch_size: images per inpainting / encoding call.
      probe_train: training images the probes are fitted on (the first ones of the split).
      probe: run the three linear probes (the slow part: raw pixels take the longest).

    Returns:
      Flat keys: "test/<mask>_psnr", "test/<mask>_visible_mean_psnr", "test/<mask>_train_mean_psnr",
      "test/<mask>_masked_fraction" for each mask; "probe/mae_acc", "probe/pixels_acc",
      "probe/pca<K>_acc"; "norm_pix_uses_hidden_stats" (True when the predictions are normalized
      pixels mapped back with the hidden patches' own mean and std).
    """
    from aejax.viz.figures import image_rows

    del hp
    if not isinstance(model, MaskedPatchModel):
        raise ConfigError(f"task 'mae' needs a masked autoencoder run (model.kind=mae); this run is "
                          f"{getattr(model, 'name', type(model).__name__)!r}: use --task reconstruction instead.")
    if batch_size < 1 or probe_train < 10:
        raise ConfigError(f"batch_size must be >= 1 and probe_train >= 10, got {batch_size} and {probe_train}.")
    p = model.patch_size
    x_test, y_test = np.asarray(dataset.test.x), np.asarray(dataset.test.y)
    train_mean = np.mean(np.asarray(dataset.train.x), axis=0, keepdims=True)
    train_mean_patches = np.asarray(patchify(train_mean, p))[0]  # [P, D]
    test_patches = np.asarray(patchify(x_test, p))  # [N, P, D]
    key = jax.random.fold_in(jax.random.key(seed), 12)
    results: dict = {"norm_pix_uses_hidden_stats": bool(getattr(model, "norm_pix_loss", False))}
    figure_rows, figure_labels = [], []
    start = time.perf_counter()
    for i, kind in enumerate(MASKS):
        masked = masks_for(kind, model, len(x_test), jax.random.fold_in(key, i))
        recon = np.asarray(patchify(_inpaint_all(model, params, x_test, masked, batch_size), p))
        m = masked[:, :, None]
        count = m.sum() * test_patches.shape[-1]
        visible_mean = (np.sum(test_patches * ~m, axis=(1, 2), keepdims=True)
                        / (np.sum(~m, axis=(1, 2), keepdims=True) * test_patches.shape[-1]))
        err = {"": recon, "_visible_mean": np.broadcast_to(visible_mean, test_patches.shape),
               "_train_mean": np.broadcast_to(train_mean_patches, test_patches.shape)}
        for name, estimate in err.items():
            mse = float(np.sum(np.square(estimate - test_patches) * m) / count)
            results[f"test/{kind}{name}_psnr"] = psnr_from_mse(mse)
        results[f"test/{kind}_masked_fraction"] = float(masked.mean())
        shown = np.where(m[:10], 0.5, test_patches[:10])
        figure_rows += [np.asarray(unpatchify(shown, p, model.input_shape)),
                        np.asarray(unpatchify(recon[:10], p, model.input_shape))]
        figure_labels += [f"{kind}\nmasked", "MAE"]
    figure_rows.append(x_test[:10])
    figure_labels.append("original")
    results["time/inpainting_s"] = time.perf_counter() - start

    if probe:
        start = time.perf_counter()
        n = min(int(probe_train), len(dataset.train))
        x_train, y_train = np.asarray(dataset.train.x[:n]), np.asarray(dataset.train.y[:n])
        encode = jax.jit(lambda xb: model.encode(params, {"x": xb}))

        def features(x):
            return np.concatenate([np.asarray(encode(x[s:s + batch_size])) for s in range(0, len(x), batch_size)])

        from sklearn.decomposition import PCA

        k = int(model.code_size)
        flat_train, flat_test = x_train.reshape(n, -1), x_test.reshape(len(x_test), -1)
        pca = PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(flat_train)
        results["probe/mae_acc"] = linear_probe_accuracy(features(x_train), y_train, features(x_test), y_test,
                                                         seed=seed)
        results[f"probe/pca{k}_acc"] = linear_probe_accuracy(pca.transform(flat_train), y_train,
                                                             pca.transform(flat_test), y_test, seed=seed)
        results["probe/pixels_acc"] = linear_probe_accuracy(flat_train, y_train, flat_test, y_test, seed=seed)
        results["probe/train_size"] = n
        results["time/probe_s"] = time.perf_counter() - start

    os.makedirs(out_dir, exist_ok=True)
    image_rows(figure_rows, figure_labels, os.path.join(out_dir, "eval_mae.png"),
               title="masked test inputs (grey: hidden patches), MAE reconstructions, originals")
    return results
