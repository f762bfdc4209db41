"""Face recognition on the Olivetti protocol: identification and verification against classical baselines.

The data (`data.name=olivetti_faces`, `aejax.data.faces`): per person, enrolled faces 0-4 (training,
less one validation face per person by default) and probes 5-9 (the 200 test images).

Every method gives a score matrix S [Q, 40]: how much query face q looks like person c (higher = more
alike). Identification ranks the 40 people for each probe: rank-1 accuracy and the cumulative match
curve (CMC: the share of probes whose own person is among the first r, r = 1..`max_rank`).
Verification takes every (probe, person) pair as a claim: 200 genuine and 7,800 impostor pairs;
ROC AUC, the equal error rate (EER: where the false acceptance rate equals the false rejection rate,
linear between ROC points) and the false rejection rate at a false acceptance rate of 1%
(the best operating point whose FAR is at most 1%).

Two kinds of method:
  feature methods: faces become vectors (an autoencoder's codes, eigenfaces, fisherfaces); a query's score
    for person c is minus its distance (Euclidean or cosine) to c's nearest enrolled face or to c's mean;
  per-person residual methods: each person has their own model (a per-person autoencoder, or the
    person's own principal subspace); a query's score for c is minus its reconstruction error under c's
    model, raw, relative to c's own enrolled faces' mean error ("ratio"), or z-normalised.
Z-normalisation ("znorm", both kinds): person c's scores minus the mean, over the std, of c's scores
of the other people's enrolled faces (the impostor cohort; enrolled faces only).

Everything chosen (the distance, nearest or mean, the normalisation, the number of components) is chosen on
validation: the validation faces are scored against a gallery of the training faces, and the candidate with
the lowest (1 - rank-1) + EER wins (the first listed on a tie). On test, the gallery is every enrolled face
(training and validation); models and subspaces are fitted on the training split only, as the autoencoder was.

Baselines (scikit-learn), fitted on the run's training split: eigenfaces (PCA, nearest neighbour; the number
of components chosen on validation), fisherfaces (PCA to at most N - 40 components, then LDA to 39; the PCA
width chosen on validation), and the per-person PCA residual (each person's mean and top-k principal
directions of their own training faces: the linear twin of the per-person autoencoder; k chosen on
validation).

References: Turk & Pentland 1991, "Eigenfaces for recognition"; Belhumeur, Hespanha & Kriegman 1997,
"Eigenfaces vs. Fisherfaces"; Samaria & Harter 1994 (the data); Auckenthaler, Carey & Lloyd-Thomas 2000,
"Score normalization for text-independent speaker verification" (Z-norm).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Callable, Sequence

import numpy as np

from aejax.errors import ConfigError

DISTANCES = ("euclidean", "cosine")
AGGREGATES = ("nearest", "mean")
FEATURE_NORMS = ("none", "znorm")
RESIDUAL_NORMS = ("none", "ratio", "znorm")
METRIC_KEYS = ("rank1", "verification_auroc", "eer", "frr_at_far_1pct")


# ----------------------------------------------------------------------------------------------- metrics

def match_ranks(scores_QxC: np.ndarray, labels_Q: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of each query's own person among the C people; ties count against the query."""
    s = np.asarray(scores_QxC, np.float64)
    own = s[np.arange(len(s)), np.asarray(labels_Q)]
    return np.sum(s >= own[:, None], axis=1)


def cmc(scores_QxC: np.ndarray, labels_Q: np.ndarray, max_rank: int = 10) -> np.ndarray:
    """Cumulative match curve: [max_rank], the share of queries whose person ranks r or better, r = 1..max_rank."""
    ranks = match_ranks(scores_QxC, labels_Q)
    return np.array([float(np.mean(ranks <= r)) for r in range(1, max_rank + 1)])


