"""Generation: samples from the prior, interpolations between test images, a 2-D code map,
moments of the codes against the prior, and (for label-conditional models) how often a
classifier trained on real data recognizes the requested class in conditional samples.

References: Kingma & Welling 2013 (sampling a VAE); Shoemake 1985, "Animating rotation with
quaternion curves" and White 2016, "Sampling Generative Networks" (spherical interpolation);
Makhzani et al. 2015 (code maps of adversarial autoencoders).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax.errors import ConfigError
from aejax.models import Sampler

FASHION_MNIST_CLASSES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Boot")


def linear_interpolation(z0_K, z1_K, num: int):
    """Points (1 - t) z0 + t z1 for t = 0, 1/(num-1), ..., 1 -> [num, K]."""
    t = jnp.linspace(0.0, 1.0, num)[:, None]
    return (1.0 - t) * z0_K[None] + t * z1_K[None]


def spherical_interpolation(z0_K, z1_K, num: int):
    """Spherical interpolation (slerp) between z0 and z1 -> [num, K]; linear when they are (anti)parallel.

    slerp(t) = sin((1 - t) w) / sin w * z0 + sin(t w) / sin w * z1, with w the angle between them.

    References: Shoemake 1985; White 2016, "Sampling Generative Networks".
    """
    t = jnp.linspace(0.0, 1.0, num)[:, None]
    n0, n1 = jnp.linalg.norm(z0_K), jnp.linalg.norm(z1_K)
    cos = jnp.clip(jnp.dot(z0_K, z1_K) / jnp.maximum(n0 * n1, 1e-12), -1.0, 1.0)
    omega = jnp.arccos(cos)
    sin = jnp.sin(omega)
    degenerate = sin < 1e-6
    safe_sin = jnp.where(degenerate, 1.0, sin)
    slerp = (jnp.sin((1.0 - t) * omega) * z0_K[None] + jnp.sin(t * omega) * z1_K[None]) / safe_sin
    return jnp.where(degenerate, linear_interpolation(z0_K, z1_K, num), slerp)


def code_moments(codes_NxK: np.ndarray, prior_mean_K: np.ndarray, prior_cov_KxK: np.ndarray) -> dict[str, float]:
    """Largest absolute differences between the codes' mean/covariance and the prior's."""
    codes = np.asarray(codes_NxK, np.float64)
    mean = codes.mean(axis=0)
    cov = np.cov(codes, rowvar=False).reshape(codes.shape[1], codes.shape[1])
    return {"code_mean_max_abs_err": float(np.max(np.abs(mean - prior_mean_K))),
            "code_cov_max_abs_err": float(np.max(np.abs(cov - prior_cov_KxK))),
            "prior_var_max": float(np.max(np.diag(prior_cov_KxK)))}


def fit_classifier(x: np.ndarray, y: np.ndarray, *, seed: int = 0):
    """Multinomial logistic regression on flattened pixels (scikit-learn), trained on real data."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=300, random_state=seed)
    with warnings.catch_warnings():  # lbfgs capped at 300 iterations: accuracy is already stable there
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(x.reshape(len(x), -1), y)


def conditional_sample_accuracy(model, params, classifier, num_classes: int, *, key, per_class: int) -> dict:
    """Fraction of `per_class` conditional samples per class that `classifier` assigns to the requested class."""
    labels = jnp.repeat(jnp.arange(num_classes), per_class)
    samples = np.asarray(model.sample(params, len(labels), key=key, labels=labels))
    pred = classifier.predict(samples.reshape(len(samples), -1))
    hits = pred == np.asarray(labels)
    per = hits.reshape(num_classes, per_class).mean(axis=1)
    return {"conditional_sample_accuracy": float(hits.mean()),
            "conditional_sample_accuracy_per_class": [float(v) for v in per]}


