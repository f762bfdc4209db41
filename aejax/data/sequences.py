"""Sequence sources: MNIST-1D, synthetic time series, and series with planted anomalies.

Every source returns a `Dataset` whose splits hold float32 sequences [N, T, C] and integer
labels. Values are standardized per channel with the training split's mean and std and stored
as 0.5 + z / TABULAR_SPREAD (`aejax.data.datasets.standardize_series`), like the tabular
sources: every kind's sigmoid output then covers |z| < 4, and `Dataset.scaling` holds the
(mean [C], std [C]) to map values back (`series_values`). All randomness comes from
`numpy.random.default_rng(seed)` generators passed down explicitly.

- `mnist1d`: Greydanus 2020, "Scaling down deep learning" (arXiv:2011.14439): ten 12-point digit
  templates, each padded, dilated, scaled, translated, filled with correlated noise where padded,
  given white noise, sheared and downsampled to 40 points; 5000 sequences (500 per class),
  shuffled, the first 4000 for training and the last 1000 for testing, standardized to zero mean
  and unit std over the whole set. Generated here from `data.split_seed` (no download); the
  validation split is carved from the 4000 with `data.val_size`.
- `synthetic_series`: sums of sines with noise (class 0), random walks (class 1),
  piecewise-linear trends with noise (class 2); length `data.length` (default 64), channels
  `data.channels` (default 1), `data.train_size` training series, `data.test_size` test series.
- `series_anomalies`: windows of a periodic signal (two sines, one with a slowly drifting
  period, and noise); training and validation windows are clean, a quarter of the test
  windows carry one planted anomaly: a spike (label 1), a level shift (2) or a frequency
  change (3); label 0 is normal.
  With `data.normal_class=0` the `anomaly` evaluation task scores it (ROC-AUC per window).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from aejax.data.datasets import Dataset, Split, split_train_val, standardize_series
from aejax.errors import ConfigError

# The ten digit templates of MNIST-1D (Greydanus 2020, Figure 2): 12 points each, drawn by hand.
MNIST1D_TEMPLATES = np.array([
    [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
    [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
    [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
    [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
    [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
    [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
    [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
    [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
])
MNIST1D_LENGTH = 40
MNIST1D_TRAIN, MNIST1D_TEST = 4000, 1000
MNIST1D_PADDING = (36, 60)         # zeros appended to a template, drawn uniformly from this range
MNIST1D_SCALE = 0.4                # amplitude factor 1 + 0.4 * (u - 1/2)
MNIST1D_MAX_TRANSLATION = 48       # circular shift in [0, 48)
MNIST1D_CORR_NOISE = 0.25          # std of the Gaussian-smoothed (sigma 2) noise filling the padding
MNIST1D_IID_NOISE = 0.02           # std of white noise on every point
MNIST1D_SHEAR = 0.75               # a linear ramp of slope 0.75 * (u - 1/2) is subtracted
SERIES_KINDS = ("sines", "random_walk", "trend")
ANOMALY_KINDS = ("spike", "level_shift", "frequency_change")  # labels 1, 2, 3 (0: normal)
SPIKE, LEVEL_SHIFT, FREQUENCY_FACTOR = 4.0, 1.0, 2.0  # anomaly sizes (see `plant_anomaly`)


def mnist1d_templates() -> np.ndarray:
    """The templates [10, 12], each standardized, shifted to start at 0 and divided by 6 (as published)."""
    x = MNIST1D_TEMPLATES.astype(np.float64)
    x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    return (x - x[:, :1]) / 6.0


def _resample(x_L: np.ndarray, length: int) -> np.ndarray:
    """Linear interpolation of x onto `length` evenly spaced points of the same interval."""
    return np.interp(np.linspace(0.0, 1.0, length), np.linspace(0.0, 1.0, len(x_L)), x_L)


def mnist1d_example(template_12: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One MNIST-1D sequence [40] from a template, following Greydanus 2020's transformation order."""
    low, high = MNIST1D_PADDING
    pad = low + int(rng.random() * (high - low + 1))
    x = np.concatenate([template_12 + 1e-8, np.zeros(pad)])      # pad (1e-8 marks the template's points)
    x = _resample(x, len(template_12) + high)                     # dilate to 72 points
    x = x * (1.0 + MNIST1D_SCALE * (rng.random() - 0.5))          # scale
    x = np.roll(x, int(rng.integers(MNIST1D_MAX_TRANSLATION)))    # translate
    padded = x == 0
    corr = gaussian_filter1d(MNIST1D_CORR_NOISE * rng.standard_normal(len(x)), 2.0)
    x = np.where(padded, corr, x) + MNIST1D_IID_NOISE * rng.standard_normal(len(x))
    x = x - MNIST1D_SHEAR * (rng.random() - 0.5) * np.linspace(-0.5, 0.5, len(x))   # shear
    return _resample(x, MNIST1D_LENGTH)                           # downsample to 40


