"""Scores for windows of a time series that need no training: the rolling z-score baseline."""

from __future__ import annotations

import numpy as np

from aejax.errors import ConfigError


def rolling_zscore_scores(x_NxTxC: np.ndarray, window: int) -> np.ndarray:
    """Per-window anomaly score of a rolling z-score -> [N] (higher = more anomalous).

    Each point's |x_t - mean| / std against the `window` points before it (the first `window`
    points, which have no such past inside the window: against the `window` points after them);
    a window scores its largest |z| over time and channels.

    References: the classical control-chart rule (Shewhart 1931; a point beyond k standard
    deviations of its recent history is out of control), as a baseline for windowed detectors.
    """
    x = np.asarray(x_NxTxC, np.float64)
    if x.ndim != 3 or not 2 <= window <= x.shape[1] // 2:
        raise ConfigError(f"the rolling z-score needs sequences [N, T, C] and 2 <= zscore_window <= T / 2 (each "
                          f"point's window lies before or after it), got shape {x.shape} and "
                          f"zscore_window={window}; choose one between 2 and T / 2.")
    neighbours_NxSxCxW = np.lib.stride_tricks.sliding_window_view(x, window, axis=1)  # S = T - window + 1
    z = lambda points, ref: np.abs(points - ref.mean(-1)) / (ref.std(-1) + 1e-8)
    late = z(x[:, window:], neighbours_NxSxCxW[:, :-1])          # t >= window: the points before t
    early = z(x[:, :window], neighbours_NxSxCxW[:, 1:window + 1])  # t < window: the points after t
    return np.maximum(late.reshape(len(x), -1).max(axis=1), early.reshape(len(x), -1).max(axis=1))