def genuine_impostor(scores_QxC: np.ndarray, labels_Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (query, person) pair as a verification claim: the Q genuine scores and the Q * (C - 1) impostor ones."""
    s = np.asarray(scores_QxC, np.float64)
    genuine = np.zeros(s.shape, bool)
    genuine[np.arange(len(s)), np.asarray(labels_Q)] = True
    return s[genuine], s[~genuine]


def roc_points(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) at every threshold t (accept when score >= t), from accepting nothing to accepting all."""
    genuine, impostor = np.asarray(genuine, np.float64), np.asarray(impostor, np.float64)
    thresholds = np.unique(np.concatenate([genuine, impostor]))[::-1]
    far = np.searchsorted(np.sort(-impostor), -thresholds, side="right") / len(impostor)
    tar = np.searchsorted(np.sort(-genuine), -thresholds, side="right") / len(genuine)
    return np.concatenate([[0.0], far]), np.concatenate([[0.0], tar])


def equal_error_rate(far: np.ndarray, tar: np.ndarray) -> float:
    """Where FAR = FRR (= 1 - TAR) on the ROC polyline through (far, tar), FAR increasing."""
    d = far - (1.0 - tar)  # rises from -1 to +1 along the curve
    i = int(np.argmax(d >= 0))
    if i == 0:
        return float(far[0])
    t = -d[i - 1] / (d[i] - d[i - 1])
    return float(far[i - 1] + t * (far[i] - far[i - 1]))


def verification_metrics(scores_QxC: np.ndarray, labels_Q: np.ndarray) -> dict[str, Any]:
    """ROC AUC, EER and FRR at FAR 1% of every (query, person) claim; also the ROC points (for figures)."""
    genuine, impostor = genuine_impostor(scores_QxC, labels_Q)
    far, tar = roc_points(genuine, impostor)
    auc = float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2.0))
    frr = float(1.0 - tar[far <= 0.01 + 1e-12].max())
    return {"verification_auroc": auc, "eer": equal_error_rate(far, tar), "frr_at_far_1pct": frr,
            "far": far, "tar": tar}


def recognition_metrics(scores_QxC: np.ndarray, labels_Q: np.ndarray, max_rank: int = 10) -> dict[str, Any]:
    """rank1, cmc, verification_auroc, eer, frr_at_far_1pct (and far, tar) of a score matrix."""
    curve = cmc(scores_QxC, labels_Q, max_rank)
    return {"rank1": float(curve[0]), "cmc": curve, **verification_metrics(scores_QxC, labels_Q)}


def _cost(metrics: dict) -> float:
    """What validation minimises: (1 - rank-1) + EER."""
    return (1.0 - metrics["rank1"]) + metrics["eer"]


# ------------------------------------------------------------------------------------------- scoring rules

def feature_scores(query_QxK: np.ndarray, gallery_GxK: np.ndarray, gallery_labels_G: np.ndarray, people: int, *,
                   distance: str, aggregate: str) -> np.ndarray:
    """Minus the distance of each query to each person's nearest gallery vector, or to their mean: [Q, people]."""
    q, g = np.asarray(query_QxK, np.float64), np.asarray(gallery_GxK, np.float64)
    if distance == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    if aggregate == "mean":
        g = np.stack([g[gallery_labels_G == c].mean(axis=0) for c in range(people)])
        gallery_labels_G = np.arange(people)
    if distance == "cosine":
        d = 1.0 - q @ g.T / np.maximum(np.linalg.norm(g, axis=1)[None, :], 1e-12)
    else:
        d = np.sqrt(np.maximum((q ** 2).sum(1)[:, None] + (g ** 2).sum(1)[None, :] - 2.0 * q @ g.T, 0.0))
    out = np.full((len(q), people), np.inf)
    for c in range(people):
        out[:, c] = d[:, gallery_labels_G == c].min(axis=1)
    return -out


def normalise(scores_QxC: np.ndarray, gallery_scores_GxC: np.ndarray, gallery_labels_G: np.ndarray,
              how: str) -> np.ndarray:
    """Per-person score normalisation from enrolled faces only.

    "none"; "znorm": (s - mean) / std of person c's scores of the other people's gallery faces;
    "ratio" (residual scores = minus an error): s / the mean error of c's own gallery faces.
    """
    s, g = np.asarray(scores_QxC, np.float64), np.asarray(gallery_scores_GxC, np.float64)
    if how == "none":
        return s
    people = s.shape[1]
    out = np.empty_like(s)
    for c in range(people):
        own, cohort = g[gallery_labels_G == c, c], g[gallery_labels_G != c, c]
        if how == "znorm":
            out[:, c] = (s[:, c] - cohort.mean()) / max(cohort.std(), 1e-12)
        elif how == "ratio":
            out[:, c] = s[:, c] / max(-own.mean(), 1e-12)
        else:
            raise ConfigError(f"unknown score normalisation {how!r}.")
    return out