def generate_mnist1d(seed: int, *, num_samples: int = MNIST1D_TRAIN + MNIST1D_TEST) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D: (x [N, 40] standardized over the whole set, y [N]), classes balanced, shuffled.

    Deterministic in `seed`; the first 4000 rows are the published training split, the rest the test split.

    References: Greydanus 2020, "Scaling down deep learning" (arXiv:2011.14439).
    """
    if num_samples < 10 or num_samples % 10:
        raise ConfigError(f"MNIST-1D needs a positive multiple of 10 samples (one template per class), got {num_samples}.")
    rng = np.random.default_rng(seed)
    templates = mnist1d_templates()
    per_class = num_samples // 10
    x = np.stack([mnist1d_example(templates[c], rng) for c in range(10) for _ in range(per_class)])
    y = np.repeat(np.arange(10, dtype=np.int32), per_class)
    order = rng.permutation(num_samples)
    x, y = x[order], y[order]
    return (x - x.mean()) / x.std(), y


def _finish(name: str, train: Split, val: Split, test: Split, num_classes: int) -> Dataset:
    (train, val, test), scaling = standardize_series(train, val, test)
    return Dataset(name, train, val, test, num_classes=num_classes, scaling=scaling,
                   source=f"generated ({name})")


def load_mnist1d(*, val_size: int = 400, split_seed: int = 0) -> Dataset:
    """MNIST-1D generated from `split_seed`: 4000 training (less `val_size` for validation) and 1000 test [N, 40, 1]."""
    x, y = generate_mnist1d(split_seed)
    x = x[..., None].astype(np.float32)
    train, val = split_train_val(x[:MNIST1D_TRAIN], y[:MNIST1D_TRAIN], val_size=val_size, seed=split_seed)
    return _finish("mnist1d", train, val, Split(x[MNIST1D_TRAIN:], y[MNIST1D_TRAIN:]), 10)


def synthetic_series(num: int, length: int, channels: int, *, seed: int,
                     kinds: tuple[str, ...] = SERIES_KINDS) -> tuple[np.ndarray, np.ndarray]:
    """Series with known structure: x [num, length, channels] float32, y [num] = index of the kind in SERIES_KINDS.

    "sines": one to three sines (1 to 8 cycles, amplitude 0.5 to 1.5, random phase) plus white
    noise of std 0.1; "random_walk": cumulative Gaussian steps of std 2 / sqrt(length);
    "trend": linear between two to four knots drawn from U(-2, 2), plus noise of std 0.1.
    Examples cycle through `kinds`; every channel is drawn independently.
    """
    unknown = sorted(set(kinds) - set(SERIES_KINDS))
    if unknown or not kinds:
        raise ConfigError(f"unknown series kinds {unknown}; choose from {list(SERIES_KINDS)}.")
    if num < 1 or length < 2 or channels < 1:
        raise ConfigError(f"synthetic series need num >= 1, length >= 2 and channels >= 1, got {num}, {length}, "
                          f"{channels}; change data.train_size, data.length or data.channels.")
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, length)
    x = np.zeros((num, length, channels))
    y = np.array([SERIES_KINDS.index(kinds[i % len(kinds)]) for i in range(num)], np.int32)
    for i in range(num):
        for c in range(channels):
            kind = SERIES_KINDS[y[i]]
            if kind == "sines":
                n = int(rng.integers(1, 4))
                freq, amp, phase = rng.uniform(1, 8, n), rng.uniform(0.5, 1.5, n), rng.uniform(0, 2 * np.pi, n)
                x[i, :, c] = (amp * np.sin(2 * np.pi * freq * t[:, None] + phase)).sum(axis=1)
                x[i, :, c] += 0.1 * rng.standard_normal(length)
            elif kind == "random_walk":
                x[i, :, c] = np.cumsum(rng.standard_normal(length)) * 2.0 / np.sqrt(length)
            else:
                knots = np.sort(np.concatenate([[0.0, 1.0], rng.uniform(0, 1, int(rng.integers(0, 3)))]))
                x[i, :, c] = np.interp(t, knots, rng.uniform(-2, 2, len(knots))) + 0.1 * rng.standard_normal(length)
    return x.astype(np.float32), y


def load_synthetic_series(*, train_size: int = 4000, val_size: int = 180, test_size: int = 360, split_seed: int = 0,
                          length: int = 64, channels: int = 1) -> Dataset:
    """`synthetic_series`: sines, random walks and trends (classes 0, 1, 2) [N, T, C]; test drawn apart."""
    x, y = synthetic_series(train_size, length, channels, seed=split_seed)
    x_test, y_test = synthetic_series(test_size, length, channels, seed=split_seed + 1_000_003)
    train, val = split_train_val(x, y, val_size=val_size, seed=split_seed)
    return _finish("synthetic_series", train, val, Split(x_test, y_test), len(SERIES_KINDS))


def periodic_signal(length: int, channels: int, *, rng: np.random.Generator, noise: float = 0.2,
                    period: float = 20.0, drift: float = 0.2, slow_period: float = 50.0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The normal behaviour of `series_anomalies`: sin(phase_t) + 0.5 sin(2 pi t / 50) + noise.

    The first component's period drifts slowly around `period` steps: log(period_t) =
    log(period) + drift * u_t, with u a Gaussian-smoothed (sigma 100 steps) noise of unit std,
    so consecutive windows differ in frequency (periods of roughly 13 to 30 steps at drift 0.2).
    Returns the series [length, channels] and the first component's phase [length, channels]
    (a frequency change rewrites that component from its phase on).
    """
    sigma = 100.0  # white noise smoothed by a Gaussian of std sigma has std (2 sqrt(pi) sigma)^(-1/2)
    smooth = gaussian_filter1d(rng.standard_normal((length, channels)), sigma, axis=0, mode="wrap")
    log_period = np.log(period) + drift * smooth * np.sqrt(2 * np.sqrt(np.pi) * sigma)
    offset = rng.uniform(0, 2 * np.pi, (2, channels))
    phase = offset[0] + np.cumsum(2 * np.pi / np.exp(log_period), axis=0)
    t = np.arange(length)[:, None]
    x = np.sin(phase) + 0.5 * np.sin(2 * np.pi * t / slow_period + offset[1])
    return x + noise * rng.standard_normal((length, channels)), phase


