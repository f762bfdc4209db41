"""How useful the codes are as features: linear probe, kNN, and a 2-D map, beside PCA and raw pixels.

Features compared on the same examples: the model's codes (width K), PCA of the pixels at the
same width K (fitted on the training examples used), and the raw pixels. For each, a
logistic-regression probe (on standardized features) and a k-nearest-neighbour classifier are
fitted on up to `max_train` training examples and scored on the test split. The 2-D map is the
codes themselves when K = 2, else PCA of the codes to two dimensions (labelled as such); its
trustworthiness (scikit-learn, Venna & Kaski 2001) is measured against the test pixels, beside
that of PCA of the pixels to two dimensions.

References: Alain & Bengio 2016, "Understanding intermediate layers using linear classifier
probes"; Venna & Kaski 2001 (trustworthiness); Hinton & Salakhutdinov 2006 (autoencoder codes
against PCA).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import trustworthiness
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aejax.errors import ConfigError
from aejax.evaluate.anomaly import codes


def probe_scores(train_NxF: np.ndarray, train_y: np.ndarray, test_MxF: np.ndarray, test_y: np.ndarray, *,
                 knn: int = 5, max_iter: int = 1000) -> dict[str, float]:
    """Test accuracy of a logistic-regression probe (standardized features) and of a kNN classifier."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter)).fit(train_NxF, train_y)
    neighbours = KNeighborsClassifier(n_neighbors=min(knn, len(train_NxF))).fit(train_NxF, train_y)
    return {"probe_accuracy": float(probe.score(test_MxF, test_y)),
            "knn_accuracy": float(neighbours.score(test_MxF, test_y))}


def map_2d(z_NxK: np.ndarray) -> tuple[np.ndarray, str]:
    """The 2-D map of codes: the codes when K = 2 (or K = 1, padded), else their first two principal components."""
    if z_NxK.shape[1] == 2:
        return z_NxK, "codes"
    if z_NxK.shape[1] == 1:
        return np.concatenate([z_NxK, np.zeros_like(z_NxK)], axis=1), "codes (1-D)"
    return PCA(n_components=2).fit_transform(z_NxK), "PCA of the codes"


def representation_task(model, params, dataset, hp, *, seed: int, out_dir: str, max_train: int = 10000,
                        knn: int = 5, map_examples: int = 2000, trust_neighbors: int = 5,
                        batch_size: int = 1000) -> dict[str, Any]:
    """Probe and kNN accuracy of the codes, PCA at the same width and raw pixels; 2-D map trustworthiness.

    Args:
      model, params, dataset, hp: the trained run (any kind; codes from `encode`).
      seed: the run's seed (the subset of training examples when max_train is below the split).
      out_dir: where representation_map.png goes.
      max_train: training examples used to fit probes and PCA (0: all).
      knn: neighbours of the kNN classifier.
      map_examples: test examples in the 2-D map and its trustworthiness.
      trust_neighbors: neighbourhood size of the trustworthiness.
    Returns:
      "test/{codes,pca,raw}_{probe,knn}_accuracy", "test/trustworthiness" (the code map),
      "test/pca_trustworthiness" (PCA of pixels to 2-D), "code_size", "map", "figures".
    """
    del hp
    if max_train < 0 or knn < 1 or map_examples < trust_neighbors + 2 or trust_neighbors < 1:
        raise ConfigError(f"need max_train >= 0, knn >= 1, trust_neighbors >= 1 and map_examples > "
                          f"trust_neighbors + 1; got {max_train}, {knn}, {trust_neighbors}, {map_examples}.")
    train, test = dataset.train, dataset.test
    if len(np.unique(train.y)) < 2:
        raise ConfigError(f"the representation task fits classifiers on the labels, but this run's training split "
                          f"holds one class ({int(train.y[0])}: a one-class run); evaluate a run trained on all "
                          "classes.")
    idx = np.arange(len(train))
    if max_train and max_train < len(train):
        idx = np.sort(np.random.default_rng(seed).permutation(len(train))[:max_train])
    x_tr, y_tr = train.x[idx], train.y[idx]
    flat_tr, flat_te = x_tr.reshape(len(x_tr), -1), test.x.reshape(len(test.x), -1)
    z_tr, z_te = codes(model, params, x_tr, batch_size=batch_size), codes(model, params, test.x, batch_size=batch_size)
    k = int(z_tr.shape[1])
    pca = PCA(n_components=min(k, flat_tr.shape[1]), random_state=0).fit(flat_tr)
    features = {"codes": (z_tr, z_te), "pca": (pca.transform(flat_tr), pca.transform(flat_te)),
                "raw": (flat_tr, flat_te)}
    results: dict[str, Any] = {"code_size": k, "train_examples": int(len(idx))}
    for name, (f_tr, f_te) in features.items():
        for metric, value in probe_scores(f_tr, y_tr, f_te, test.y, knn=knn).items():
            results[f"test/{name}_{metric}"] = value
    m = min(map_examples, len(test))
    map_codes, how = map_2d(z_te[:m])
    map_pca = PCA(n_components=2).fit(flat_tr).transform(flat_te[:m])
    results["test/trustworthiness"] = float(trustworthiness(flat_te[:m], map_codes, n_neighbors=trust_neighbors))
    results["test/pca_trustworthiness"] = float(trustworthiness(flat_te[:m], map_pca, n_neighbors=trust_neighbors))
    results["map"] = how
    results["figures"] = [_figure(map_codes, map_pca, test.y[:m], how, k, results, out_dir)]
    return results


def _figure(map_codes, map_pca, y, how, k, results, out_dir) -> str:
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, pts, title in ((axes[0], map_codes, f"{how} (code width {k}); trust. "
                            f"{results['test/trustworthiness']:.3f}"),
                           (axes[1], map_pca, f"PCA of the pixels; trust. {results['test/pca_trustworthiness']:.3f}")):
        sc = ax.scatter(pts[:, 0], pts[:, 1], c=y, cmap="tab10", s=4, vmin=-0.5, vmax=9.5)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=axes, ticks=range(10), label="class")
    path = os.path.join(out_dir, "representation_map.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
