"""The faces task: its metrics against independent computations, the validation rule, the per-person form."""

import types

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from aejax.data import faces as face_data
from aejax.data.datasets import Split
from aejax.errors import ConfigError
from aejax.evaluate import faces


def _planted(seed=0, queries=200, people=40, shift=1.5):
    """Scores where each query's own person scores `shift` higher on average, with a few ties."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(people), queries // people)
    scores = rng.normal(size=(queries, people))
    scores[np.arange(queries), labels] += shift
    return np.round(scores, 1), labels  # rounding plants ties


def _brute_ranks(scores, labels):
    """Each query's people sorted best first (its own person last among equal scores); rank = position + 1."""
    ranks = []
    for s, y in zip(scores, labels):
        order = sorted(range(len(s)), key=lambda c: (-s[c], c == y))
        ranks.append(order.index(y) + 1)
    return np.array(ranks)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_identification_matches_brute_force(seed):
    scores, labels = _planted(seed)
    ranks = _brute_ranks(scores, labels)
    np.testing.assert_array_equal(faces.match_ranks(scores, labels), ranks)
    curve = faces.cmc(scores, labels, 10)
    np.testing.assert_allclose(curve, [np.mean(ranks <= r) for r in range(1, 11)])
    assert curve[0] == np.mean([np.argmax(s) == y and np.sum(s == s[y]) == 1 for s, y in zip(scores, labels)])
    assert np.all(np.diff(curve) >= 0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_verification_matches_scikit_learn(seed):
    scores, labels = _planted(seed)
    genuine, impostor = faces.genuine_impostor(scores, labels)
    assert len(genuine) == 200 and len(impostor) == 7800
    is_genuine = np.zeros(scores.shape, bool)
    is_genuine[np.arange(200), labels] = True
    m = faces.verification_metrics(scores, labels)
    assert m["verification_auroc"] == pytest.approx(roc_auc_score(is_genuine.ravel(), scores.ravel()), abs=1e-12)
    fpr, tpr, _ = roc_curve(is_genuine.ravel(), scores.ravel(), drop_intermediate=False)
    fnr = 1 - tpr
    i = np.flatnonzero(fnr <= fpr)[0]  # the first ROC point past the crossing; EER linear between it and the last
    t = (fnr[i - 1] - fpr[i - 1]) / ((fnr[i - 1] - fpr[i - 1]) - (fnr[i] - fpr[i]))
    assert m["eer"] == pytest.approx(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]), abs=1e-12)
    assert m["frr_at_far_1pct"] == pytest.approx(1 - tpr[fpr <= 0.01].max(), abs=1e-12)
    assert 0.05 < m["eer"] < 0.3 and m["verification_auroc"] > 0.8  # the planted shift is seen, not its opposite


def test_perfect_and_reversed_scores():
    labels = np.arange(40).repeat(5)
    perfect = -np.abs(labels[:, None] - np.arange(40)[None, :]).astype(float)
    m = faces.recognition_metrics(perfect, labels)
    assert (m["rank1"], m["eer"], m["frr_at_far_1pct"]) == (1.0, 0.0, 0.0)
    assert m["verification_auroc"] == pytest.approx(1.0)
    m = faces.recognition_metrics(-perfect, labels)
    assert m["rank1"] == 0.0 and m["verification_auroc"] < 0.1 and m["eer"] > 0.9


def test_frr_at_far_1pct_takes_the_operating_point_at_exactly_1pct():
    labels = np.arange(40).repeat(5)
    scores = np.full((200, 40), -1.0)
    impostor = np.ones((200, 40), bool)
    impostor[np.arange(200), labels] = False
    scores[np.unravel_index(np.flatnonzero(impostor.ravel())[::100][:78], scores.shape)] = 1.0  # 78 of 7,800: 1%
    scores[np.arange(200), labels] = np.where(np.arange(200) < 150, 10.0, 0.5)
    # Accepting scores >= 0.5 accepts every genuine pair and exactly 78 impostors: FAR 1%, FRR 0.
    assert faces.verification_metrics(scores, labels)["frr_at_far_1pct"] == 0.0
    is_genuine = ~impostor
    fpr, tpr, _ = roc_curve(is_genuine.ravel(), scores.ravel())
    assert 1 - tpr[fpr <= 0.01].max() == 0.0


