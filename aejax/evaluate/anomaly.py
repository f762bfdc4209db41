"""Anomaly detection under the one-class protocol: ROC-AUC and PR-AUC against classical baselines.

The run was trained on one class (`data.normal_class`, recorded by `aejax.data.restrict_to_class`
on the dataset); the whole test split is scored, with that class as normal (label 0) and every
other class as an anomaly (label 1, the positive class of PR-AUC). Higher score = more anomalous.

Autoencoder scores (each reported; option `score` picks the headline `test/auroc`):
  "mse"       per-example reconstruction error (mean squared error over the features);
  "elbo"      the negative ELBO, for kinds with a likelihood (`Likelihood`: VAE, CVAE);
  "code_knn"  mean Euclidean distance of the code to its `knn` nearest training codes;
  "combined"  reconstruction error and code distance together: the sum of the two after
              standardizing each by its mean and std on the (normal-only) validation split;
  "smoothed_mse"  images only: the mean square of the residual x_hat - x after a Gaussian
              low-pass filter over the image plane (std `smooth_sigma` pixels). An error that
              is spatially coherent (a missing sleeve, a wrong silhouette) survives the filter,
              pixel-level texture error averages away; a plain squared error weighs both alike
              (the argument of Bergmann et al. 2019 for structural rather than per-pixel errors);
  "auto"      "elbo" for a `Likelihood` kind, else "mse" (on Fashion-MNIST the code distance
              scored below the reconstruction error, and adding it did not help: docs/evaluation.md).
Baselines on the same split (scikit-learn), each under its own key: PCA reconstruction error
at the model's code size ("pca"; for images also its smoothed error, "pca_smoothed", the same
filter as "smoothed_mse" on PCA's residual), Isolation Forest ("isolation_forest") and a one-class SVM
with an RBF kernel ("ocsvm") on the raw features, all fitted on the training split; for
sequences [N, T, C] also a rolling z-score ("rolling_zscore": each window's largest |z| of a
point against the mean and std of the `zscore_window` points before it, or after it for a
window's first points; `aejax.evaluate.series`; nothing is fitted).

References: Schölkopf et al. 2001, "Estimating the support of a high-dimensional distribution"
(one-class SVM); Liu, Ting & Zhou 2008, "Isolation forest"; Golan & El-Yaniv 2018, "Deep anomaly
detection using geometric transformations" (the one-class Fashion-MNIST protocol); Bergmann et al.
2019, "Improving unsupervised defect segmentation by applying structural similarity to autoencoders".
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from sklearn.neighbors import NearestNeighbors
from sklearn.svm import OneClassSVM

from aejax.errors import ConfigError
from aejax.evaluate.series import rolling_zscore_scores
from aejax.models.protocols import Likelihood

SCORES = ("auto", "mse", "elbo", "code_knn", "combined", "smoothed_mse")


def detection_metrics(scores_N: np.ndarray, is_anomaly_N: np.ndarray) -> dict[str, float]:
    """ROC-AUC and PR-AUC (average precision, anomalies positive) of scores where higher = more anomalous."""
    scores_N, is_anomaly_N = np.asarray(scores_N, np.float64), np.asarray(is_anomaly_N).astype(bool)
    if is_anomaly_N.all() or not is_anomaly_N.any():
        raise ConfigError("anomaly scoring needs both normal and anomalous test examples; the test split has "
                          f"{int(is_anomaly_N.sum())} anomalies among {len(is_anomaly_N)}.")
    if not np.all(np.isfinite(scores_N)):
        raise ConfigError(f"{int(np.sum(~np.isfinite(scores_N)))} anomaly scores are not finite.")
    return {"auroc": float(roc_auc_score(is_anomaly_N, scores_N)),
            "pr_auc": float(average_precision_score(is_anomaly_N, scores_N))}


def is_image_batch(x) -> bool:
    """Whether `x` holds images [N, H, W, C] with a real image plane (not tabular [N, D, 1, 1] or sequences)."""
    return np.ndim(x) == 4 and min(np.shape(x)[1:3]) > 1


def smoothed_squared_error(residual_NxHxWxC: np.ndarray, sigma: float) -> np.ndarray:
    """Mean square of a residual after a Gaussian filter of std `sigma` pixels over H and W -> [N].

    scipy's `gaussian_filter` (reflecting borders); sigma 0 is the plain mean squared error.
    """
    from scipy.ndimage import gaussian_filter

    r = np.asarray(residual_NxHxWxC, np.float64)
    if sigma > 0:
        r = gaussian_filter(r, sigma=(0.0, sigma, sigma, 0.0))
    return np.mean(np.square(r).reshape(len(r), -1), axis=1)


def reconstruction_errors(model, params, x_N, *, batch_size: int = 1000, smooth_sigma: float = 0.0) -> np.ndarray:
    """Per-example mean squared error of model.reconstruct(x) against x -> [N]; with `smooth_sigma` > 0
    (images), of the residual after a Gaussian filter of that std in pixels (`smoothed_squared_error`)."""
    out = []
    for start in range(0, len(x_N), batch_size):
        xb = x_N[start:start + batch_size]
        x_hat = np.asarray(model.reconstruct(params, {"x": xb, "y": np.zeros(len(xb), np.int32)}))
        if smooth_sigma > 0:
            out.append(smoothed_squared_error(x_hat - xb, smooth_sigma))
        else:
            out.append(np.mean(np.square(x_hat - xb).reshape(len(xb), -1), axis=1))
    return np.concatenate(out)


def codes(model, params, x_N, *, batch_size: int = 1000) -> np.ndarray:
    """Deterministic codes [N, K] in batches."""
    return np.concatenate([np.asarray(model.encode(params, {"x": x_N[s:s + batch_size],
                                                            "y": np.zeros(len(x_N[s:s + batch_size]), np.int32)}))
                           for s in range(0, len(x_N), batch_size)])


def negative_elbo(model, params, x_N, hp, *, key, batch_size: int = 1000) -> np.ndarray:
    """-ELBO per example [N] (one posterior sample each, keys folded from `key` per batch)."""
    out = []
    for i, start in enumerate(range(0, len(x_N), batch_size)):
        xb = x_N[start:start + batch_size]
        elbo = model.elbo(params, {"x": xb, "y": np.zeros(len(xb), np.int32)}, key=jax.random.fold_in(key, i), hp=hp)
        out.append(-np.asarray(elbo, np.float64))
    return np.concatenate(out)


def knn_distance(train_NxK: np.ndarray, query_MxK: np.ndarray, k: int) -> np.ndarray:
    """Mean distance of each query row to its k nearest training rows -> [M]."""
    nn = NearestNeighbors(n_neighbors=min(k, len(train_NxK))).fit(train_NxK)
    dist, _ = nn.kneighbors(query_MxK)
    return dist.mean(axis=1)


def baseline_scores(train_x: np.ndarray, test_x: np.ndarray, *, code_size: int, seed: int,
                    ocsvm_nu: float = 0.1, smooth_sigma: float = 0.0) -> dict[str, np.ndarray]:
    """Anomaly scores of the classical detectors on raw features, fitted on `train_x` (higher = more anomalous);
    with `smooth_sigma` > 0 also PCA's smoothed residual error ("pca_smoothed", images)."""
    flat_train = train_x.reshape(len(train_x), -1).astype(np.float64)
    flat_test = test_x.reshape(len(test_x), -1).astype(np.float64)
    k = max(1, min(int(code_size), flat_train.shape[0] - 1, flat_train.shape[1]))
    pca = PCA(n_components=k, svd_solver="full").fit(flat_train)
    recon = pca.inverse_transform(pca.transform(flat_test))
    forest = IsolationForest(n_estimators=200, random_state=seed).fit(flat_train)
    svm = OneClassSVM(kernel="rbf", gamma="scale", nu=ocsvm_nu).fit(flat_train)
    scores = {"pca": np.mean(np.square(recon - flat_test), axis=1),
              "isolation_forest": -forest.score_samples(flat_test),
              "ocsvm": -svm.decision_function(flat_test)}
    if smooth_sigma > 0:
        scores["pca_smoothed"] = smoothed_squared_error((recon - flat_test).reshape(test_x.shape), smooth_sigma)
    return scores


