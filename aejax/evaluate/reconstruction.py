"""Reconstruction error on the test split, compared with PCA of the same code size."""

from __future__ import annotations

import os

import numpy as np
from sklearn.decomposition import PCA

from aejax.evaluate.run import LoadedRun


def pca_reconstruction_mse(train_x: np.ndarray, test_x: np.ndarray, num_components: int) -> float:
    """Test MSE per pixel of a PCA with `num_components` fitted on the training split (sklearn)."""
    flat_train = train_x.reshape(len(train_x), -1)
    flat_test = test_x.reshape(len(test_x), -1)
    pca = PCA(n_components=num_components, svd_solver="randomized", random_state=0).fit(flat_train)
    recon = pca.inverse_transform(pca.transform(flat_test))
    return float(np.mean(np.square(recon - flat_test)))


def reconstruction_task(run: LoadedRun, *, batch_size: int = 1000) -> dict[str, float]:
    """Test MSE per pixel of the model and of PCA with the model's code size."""
    from aejax.viz.figures import image_rows

    x = run.dataset.test.x
    errors = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        x_hat = np.asarray(run.model.reconstruct(run.params, {"x": xb, "y": run.dataset.test.y[start:start + batch_size]}))
        errors.append(np.sum(np.square(x_hat - xb)))
    k = int(run.config.model.code_size)
    results = {"test/mse": float(np.sum(errors) / x.size),
               f"test/pca{k}_mse": pca_reconstruction_mse(run.dataset.train.x, x, k)}
    os.makedirs(os.path.join(run.workdir, "figures"), exist_ok=True)
    recon = np.asarray(run.model.reconstruct(run.params, {"x": x[:10], "y": run.dataset.test.y[:10]}))
    image_rows([x[:10], recon], ["input", "recon"], os.path.join(run.workdir, "figures", "eval_reconstruction.png"))
    return results