def generation_task(model, params, dataset, hp, *, seed: int, out_dir: str, rows: int = 6, per_row: int = 10,
                    num_pairs: int = 4, steps: int = 10, map_examples: int = 5000, per_class: int = 100,
                    classifier_examples: int = 10000) -> dict[str, Any]:
    """Writes figures/samples.png, interpolation.png and code_map.png; returns code and sample statistics.

    Args:
      rows, per_row: the prior-sample grid (a label-conditional model draws one row per class).
      num_pairs, steps: interpolation paths between test images (same class for conditional models).
      map_examples: test examples in the code map and the moment check.
      per_class: conditional samples per class for the classifier check (0: skip it).
      classifier_examples: real training images the classifier is fitted on.
      seed: key seed (the run's seed); out_dir: where the figures go.
    """
    from aejax.viz.generative import code_map, interpolation_figure, sample_grid

    if min(rows, per_row, steps) < 1 or num_pairs < 0 or map_examples < 2 or per_class < 0:
        raise ConfigError("rows, per_row and steps must be >= 1, num_pairs and per_class >= 0, map_examples >= 2.")
    del hp
    if not isinstance(model, Sampler):
        raise ConfigError(f"model kind {model.name!r} cannot sample; the generation task needs a VAE, CVAE or AAE.")
    key = jax.random.key(seed)
    k_grid, k_cls, k_codes = jax.random.split(key, 3)
    os.makedirs(out_dir, exist_ok=True)
    names = FASHION_MNIST_CLASSES if dataset.name == "fashion_mnist" else tuple(str(i) for i in range(100))
    conditional = model.label_conditional
    results: dict[str, Any] = {}
    figures = []

    # 1. samples from the prior
    if conditional:
        c = dataset.num_classes
        labels = jnp.repeat(jnp.arange(c), per_row)
        s = np.asarray(model.sample(params, c * per_row, key=k_grid, labels=labels)).reshape(c, per_row,
                                                                                             *dataset.input_shape)
        figures.append(sample_grid(list(s), [names[i] for i in range(c)], os.path.join(out_dir, "samples.png"),
                                   title="class-conditional samples, one row per class"))
    else:
        s = np.asarray(model.sample(params, rows * per_row, key=k_grid)).reshape(rows, per_row, *dataset.input_shape)
        figures.append(sample_grid(list(s), [""] * rows, os.path.join(out_dir, "samples.png"),
                                   title="samples from the prior (decoder means)"))

    # 2. interpolations between test images
    test = dataset.test
    if num_pairs:
        pairs = _pairs(test.y, num_pairs, same_class=conditional)
        idx = np.asarray(pairs).reshape(-1)
        codes = model.encode(params, {"x": test.x[idx], "y": test.y[idx]})
        rows_img, row_labels = [], []
        for p, (i, j) in enumerate(pairs):
            z0, z1 = codes[2 * p], codes[2 * p + 1]
            lab = jnp.full((steps,), int(test.y[i]), jnp.int32)
            for name, fn in (("lin", linear_interpolation), ("slerp", spherical_interpolation)):
                path = fn(z0, z1, steps)
                rows_img.append(np.asarray(model.decode(params, path, lab if conditional else None)))
                row_labels.append(f"{name} {i}-{j}")
        figures.append(interpolation_figure(rows_img, row_labels, os.path.join(out_dir, "interpolation.png"),
                                            title="linear and spherical interpolation between test codes"))

    # 3. code map and moments
    n = min(map_examples, len(test))
    batch = {"x": test.x[:n], "y": test.y[:n]}
    means = np.asarray(model.encode(params, batch))
    sampled = np.asarray(model.sample_codes(params, batch, key=k_codes))
    prior_mean, prior_cov = model.prior_moments()
    results.update({f"test/{k}": v for k, v in code_moments(sampled, prior_mean, prior_cov).items()})
    if means.shape[1] == 2:
        xy, axes = means, ("z1", "z2")
    else:
        from sklearn.decomposition import PCA

        xy, axes = PCA(n_components=2, random_state=0).fit_transform(means), ("PC 1 of codes", "PC 2 of codes")
    centres = model.prior_centres()
    if centres is not None:
        nearest = np.argmin(np.linalg.norm(means[:, None, :] - centres[None], axis=-1), axis=1)
        results["test/code_cluster_purity"] = _purity(nearest, test.y[:n])
        if conditional:
            results["test/code_component_accuracy"] = float(np.mean(nearest == test.y[:n]))
    results["test/code_map_knn_accuracy"] = _knn_accuracy(xy, test.y[:n])
    figures.append(code_map(xy, test.y[:n], os.path.join(out_dir, "code_map.png"), class_names=names,
                            centres_Cx2=centres, axis_labels=axes,
                            title=f"test codes ({'2-D' if means.shape[1] == 2 else 'PCA of'} means), by label"))

    # 4. conditional samples judged by a classifier trained on real data
    if conditional and per_class:
        m = min(classifier_examples, len(dataset.train))
        clf = fit_classifier(dataset.train.x[:m], dataset.train.y[:m], seed=0)
        results["test/classifier_accuracy_on_real"] = float(
            clf.score(test.x.reshape(len(test), -1), test.y))
        acc = conditional_sample_accuracy(model, params, clf, dataset.num_classes, key=k_cls, per_class=per_class)
        results["test/conditional_sample_accuracy"] = acc["conditional_sample_accuracy"]
        results["conditional_sample_accuracy_per_class"] = acc["conditional_sample_accuracy_per_class"]
    results["figures"] = figures
    return results


def _pairs(y: np.ndarray, num_pairs: int, *, same_class: bool) -> list[tuple[int, int]]:
    """Deterministic pairs of test indices (of the same class when asked)."""
    pairs = []
    later_half = np.arange(len(y)) >= len(y) // 2
    for p in range(num_pairs):
        i = 2 * p
        candidates = np.flatnonzero(((y == y[i]) if same_class else (y != y[i])) & later_half)
        pairs.append((i, int(candidates[p % len(candidates)]) if len(candidates) else (i + 1) % len(y)))
    return pairs


def _purity(assigned: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of examples whose cluster's majority label is their label."""
    total = 0
    for c in np.unique(assigned):
        total += np.bincount(labels[assigned == c]).max()
    return float(total / len(labels))


def _knn_accuracy(xy: np.ndarray, labels: np.ndarray) -> float:
    """5-nearest-neighbour accuracy on the second half of the map, fitted on the first half."""
    from sklearn.neighbors import KNeighborsClassifier

    half = len(xy) // 2
    clf = KNeighborsClassifier(n_neighbors=5).fit(xy[:half], labels[:half])
    return float(clf.score(xy[half:], labels[half:]))