def person_subspaces(fit_x_NxD: np.ndarray, fit_labels_N: np.ndarray, people: int) -> list[tuple]:
    """Each person's mean and principal directions (rows, strongest first) of their own faces in `fit_x`."""
    out = []
    for c in range(people):
        xc = np.asarray(fit_x_NxD[fit_labels_N == c], np.float64)
        mu = xc.mean(axis=0)
        _, s, vt = np.linalg.svd(xc - mu, full_matrices=False)
        out.append((mu, vt[s > s[0] * 1e-8] if s.size and s[0] > 0 else vt[:0]))
    return out


def person_pca_errors(subspaces: list[tuple], query_QxD: np.ndarray, components: int) -> np.ndarray:
    """Squared residual (mean over features) of each query outside each person's affine principal subspace
    (their mean and top `components` directions, `person_subspaces`): [Q, people]."""
    q = np.asarray(query_QxD, np.float64)
    out = np.empty((len(q), len(subspaces)))
    for c, (mu, vt) in enumerate(subspaces):
        v = vt[:components]
        r = (q - mu) - ((q - mu) @ v.T) @ v
        out[:, c] = np.mean(r ** 2, axis=1)
    return out


# ------------------------------------------------------------------------------------------- methods

class Faces:
    """The protocol's faces flattened: training (`xt`, `yt`), validation (`xv`, `yv`), probes (`xp`, `yp`)."""

    def __init__(self, train, val, test, people: int):
        flat = lambda s: np.asarray(s.x, np.float64).reshape(len(s.x), -1)
        self.xt, self.yt = flat(train), np.asarray(train.y)
        self.xv, self.yv = flat(val), np.asarray(val.y)
        self.xp, self.yp = flat(test), np.asarray(test.y)
        self.people = people
        self.xe, self.ye = np.concatenate([self.xt, self.xv]), np.concatenate([self.yt, self.yv])  # enrolled
        for name, y in (("training", self.yt), ("validation", self.yv)):
            missing = sorted(set(range(people)) - set(y.tolist()))
            if missing:
                raise ConfigError(f"the faces task needs every person's {name} faces; persons {missing} have none.")


def choose_feature_rule(features: Callable[[np.ndarray], np.ndarray], faces: Faces, max_rank: int):
    """The distance, aggregate and normalisation of a feature method chosen on validation; its test scores."""
    ft, fv, fp = (features(x) for x in (faces.xt, faces.xv, faces.xp))
    fe = np.concatenate([ft, fv])  # faces.xe: the training faces, then the validation faces
    best = None
    for distance in DISTANCES:
        for aggregate in AGGREGATES:
            raw_v = feature_scores(fv, ft, faces.yt, faces.people, distance=distance, aggregate=aggregate)
            cohort = feature_scores(ft, ft, faces.yt, faces.people, distance=distance, aggregate=aggregate)
            for norm in FEATURE_NORMS:
                m = recognition_metrics(normalise(raw_v, cohort, faces.yt, norm), faces.yv, max_rank)
                if best is None or _cost(m) < best[0] - 1e-12:
                    best = (_cost(m), (distance, aggregate, norm), m)
    _, (distance, aggregate, norm), val = best
    test = normalise(feature_scores(fp, fe, faces.ye, faces.people, distance=distance, aggregate=aggregate),
                     feature_scores(fe, fe, faces.ye, faces.people, distance=distance, aggregate=aggregate),
                     faces.ye, norm)
    return {"distance": distance, "aggregate": aggregate, "normalisation": norm}, val, test