def test_znorm_uses_other_peoples_gallery_scores():
    gallery_labels = np.array([0, 0, 1, 1, 2])
    gallery = np.arange(15, dtype=float).reshape(5, 3)
    query = np.array([[1.0, 2.0, 3.0]])
    out = faces.normalise(query, gallery, gallery_labels, "znorm")
    for c in range(3):
        cohort = gallery[gallery_labels != c, c]
        assert out[0, c] == pytest.approx((query[0, c] - cohort.mean()) / cohort.std())
    out = faces.normalise(-query, -gallery, gallery_labels, "ratio")
    for c in range(3):
        assert out[0, c] == pytest.approx(-query[0, c] / gallery[gallery_labels == c, c].mean())


def test_person_subspace_residual_matches_scikit_learn_pca():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 30)), np.repeat([0, 1, 2], 4)
    q = rng.normal(size=(5, 30))
    errors = faces.person_pca_errors(faces.person_subspaces(x, y, 3), q, 2)
    for c in range(3):
        pca = PCA(2, svd_solver="full").fit(x[y == c])
        np.testing.assert_allclose(errors[:, c], np.mean((pca.inverse_transform(pca.transform(q)) - q) ** 2, 1))


def _toy_faces(seed=0, people=6, dim=20):
    """People as clusters: 4 training, 1 validation and 5 probe vectors each."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, dim)) * 2
    make = lambda n: (np.repeat(centres, n, 0) + rng.normal(size=(people * n, dim)), np.repeat(np.arange(people), n))
    split = lambda n: Split(*make(n))
    return faces.Faces(split(4), split(1), split(5), people)


def test_validation_never_sees_the_probes():
    toy = _toy_faces()
    seen = []
    rule, val, _ = faces.choose_feature_rule(lambda x: seen.append(x) or x, toy, 5)
    poisoned = _toy_faces()
    poisoned.xp = poisoned.xp[::-1] * 10 + 3  # other probes: the choice and its validation numbers must not move
    rule2, val2, _ = faces.choose_feature_rule(lambda x: x, poisoned, 5)
    assert rule == rule2 and val["rank1"] == val2["rank1"] and val["eer"] == val2["eer"]
    for method in (faces.eigenfaces, faces.fisherfaces):
        a, b = method(toy, 5, 0), method(poisoned, 5, 0)
        assert a[0] == b[0] and a[1]["eer"] == b[1]["eer"]
    a, b = faces.person_pca(toy, 5), faces.person_pca(poisoned, 5)
    assert a[0] == b[0] and a[1]["eer"] == b[1]["eer"]


def test_baselines_recognise_separated_people():
    toy = _toy_faces()
    for name, (choice, val, test) in faces.baselines(toy, 5, 0).items():
        m = faces.recognition_metrics(test, toy.yp, 5)
        assert m["rank1"] > 0.9 and m["eer"] < 0.1, (name, choice, m)


class _PCAModel:
    """A stand-in for one person's autoencoder: reconstruction = projection onto their own subspace."""

    def __init__(self, mu, vt):
        self.mu, self.vt, self.name = mu, vt, "pca-stand-in"

    def reconstruct(self, x):
        flat = x.reshape(len(x), -1)
        return (self.mu + ((flat - self.mu) @ self.vt.T) @ self.vt).reshape(x.shape)