def plant_anomaly(window_TxC: np.ndarray, phase_TxC: np.ndarray, kind: str, *, rng: np.random.Generator) -> np.ndarray:
    """A copy of one window with one anomaly of `kind` inside it.

    "spike": one point moved by 4 (about 5 standard deviations of the normal signal, whose
    range is about +-1.5);
    "level_shift": +-1 added from a random point to the window's end;
    "frequency_change": the drifting component runs 2x faster over the second half of the window.
    """
    x = window_TxC.copy()
    steps = len(x)
    if kind == "spike":
        x[int(rng.integers(steps // 8, steps - steps // 8))] += SPIKE * rng.choice([-1.0, 1.0])
    elif kind == "level_shift":
        x[int(rng.integers(steps // 4, 3 * steps // 4)):] += LEVEL_SHIFT * rng.choice([-1.0, 1.0])
    elif kind == "frequency_change":
        start = steps // 2
        faster = phase_TxC[start] + FREQUENCY_FACTOR * (phase_TxC[start:] - phase_TxC[start])
        x[start:] += np.sin(faster) - np.sin(phase_TxC[start:])
    else:
        raise ConfigError(f"unknown anomaly kind {kind!r}; choose one of {list(ANOMALY_KINDS)}.")
    return x


def planted_anomaly_windows(num: int, length: int, channels: int, *, seed: int, anomaly_fraction: float = 0.25
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive windows [num, length, channels] of one periodic series, a fraction with a planted anomaly.

    Labels [num]: 0 normal, 1 + ANOMALY_KINDS.index(kind) for an anomalous window; the anomalous
    windows are drawn at random and their kinds cycle through ANOMALY_KINDS.
    """
    if not 0.0 <= anomaly_fraction <= 1.0:
        raise ConfigError(f"anomaly_fraction must lie in [0, 1], got {anomaly_fraction}.")
    if length < 8:
        raise ConfigError(f"anomaly windows need at least 8 steps, got data.length={length}.")
    rng = np.random.default_rng(seed)
    series, phase = periodic_signal(num * length, channels, rng=rng)
    x = series.reshape(num, length, channels)
    phase = phase.reshape(num, length, channels)
    y = np.zeros(num, np.int32)
    chosen = np.sort(rng.permutation(num)[:round(anomaly_fraction * num)])
    for j, i in enumerate(chosen):
        kind = ANOMALY_KINDS[j % len(ANOMALY_KINDS)]
        x[i] = plant_anomaly(x[i], phase[i], kind, rng=rng)
        y[i] = 1 + ANOMALY_KINDS.index(kind)
    return x.astype(np.float32), y


def load_series_anomalies(*, train_size: int = 4000, val_size: int = 180, test_size: int = 360, split_seed: int = 0,
                          length: int = 64, channels: int = 1) -> Dataset:
    """`series_anomalies`: clean training/validation windows; test windows with a quarter anomalous (labels 1-3)."""
    x, y = planted_anomaly_windows(train_size, length, channels, seed=split_seed, anomaly_fraction=0.0)
    x_test, y_test = planted_anomaly_windows(test_size, length, channels, seed=split_seed + 1_000_003)
    train, val = split_train_val(x, y, val_size=val_size, seed=split_seed)
    return _finish("series_anomalies", train, val, Split(x_test, y_test), 1 + len(ANOMALY_KINDS))


__all__ = ["ANOMALY_KINDS", "MNIST1D_TEMPLATES", "SERIES_KINDS", "generate_mnist1d", "load_mnist1d",
           "load_series_anomalies", "load_synthetic_series", "mnist1d_example", "mnist1d_templates",
           "periodic_signal", "plant_anomaly", "planted_anomaly_windows", "synthetic_series"]