def choose_residual_rule(errors: Callable[[np.ndarray], np.ndarray], faces: Faces, max_rank: int):
    """The normalisation of a per-person residual method chosen on validation; its test scores.

    `errors(x)` -> [N, people]: each face's reconstruction error under each person's model (fitted on training).
    Validation's gallery (for ratio and znorm) is the training faces; test's is every enrolled face.
    """
    et, ev, ep = (errors(x) for x in (faces.xt, faces.xv, faces.xp))
    ee = np.concatenate([et, ev])  # faces.xe: the training faces, then the validation faces
    best = None
    for norm in RESIDUAL_NORMS:
        m = recognition_metrics(normalise(-ev, -et, faces.yt, norm), faces.yv, max_rank)
        if best is None or _cost(m) < best[0] - 1e-12:
            best = (_cost(m), norm, m)
    _, norm, val = best
    return {"normalisation": norm}, val, normalise(-ep, -ee, faces.ye, norm)


def _pca_widths(n: int, d: int, upto: int | None = None) -> list[int]:
    top = min(n - 1, d) if upto is None else upto
    return sorted({k for k in (5, 10, 20, 30, 40, 60, 80, 100, 120, 150, 200, 300) if k <= top} | {top})


def _fitted_pca(faces: Faces, top: int, seed: int) -> Callable[[np.ndarray, int], np.ndarray]:
    """PCA of the training faces at width `top`; `project(x, k)` gives the first k coefficients (nested widths).

    Through the N x N Gram matrix of the centred faces (N << D pixels): its eigenvectors U and values s^2
    give the principal directions X^T U / s, the same as an SVD of the centred faces (up to signs).
    """
    del seed  # deterministic: no randomized solver
    mean = faces.xt.mean(axis=0)
    xc = faces.xt - mean
    evals, evecs = np.linalg.eigh(xc @ xc.T)
    order = np.argsort(evals)[::-1][:top]
    evals, evecs = evals[order], evecs[:, order]
    keep = evals > evals[0] * 1e-10
    components = (xc.T @ evecs[:, keep] / np.sqrt(evals[keep])).T  # [k, D], orthonormal rows
    return lambda x, k: (x - mean) @ components[:k].T


def eigenfaces(faces: Faces, max_rank: int, seed: int):
    """PCA of the training faces, nearest neighbour; the width and the scoring rule chosen on validation."""
    widths = _pca_widths(len(faces.xt), faces.xt.shape[1])
    project = _fitted_pca(faces, widths[-1], seed)
    best = None
    for k in widths:
        rule, val, test = choose_feature_rule(lambda x, k=k: project(x, k), faces, max_rank)
        if best is None or _cost(val) < _cost(best[1]) - 1e-12:
            best = ({"components": k, **rule}, val, test)
    return best


def fisherfaces(faces: Faces, max_rank: int, seed: int):
    """PCA to k <= N - people components, then LDA to people - 1; k and the scoring rule chosen on validation."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    top = min(len(faces.xt) - faces.people, faces.xt.shape[1])
    widths = [k for k in _pca_widths(len(faces.xt), faces.xt.shape[1], top) if k >= faces.people - 1] or [top]
    project = _fitted_pca(faces, widths[-1], seed)
    best = None
    for k in widths:
        lda = LinearDiscriminantAnalysis(solver="svd").fit(project(faces.xt, k), faces.yt)
        rule, val, test = choose_feature_rule(lambda x, k=k, lda=lda: lda.transform(project(x, k)), faces, max_rank)
        if best is None or _cost(val) < _cost(best[1]) - 1e-12:
            best = ({"components": k, **rule}, val, test)
    return best


def person_pca(faces: Faces, max_rank: int):
    """Each person's own principal subspace of their training faces; k and the normalisation chosen on validation."""
    subspaces = person_subspaces(faces.xt, faces.yt, faces.people)
    per_person = min(len(vt) for _, vt in subspaces)
    best = None
    for k in range(0, per_person + 1):
        errors = lambda x, k=k: person_pca_errors(subspaces, x, k)
        rule, val, test = choose_residual_rule(errors, faces, max_rank)
        if best is None or _cost(val) < _cost(best[1]) - 1e-12:
            best = ({"components": k, **rule}, val, test)
    return best


def baselines(faces: Faces, max_rank: int, seed: int) -> dict[str, tuple]:
    return {"eigenfaces": eigenfaces(faces, max_rank, seed), "fisherfaces": fisherfaces(faces, max_rank, seed),
            "person_pca": person_pca(faces, max_rank)}


# ------------------------------------------------------------------------------------------- results