def anomaly_task(model, params, dataset, hp, *, seed: int, out_dir: str, score: str = "auto", knn: int = 5,
                 baselines: bool = True, ocsvm_nu: float = 0.1, batch_size: int = 1000, zscore_window: int = 16,
                 per_class: bool = False, smooth_sigma: float = 1.0) -> dict[str, Any]:
    """Scores the test split of a one-class run; the autoencoder beside PCA, Isolation Forest, one-class SVM.

    Args:
      model, params, dataset, hp: a run trained with data.normal_class set (any kind; "elbo"
        needs a `Likelihood` kind).
      seed: the run's seed (ELBO samples, Isolation Forest).
      out_dir: where anomaly.png (score histograms and ROC curves) goes.
      score: the headline autoencoder score, one of SCORES (see the module docstring).
      knn: neighbours for the code-distance score.
      baselines: also fit the three classical detectors.
      ocsvm_nu: the one-class SVM's nu (upper bound on the training outlier fraction).
      smooth_sigma: std in pixels of the Gaussian filter of "smoothed_mse" and "pca_smoothed" (images).
      zscore_window: past points of the rolling z-score baseline (sequence data only; 2 to T / 2).
      per_class: also report every detector's AUROC for each anomalous class against the normal
        class alone ("test/<detector>_auroc_class<c>"; e.g. spikes, level shifts and frequency
        changes of `series_anomalies`).
    Returns:
      "test/auroc", "test/pr_auc" (the headline score, named in "score"), "test/<detector>_auroc"
      and "test/<detector>_pr_auc" for every autoencoder score and baseline, "normal_class",
      "detectors": {name: {"auroc", "pr_auc"}}, "figures".
    """
    if score not in SCORES:
        raise ConfigError(f"unknown anomaly score {score!r}; choose one of {list(SCORES)}.")
    likelihood = isinstance(model, Likelihood)
    if score == "elbo" and not likelihood:
        raise ConfigError(f"score='elbo' needs a kind with a likelihood (vae, cvae); the {model.name!r} kind has "
                          "none: use score='mse', 'code_knn' or 'combined'.")
    if score == "auto":
        score = "elbo" if likelihood else "mse"
    normal = getattr(dataset, "normal_class", None)
    if normal is None:
        raise ConfigError("the anomaly task needs a one-class run: train with data.normal_class=C (the class "
                          "seen as normal); this run trained on every class.")
    if knn < 1:
        raise ConfigError(f"knn must be >= 1, got {knn}.")
    images = is_image_batch(dataset.test.x)
    if score == "smoothed_mse" and not images:
        raise ConfigError(f"score='smoothed_mse' filters the residual over the image plane, but this data has shape "
                          f"{tuple(np.shape(dataset.test.x)[1:])} per example; use score='mse'.")
    if smooth_sigma <= 0:
        raise ConfigError(f"smooth_sigma must be > 0 pixels, got {smooth_sigma}.")
    test_x = dataset.test.x
    is_anomaly = dataset.test.y != normal

    err = {name: reconstruction_errors(model, params, s.x, batch_size=batch_size)
           for name, s in (("val", dataset.val), ("test", dataset.test))}
    z = {name: codes(model, params, s.x, batch_size=batch_size)
         for name, s in (("train", dataset.train), ("val", dataset.val), ("test", dataset.test))}
    dist = {name: knn_distance(z["train"], z[name], knn) for name in ("val", "test")}
    standard = lambda a, ref: (a - ref.mean()) / (ref.std() + 1e-12)
    ae_scores = {"mse": err["test"], "code_knn": dist["test"],
                 "combined": standard(err["test"], err["val"]) + standard(dist["test"], dist["val"])}
    if images:
        ae_scores["smoothed_mse"] = reconstruction_errors(model, params, test_x, batch_size=batch_size,
                                                          smooth_sigma=smooth_sigma)
    if likelihood:
        ae_scores["elbo"] = negative_elbo(model, params, test_x, hp, key=jax.random.key(seed), batch_size=batch_size)
    all_scores = dict(ae_scores)
    if baselines:
        all_scores.update(baseline_scores(dataset.train.x, test_x, code_size=model.code_size, seed=seed,
                                          ocsvm_nu=ocsvm_nu, smooth_sigma=smooth_sigma if images else 0.0))
        if np.ndim(test_x) == 3:
            all_scores["rolling_zscore"] = rolling_zscore_scores(test_x, zscore_window)
    detectors = {name: detection_metrics(s, is_anomaly) for name, s in all_scores.items()}
    results: dict[str, Any] = {"test/auroc": detectors[score]["auroc"], "test/pr_auc": detectors[score]["pr_auc"],
                               "score": score, "normal_class": int(normal),
                               "test/anomaly_fraction": float(is_anomaly.mean())}
    for name, m in detectors.items():
        results[f"test/{name}_auroc"], results[f"test/{name}_pr_auc"] = m["auroc"], m["pr_auc"]
    if per_class:
        for c in sorted(set(np.unique(dataset.test.y).tolist()) - {int(normal)}):
            keep = (dataset.test.y == normal) | (dataset.test.y == c)
            for name, sc in all_scores.items():
                results[f"test/{name}_auroc_class{c}"] = detection_metrics(sc[keep], is_anomaly[keep])["auroc"]
    results["detectors"] = detectors
    results["figures"] = [_figure(all_scores, score, is_anomaly, normal, out_dir)]
    return results


def _figure(all_scores, headline, is_anomaly, normal, out_dir) -> str:
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    fig, (ax_h, ax_r) = plt.subplots(1, 2, figsize=(9, 3.6))
    s = all_scores[headline]
    bins = np.linspace(np.percentile(s, 0.5), np.percentile(s, 99.5), 50)
    ax_h.hist(s[~is_anomaly], bins=bins, alpha=0.6, density=True, label=f"normal (class {normal})")
    ax_h.hist(s[is_anomaly], bins=bins, alpha=0.6, density=True, label="anomalies (other classes)")
    ax_h.set_title(f"autoencoder score: {headline}")
    ax_h.set_xlabel("score (higher = more anomalous)")
    ax_h.legend(fontsize=8)
    for name, sc in all_scores.items():
        fpr, tpr, _ = roc_curve(is_anomaly, sc)
        ax_r.plot(fpr, tpr, lw=2 if name == headline else 1, label=f"{name} ({roc_auc_score(is_anomaly, sc):.3f})")
    ax_r.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax_r.set_xlabel("false positive rate")
    ax_r.set_ylabel("true positive rate")
    ax_r.set_title("ROC (AUROC in brackets)")
    ax_r.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out_dir, "anomaly.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