def _population(toy, k=2, drop=None):
    subspaces = faces.person_subspaces(toy.xt, toy.yt, toy.people)
    runs = []
    for p in range(toy.people):
        if p == drop:
            continue
        pick = lambda xs, ys: Split(xs[ys == p].reshape(-1, 4, 5, 1), ys[ys == p])
        dataset = types.SimpleNamespace(name="olivetti_faces", normal_class=p, num_classes=toy.people,
                                        train=pick(toy.xt, toy.yt), val=pick(toy.xv, toy.yv),
                                        test=Split(toy.xp.reshape(-1, 4, 5, 1), toy.yp), input_shape=(4, 5, 1))
        model = _PCAModel(subspaces[p][0], subspaces[p][1][:k])
        runs.append(types.SimpleNamespace(dataset=dataset, model=model, reconstruct=model.reconstruct,
                                          workdir=f"runs/p{p}", config=types.SimpleNamespace(
                                              data=types.SimpleNamespace(to_dict=lambda p=p: {"normal_class": p}))))
    return runs


def test_population_of_person_models_scores_like_its_linear_twin(tmp_path):
    toy = _toy_faces()
    results = faces.faces_population_task(_population(toy, k=2), seed=0, out_dir=str(tmp_path), max_rank=5,
                                          probes_shown=3)
    # Its models are each person's 2-component subspace: the residual rule chosen is the per-person PCA's at k=2.
    errors = lambda x: faces.person_pca_errors(faces.person_subspaces(toy.xt, toy.yt, toy.people), x, 2)
    _, _, scores = faces.choose_residual_rule(errors, toy, 5)
    expected = faces.recognition_metrics(scores, toy.yp, 5)
    for key in faces.METRIC_KEYS:
        assert results[f"test/{key}"] == pytest.approx(expected[key])
        assert f"baselines/person_pca/test/{key}" in results and f"baselines/fisherfaces/test/{key}" in results
    assert results["test/impostor_pairs"] == 30 * 5
    assert sorted(p.rsplit("/", 1)[-1] for p in results["figures"]) == ["faces_probes.png", "faces_roc_cmc.png"]
    with pytest.raises(ConfigError, match=r"no run for persons \[3\]"):
        faces.faces_population_task(_population(toy, drop=3), seed=0, out_dir=str(tmp_path))


SHARED = face_data.shared_data_dir() / face_data.OLIVETTI_FILE


@pytest.mark.skipif(not SHARED.is_file(), reason="the shared Olivetti copy is missing")
def test_eval_command_on_a_trained_run_and_on_a_sweep_directory(tmp_path, capsys):
    import json
    import os
    from pathlib import Path

    from aejax.cli import main

    experiment = str(Path(__file__).resolve().parents[2] / "experiments" / "olivetti_ae.py")
    small = ["--set", "train.epochs=1", "--set", "model.hidden=[32]", "--set", "model.code_size=8", "--set",
             "data.augment=0", "--set", "train.figures=False", "--set", "train.progress=False",
             "--set", "train.tensorboard=False"]
    run = tmp_path / "run"
    assert main(["train", experiment, "--workdir", str(run), *small]) == 0
    assert main(["eval", str(run), "--task", "faces", "--option", "max_rank=5"]) == 0
    results = json.loads((run / "eval_faces.json").read_text())
    for prefix in ("", "baselines/eigenfaces/", "baselines/fisherfaces/", "baselines/person_pca/"):
        for key in faces.METRIC_KEYS:
            assert 0.0 <= results[f"{prefix}test/{key}"] <= 1.0
    assert len(results["test/cmc"]) == 5 and os.path.isfile(run / "figures" / "faces_roc_cmc.png")
    assert "## faces" in (run / "report.md").read_text()
    capsys.readouterr()
    # A sweep's directory needs a population task: one line, exit 2.
    (tmp_path / "sweep" / "runs").mkdir(parents=True)
    os.symlink(run, tmp_path / "sweep" / "runs" / "all")
    assert main(["eval", str(tmp_path / "sweep"), "--task", "anomaly"]) == 2
    assert main(["eval", str(tmp_path / "sweep"), "--task", "faces"]) == 2
    assert main(["eval", str(tmp_path / "sweep"), "--task", "faces", "--option", "lda=False"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "scores one run" in err[0] and "trained on every person" in err[1]
    assert "'lda'" in err[2] and "max_rank" in err[2]