def _results(own: dict[str, tuple], others: dict[str, tuple], faces: Faces, max_rank: int) -> tuple[dict, dict]:
    """The JSON: every aejax method under "aejax/<name>/", the one with the best validation cost (the headline,
    "method") also as "test/<metric>"; baselines under "baselines/<name>/"; the choices and the table."""
    headline = min(own, key=lambda name: _cost(own[name][1]))
    results: dict[str, Any] = {"method": headline}
    table, curves = {}, {}
    entries = [(f"aejax/{n}/", n, v) for n, v in own.items()] + [(f"baselines/{n}/", n, v) for n, v in others.items()]
    if headline in own:
        entries.insert(0, ("", headline, own[headline]))
    for prefix, name, (choice, val, test_scores) in entries:
        test = recognition_metrics(test_scores, faces.yp, max_rank)
        for key in METRIC_KEYS:
            results[f"{prefix}test/{key}"] = test[key]
            results[f"{prefix}val/{key}"] = val[key]
        results[f"{prefix}test/cmc"] = [float(v) for v in test["cmc"]]
        results[f"{prefix}choice"] = ", ".join(f"{k}={v}" for k, v in choice.items())
        if prefix:
            table[name] = {**{k: round(float(test[k]), 4) for k in METRIC_KEYS},
                           "chosen on validation": results[f"{prefix}choice"]}
            curves[name] = test
    names = list(table)
    results["best/rank1"] = max(names, key=lambda n: table[n]["rank1"])
    results["best/eer"] = min(names, key=lambda n: table[n]["eer"])
    results["beats_every_baseline"] = bool(all(results["test/rank1"] > table[b]["rank1"] and
                                               results["test/eer"] < table[b]["eer"] for b in others))
    results["test/probes"], results["test/genuine_pairs"] = len(faces.yp), len(faces.yp)
    results["test/impostor_pairs"] = len(faces.yp) * (faces.people - 1)
    results["methods"] = table
    return results, curves


