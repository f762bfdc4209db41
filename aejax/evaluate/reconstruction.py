"""Reconstruction error on the test split, compared with PCA of the same code size."""

from __future__ import annotations

import os

import numpy as np
from sklearn.decomposition import PCA



def pca_reconstruction_mse(train_x: np.ndarray, test_x: np.ndarray, num_components: int) -> float:
    """Test MSE per pixel of a PCA with `num_components` fitted on the training split (sklearn)."""
    flat_train = train_x.reshape(len(train_x), -1)
    flat_test = test_x.reshape(len(test_x), -1)
    pca = PCA(n_components=num_components, svd_solver="randomized", random_state=0).fit(flat_train)
    recon = pca.inverse_transform(pca.transform(flat_test))
    return float(np.mean(np.square(recon - flat_test)))


def reconstruction_task(model, params, dataset, hp, *, seed: int, out_dir: str,
                        batch_size: int = 1000) -> dict[str, float]:
    """Test MSE per pixel of the model and of PCA with the model's code size."""
    from aejax.viz.figures import image_rows

    del hp, seed  # deterministic
    x, y = dataset.test.x, dataset.test.y
    errors = []
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        x_hat = np.asarray(model.reconstruct(params, {"x": xb, "y": y[start:start + batch_size]}))
        errors.append(np.sum(np.square(x_hat - xb)))
    k = int(model.code_size)
    results = {"test/mse": float(np.sum(errors) / x.size),
               f"test/pca{k}_mse": pca_reconstruction_mse(dataset.train.x, x, k)}
    os.makedirs(out_dir, exist_ok=True)
    recon = np.asarray(model.reconstruct(params, {"x": x[:10], "y": y[:10]}))
    results["figures"] = [image_rows([x[:10], recon], ["input", "recon"],
                                      os.path.join(out_dir, "eval_reconstruction.png"))]
    return results
