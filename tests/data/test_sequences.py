"""Sequence sources: MNIST-1D against the published facts, synthetic series, planted anomalies, a run on them."""

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from aejax.data import load_dataset
from aejax.data.datasets import restrict_to_class, series_values
from aejax.data.sequences import (
    ANOMALY_KINDS,
    MNIST1D_LENGTH,
    generate_mnist1d,
    mnist1d_templates,
    periodic_signal,
    plant_anomaly,
    planted_anomaly_windows,
    synthetic_series,
)
from aejax.errors import ConfigError


@pytest.fixture(scope="module")
def mnist1d():
    return load_dataset("mnist1d", val_size=400, split_seed=0)


def test_mnist1d_has_the_published_splits_classes_and_length(mnist1d):
    assert (len(mnist1d.train) + len(mnist1d.val), len(mnist1d.test)) == (4000, 1000)
    assert len(mnist1d.val) == 400
    assert mnist1d.input_shape == (MNIST1D_LENGTH, 1) == (40, 1)
    assert mnist1d.num_classes == 10
    labels = np.concatenate([mnist1d.train.y, mnist1d.val.y, mnist1d.test.y])
    assert np.array_equal(np.bincount(labels), np.full(10, 500))  # 5000 sequences, 500 per template


def test_mnist1d_is_deterministic_per_seed_and_differs_across_seeds():
    x0, y0 = generate_mnist1d(0, num_samples=100)
    x0_again, y0_again = generate_mnist1d(0, num_samples=100)
    x1, _ = generate_mnist1d(1, num_samples=100)
    assert np.array_equal(x0, x0_again) and np.array_equal(y0, y0_again)
    assert np.abs(x0 - x1).mean() > 0.3
    # the published standardization: zero mean, unit std over the whole set
    assert abs(x0.mean()) < 1e-9 and abs(x0.std() - 1.0) < 1e-9


def test_mnist1d_templates_are_the_published_normalized_digits():
    t = mnist1d_templates()
    assert t.shape == (10, 12)
    np.testing.assert_allclose(t[:, 0], 0.0)  # every template starts at zero
    np.testing.assert_allclose(t.std(axis=1), 1 / 6)  # unit std, divided by 6
    assert np.unique(np.round(t, 6), axis=0).shape[0] == 10  # ten distinct digits


def test_mnist1d_is_as_hard_for_a_linear_classifier_as_published(mnist1d):
    # Greydanus 2020, Table 1: logistic regression 32% test accuracy (an MLP 68%, a CNN 94%): translation
    # and noise make the classes far from linearly separable, yet the templates keep them far above chance.
    train_x = np.concatenate([mnist1d.train.x, mnist1d.val.x])[..., 0]
    train_y = np.concatenate([mnist1d.train.y, mnist1d.val.y])
    accuracy = LinearDiscriminantAnalysis().fit(train_x, train_y).score(mnist1d.test.x[..., 0], mnist1d.test.y)
    assert 0.22 < accuracy < 0.42


def test_sequences_are_standardized_with_the_training_split(mnist1d):
    raw_train = series_values(mnist1d.train.x, mnist1d.scaling)
    assert abs(raw_train.mean() - mnist1d.scaling[0][0]) < 1e-6
    stored = mnist1d.train.x
    assert abs(stored.mean() - 0.5) < 1e-4 and abs(stored.std() - 1 / 8) < 1e-4


def test_synthetic_series_have_their_known_structure():
    x, y = synthetic_series(60, 128, 2, seed=3)
    assert x.shape == (60, 128, 2) and x.dtype == np.float32
    assert np.array_equal(np.bincount(y), [20, 20, 20])  # class = generator kind, cycling
    walk_steps = np.diff(x[y == 1], axis=1)
    assert abs(walk_steps.std() - 2 / np.sqrt(128)) < 0.02  # random walk: Gaussian steps of std 2 / sqrt(T)
    spectrum = np.abs(np.fft.rfft(x[y == 0], axis=1))
    assert np.all(spectrum[:, 1:9].max(axis=1) > 5 * np.median(spectrum[:, 9:], axis=1))  # 1-8 cycles dominate
    trend = x[y == 2]
    curvature = np.abs(np.diff(trend, 2, axis=1))
    assert np.median(curvature) < 0.25  # piecewise linear + noise of std 0.1: second differences are noise
    assert np.array_equal(x, synthetic_series(60, 128, 2, seed=3)[0])
    with pytest.raises(ConfigError, match="unknown series kinds"):
        synthetic_series(3, 8, 1, seed=0, kinds=("sine",))


def test_each_planted_anomaly_changes_what_it_says():
    rng = np.random.default_rng(0)
    clean, phase = periodic_signal(64, 1, rng=rng)
    spike = plant_anomaly(clean, phase, "spike", rng=rng) - clean
    assert np.count_nonzero(spike) == 1 and np.isclose(np.abs(spike).max(), 4.0)
    shift = plant_anomaly(clean, phase, "level_shift", rng=rng) - clean
    changed = np.flatnonzero(shift[:, 0])
    assert np.allclose(np.abs(shift[changed]), 1.0) and changed[-1] == 63 and np.all(np.diff(changed) == 1)
    faster = plant_anomaly(clean, phase, "frequency_change", rng=rng) - clean
    assert np.all(faster[:32] == 0) and np.abs(faster[32:]).max() > 0.5


def test_planted_anomaly_windows_and_the_source_label_every_kind():
    x, y = planted_anomaly_windows(40, 32, 1, seed=0)
    assert x.shape == (40, 32, 1)
    assert np.array_equal(np.bincount(y, minlength=4), [30, 4, 3, 3])  # a quarter, kinds cycling
    data = load_dataset("series_anomalies", train_size=200, val_size=20, test_size=80, length=32)
    assert np.all(data.train.y == 0) and np.all(data.val.y == 0)
    assert set(np.unique(data.test.y)) == {0, 1, 2, 3} and data.num_classes == 1 + len(ANOMALY_KINDS)
    one_class = restrict_to_class(data, 0)  # re-standardized per channel on the same clean windows
    np.testing.assert_allclose(one_class.train.x, data.train.x, atol=1e-6)


def test_bad_sequence_options_are_one_clear_error():
    with pytest.raises(ConfigError, match="data.length is an option of dataset synthetic_series/series_anomalies; "
                                          "this run's dataset is mnist1d"):
        load_dataset("mnist1d", val_size=400, length=64)  # MNIST-1D's length is fixed (40): no such option
    with pytest.raises(ConfigError, match="anomaly windows need at least 8 steps"):
        load_dataset("series_anomalies", train_size=50, val_size=10, test_size=20, length=4)