def _curves_figure(curves: dict[str, dict], out_dir: str, max_rank: int, headline: str) -> str:
    """The ROC and the cumulative match curve of every method, the headline (chosen on validation) drawn thick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_r, ax_c) = plt.subplots(1, 2, figsize=(10, 4))
    for name, m in curves.items():
        width = 2.4 if name == headline else 1.2
        ax_r.plot(np.maximum(m["far"], 1e-4), 1 - m["tar"], lw=width,
                  label=f"{name} (EER {m['eer']:.3f})")
        ax_c.plot(range(1, max_rank + 1), m["cmc"], marker="o", ms=3, lw=width,
                  label=f"{name} (rank-1 {m['rank1']:.3f})")
    ax_r.set(xscale="log", xlim=(1e-4 * 0.9, 1), ylim=(0, 1), xlabel="false acceptance rate (log)",
             ylabel="false rejection rate", title="verification: 200 genuine, 7,800 impostor pairs")
    ax_r.axvline(0.01, color="grey", lw=0.6, ls=":")
    ax_c.set(xlabel="rank", ylabel="probes identified at this rank or better", title="cumulative match curve",
             xticks=range(1, max_rank + 1))
    ax_r.legend(fontsize=7)
    ax_c.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "faces_roc_cmc.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _probe_grid(columns: dict[str, np.ndarray], shape: tuple, out_dir: str, caption: str) -> str:
    """Rows = probes; columns = named image stacks [n, D]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(columns)
    n = len(next(iter(columns.values())))
    fig, axes = plt.subplots(n, len(names), figsize=(1.5 * len(names), 1.5 * n), squeeze=False)
    for r in range(n):
        for c, name in enumerate(names):
            ax = axes[r, c]
            ax.imshow(np.asarray(columns[name][r]).reshape(shape[:2]), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=7)
    fig.suptitle(caption, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path = os.path.join(out_dir, "faces_probes.png")
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _shown_probes(scores_QxC: np.ndarray, labels_Q: np.ndarray, num: int) -> tuple[np.ndarray, np.ndarray]:
    """`num` probes to show (every 25th, so several people), and each one's best wrong person."""
    idx = np.linspace(0, len(labels_Q) - 1, num).astype(int)
    wrong = scores_QxC.copy()
    wrong[np.arange(len(wrong)), labels_Q] = -np.inf
    return idx, np.argmax(wrong, axis=1)[idx]


def _check_dataset(dataset) -> None:
    if dataset.name != "olivetti_faces":
        raise ConfigError(f"the faces task needs a run on data.name=olivetti_faces; this run's dataset is "
                          f"{dataset.name}.")


def faces_task(model, params, dataset, hp, *, seed: int, out_dir: str, max_rank: int = 10, lda: bool = True,
               probes_shown: int = 8) -> dict[str, Any]:
    """Face identification and verification with a shared autoencoder's codes, beside eigenfaces, fisherfaces
    and the per-person PCA residual (for a per-person sweep's workdir: `faces_population_task`).

    Args:
      model, params, dataset, hp: a run trained on every enrolled person (data.name=olivetti_faces,
        data.normal_class=-1); its codes are compared by the distance chosen on validation.
      seed: the run's seed (PCA's solver).
      out_dir: where faces_roc_cmc.png and faces_probes.png go.
      max_rank: the cumulative match curve's last rank.
      lda: also score the codes after a linear discriminant analysis fitted on the training codes (the
        fisherfaces recipe with the autoencoder in place of PCA; "<kind> codes + LDA"). The headline is the
        aejax method with the better validation cost.
      probes_shown: rows of the probe figure.
    Returns:
      "test/rank1", "test/verification_auroc", "test/eer", "test/frr_at_far_1pct", "test/cmc" (the headline
      method, named in "method") and the same under "aejax/<method>/" and "baselines/<name>/"; "val/..." (the
      chosen rule's validation numbers); "choice"; "methods" (the table); "best/rank1", "best/eer",
      "beats_every_baseline"; "figures".
    """
    del hp
    _check_dataset(dataset)
    if dataset.normal_class is not None:
        raise ConfigError(f"this run was trained on one person (data.normal_class={dataset.normal_class}); "
                          "evaluate the per-person sweep's directory instead, or a run on every person.")
    if max_rank < 1:
        raise ConfigError(f"max_rank must be >= 1, got {max_rank}.")
    import jax.numpy as jnp

    faces = Faces(dataset.train, dataset.val, dataset.test, dataset.num_classes)
    shape = dataset.input_shape

    def run_model(fn, x_NxD):
        out = [np.asarray(fn(params, {"x": jnp.asarray(x_NxD[i:i + 256].reshape(-1, *shape), jnp.float32),
                                      "y": jnp.zeros(len(x_NxD[i:i + 256]), jnp.int32)}))
               for i in range(0, len(x_NxD), 256)]
        return np.concatenate(out).reshape(len(x_NxD), -1)

    encoded = {}

    def codes(x_NxD):  # each face set is encoded once
        key = (x_NxD.shape, hashlib.sha256(np.ascontiguousarray(x_NxD)).hexdigest())
        if key not in encoded:
            encoded[key] = run_model(model.encode, x_NxD)
        return encoded[key]

    name = f"{model.name} codes"
    own = {name: choose_feature_rule(codes, faces, max_rank)}
    if lda:
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        fitted = LinearDiscriminantAnalysis(solver="svd").fit(codes(faces.xt), faces.yt)
        own[f"{name} + LDA"] = choose_feature_rule(lambda x: fitted.transform(codes(x)), faces, max_rank)
    results, curves = _results(own, baselines(faces, max_rank, seed), faces, max_rank)
    headline = own[results["method"]]
    idx, wrong = _shown_probes(headline[2], faces.yp, probes_shown)
    rule = headline[0]
    fe = codes(faces.xe) if "LDA" not in results["method"] else fitted.transform(codes(faces.xe))
    feature = (lambda x: codes(x)) if "LDA" not in results["method"] else (lambda x: fitted.transform(codes(x)))

    def nearest(person_of_row):
        picks = []
        for r, c in zip(idx, person_of_row):
            mine = np.flatnonzero(faces.ye == c)
            d = -feature_scores(fe[mine], feature(faces.xp[r:r + 1]), np.zeros(1, int), 1,
                                distance=rule["distance"], aggregate="nearest")[:, 0]
            picks.append(faces.xe[mine[np.argmin(d)]])
        return np.stack(picks)

    columns = {"probe": faces.xp[idx], "reconstruction\n(shared model)": run_model(model.reconstruct, faces.xp[idx]),
               "right person\n(closest enrolled)": nearest(faces.yp[idx]),
               "best wrong person\n(closest enrolled)": nearest(wrong)}
    results["figures"] = [_curves_figure(curves, out_dir, max_rank, results["method"]),
                          _probe_grid(columns, shape, out_dir,
                                      "probes, their reconstruction, the closest enrolled face\n"
                                      "of the right and of the best-scoring wrong person")]
    return results


def faces_population_task(runs: Sequence[Any], *, seed: int, out_dir: str, max_rank: int = 10,
                          probes_shown: int = 8) -> dict[str, Any]:
    """Face identification and verification with one autoencoder per enrolled person (a per-person sweep:
    each run trained with data.normal_class = its person), beside the same baselines as `faces_task`.

    A query's score for person c is minus its reconstruction error (mean squared) under c's model, normalised
    as chosen on validation ("none", "ratio" to c's own enrolled faces' mean error, or "znorm").

    Args:
      runs: the sweep's loaded runs (`aejax.evaluate.LoadedRun`), one per person.
      seed, out_dir, max_rank, probes_shown: as for `faces_task`.
    """
    if max_rank < 1:
        raise ConfigError(f"max_rank must be >= 1, got {max_rank}.")
    if not runs:
        raise ConfigError("the per-person faces task needs the sweep's runs; this directory has none.")
    for run in runs:
        _check_dataset(run.dataset)
    by_person = {}
    for run in runs:
        p = run.dataset.normal_class
        if p is None:
            raise ConfigError(f"{run.workdir} was trained on every person; a per-person sweep trains each run on one "
                              "(data.normal_class).")
        if p in by_person:
            raise ConfigError(f"two runs of this sweep were trained on person {p}: {by_person[p].workdir} and "
                              f"{run.workdir}; keep one run per person.")
        by_person[p] = run
    people = runs[0].dataset.num_classes
    missing = sorted(set(range(people)) - set(by_person))
    if missing:
        raise ConfigError(f"the per-person sweep has no run for persons {missing}; train them first "
                          "(aejax sweep ... resumes).")
    data_options = lambda run: {k: v for k, v in run.config.data.to_dict().items() if k != "normal_class"}
    first = data_options(runs[0])
    for run in runs:
        if data_options(run) != first:
            raise ConfigError(f"{run.workdir}'s data options {data_options(run)} differ from {runs[0].workdir}'s "
                              f"{first}; the people must share one protocol.")
    from aejax.data.datasets import Split

    ordered = [by_person[p] for p in range(people)]
    cat = lambda split: Split(np.concatenate([getattr(r.dataset, split).x for r in ordered]),
                              np.concatenate([getattr(r.dataset, split).y for r in ordered]))
    test = ordered[0].dataset.test
    faces = Faces(cat("train"), cat("val"), test, people)
    shape = ordered[0].dataset.input_shape

    def errors(x_NxD):
        x = x_NxD.reshape(-1, *shape)
        out = np.empty((len(x), people))
        for p, run in enumerate(ordered):
            rec = np.concatenate([run.reconstruct(x[i:i + 256]) for i in range(0, len(x), 256)])
            out[:, p] = np.mean((rec.reshape(len(x), -1) - x_NxD) ** 2, axis=1)
        return out

    own = choose_residual_rule(errors, faces, max_rank)
    method = f"per-person {ordered[0].model.name} autoencoders"
    results, curves = _results({method: own}, baselines(faces, max_rank, seed), faces, max_rank)
    idx, wrong = _shown_probes(own[2], faces.yp, probes_shown)
    probe = faces.xp[idx].reshape(-1, *shape)
    under = lambda persons: np.stack([ordered[c].reconstruct(probe[i:i + 1])[0] for i, c in enumerate(persons)])
    columns = {"probe": faces.xp[idx], "under the right\nperson's model": under(faces.yp[idx]),
               "under the best wrong\nperson's model": under(wrong)}
    results["figures"] = [_curves_figure(curves, out_dir, max_rank, results["method"]),
                          _probe_grid(columns, shape, out_dir, "probes reconstructed by the right person's\n"
                                      "autoencoder and the best-scoring wrong person's")]
    return results
