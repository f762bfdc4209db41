import numpy as np

from aejax.evaluate.reconstruction import pca_reconstruction_mse


def test_pca_baseline_matches_numpy_svd():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(3, 16))
    train = (rng.normal(size=(200, 3)) @ basis + 0.1 * rng.normal(size=(200, 16))).reshape(200, 4, 4, 1)
    test = (rng.normal(size=(50, 3)) @ basis + 0.1 * rng.normal(size=(50, 16))).reshape(50, 4, 4, 1)
    flat_train, flat_test = train.reshape(200, -1), test.reshape(50, -1)
    mean = flat_train.mean(axis=0)
    _, _, vt = np.linalg.svd(flat_train - mean, full_matrices=False)
    for k in (1, 3, 8):
        proj = (flat_test - mean) @ vt[:k].T @ vt[:k] + mean
        np.testing.assert_allclose(pca_reconstruction_mse(train, test, k), np.mean((proj - flat_test) ** 2), rtol=1e-6)
