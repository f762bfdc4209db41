"""Denoising quality: PSNR and SSIM of denoised against clean test images; SNR improvement for signals.

Scores the model at its training corruption and level, and over a grid of levels for every
corruption in `aejax.data.corruptions.CORRUPTIONS`, next to the same scores for the
corrupted input itself. Works for any kind with `reconstruct` (a plain autoencoder is a
weak denoiser, which is the comparison). Writes figures/denoising.png (clean, corrupted,
denoised rows) and figures/denoising_grid.png (PSNR against level).

For 1-D data (sequences [N, T, C], e.g. `synthetic_audio`) the scores are signal-to-noise ratios
instead (`snr_db`): the input SNR of the noisy frames, the output SNR of the denoised ones and the
SNR improvement (output minus input, dB), over a grid of input SNRs (`DEFAULT_SNR_LEVELS`). It
writes figures/denoising_waveforms.png (clean, noisy and denoised waveforms),
figures/denoising_grid.png (SNR improvement against input SNR) and, when asked, WAV files.

References: Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality assessment: from error
visibility to structural similarity" (SSIM); Vincent et al. 2008 (denoising autoencoders);
Loizou 2013, "Speech enhancement: theory and practice", 2nd ed., ch. 11 (SNR measures);
Lu, Tsao, Matsuda & Hori 2013, "Speech enhancement based on deep denoising autoencoder" (Interspeech).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax.data import corruptions
from aejax.errors import ConfigError, DataError
from aejax.models.protocols import Corrupting

DEFAULT_LEVELS: dict[str, tuple[float, ...]] = {
    "gaussian": (0.1, 0.2, 0.3, 0.5),
    "masking": (0.1, 0.25, 0.5, 0.75),
    "salt_and_pepper": (0.05, 0.1, 0.2, 0.4),
}
# Input SNRs in dB of the grid for 1-D data.
DEFAULT_SNR_LEVELS: dict[str, tuple[float, ...]] = {
    "white_snr": (-5.0, 0.0, 5.0, 10.0, 15.0),
    "pink_snr": (-5.0, 0.0, 5.0, 10.0, 15.0),
}


def psnr(x_hat, x, *, data_range: float = 1.0):
    """Peak signal-to-noise ratio of each image in dB -> [N]: 10 log10(range^2 / MSE_i).

    An exact match (MSE 0) gives +inf.
    """
    mse = jnp.mean(jnp.square(jnp.asarray(x_hat) - jnp.asarray(x)).reshape(x.shape[0], -1), axis=-1)
    return 10.0 * jnp.log10(data_range ** 2 / mse)


def _gaussian_window(size: int, sigma: float):
    r = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2.0
    g = jnp.exp(-0.5 * jnp.square(r / sigma))
    return g / jnp.sum(g)


def _filter_valid(img_NxHxWxC, g):
    """Separable 'valid' filtering of every channel with the 1-D window g."""
    n, h, w, c = img_NxHxWxC.shape
    x = jnp.moveaxis(img_NxHxWxC, -1, 1).reshape(n * c, 1, h, w)
    size = g.shape[0]
    dn = ("NCHW", "OIHW", "NCHW")
    x = jax.lax.conv_general_dilated(x, g.reshape(1, 1, size, 1).astype(x.dtype), (1, 1), "VALID",
                                     dimension_numbers=dn)
    x = jax.lax.conv_general_dilated(x, g.reshape(1, 1, 1, size).astype(x.dtype), (1, 1), "VALID",
                                     dimension_numbers=dn)
    return x.reshape(n, c, h - size + 1, w - size + 1)


def ssim(x_hat, x, *, data_range: float = 1.0, window: int = 11, sigma: float = 1.5, k1: float = 0.01,
         k2: float = 0.03):
    """Mean structural similarity of each image pair -> [N] (Wang et al. 2004, Gaussian window).

    Images are [N, H, W, C]; statistics use a `window` x `window` Gaussian window (sigma 1.5)
    over valid positions, averaged over positions and channels. For images smaller than the
    window, the window shrinks to the largest odd size that fits.
    """
    x_hat, x = jnp.asarray(x_hat, jnp.float32), jnp.asarray(x, jnp.float32)
    if x.ndim != 4 or x_hat.shape != x.shape:
        raise ConfigError(f"ssim needs two image batches of the same shape [N, H, W, C], got {x_hat.shape} "
                          f"and {x.shape}.")
    size = min(window, x.shape[1], x.shape[2])
    size -= 1 - size % 2
    g = _gaussian_window(size, sigma * size / window)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_a, mu_b = _filter_valid(x_hat, g), _filter_valid(x, g)
    var_a = _filter_valid(x_hat * x_hat, g) - mu_a ** 2
    var_b = _filter_valid(x * x, g) - mu_b ** 2
    cov = _filter_valid(x_hat * x, g) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return jnp.mean(s.reshape(s.shape[0], -1), axis=-1)


def denoising_scores(model, params, x, *, corruption: str, level: float, key, batch_size: int = 1000,
                     y=None) -> dict[str, float]:
    """PSNR and SSIM of model.reconstruct(corrupt(x)) and of corrupt(x) itself, against the clean x.

    "psnr" is 10 log10(1 / MSE) with the MSE over every pixel of `x` (finite even when some
    corrupted images equal their clean ones); "ssim" is the mean of per-image SSIM.
    """
    corruptions.check_level(corruption, level)
    corrupt = corruptions.get_corruption(corruption)

    @jax.jit
    def sums(p, xb, yb, k, level):
        x_tilde = corrupt(xb, level, key=k)
        x_hat = model.reconstruct(p, {"x": x_tilde, "y": yb})
        return (jnp.sum(jnp.square(x_hat - xb)), jnp.sum(ssim(x_hat, xb)),
                jnp.sum(jnp.square(x_tilde - xb)), jnp.sum(ssim(x_tilde, xb)))

    y = np.zeros(len(x), np.int32) if y is None else y
    totals = np.zeros(4)
    for i, start in enumerate(range(0, len(x), batch_size)):
        out = sums(params, x[start:start + batch_size], y[start:start + batch_size], jax.random.fold_in(key, i),
                   jnp.float32(level))
        totals += np.asarray(jax.device_get(out), np.float64)
    mse, mse_in = totals[0] / np.size(x), totals[2] / np.size(x)
    return {"psnr": float(10 * np.log10(1.0 / mse)), "ssim": totals[1] / len(x),
            "input_psnr": float(10 * np.log10(1.0 / mse_in)) if mse_in > 0 else float("inf"),
            "input_ssim": totals[3] / len(x), "mse": mse}


def snr_db(estimate_NxTxC, clean_NxTxC):
    """Signal-to-noise ratio of each estimate against its clean signal in dB -> [N].

    SNR = 10 log10( sum (x - mean x)^2 / sum (estimate - x)^2 ), sums over time and channels and
    the mean per channel over time (a constant offset is not signal; the sequence sources store
    waveforms around 0.5). An exact estimate gives +inf. A silent clean frame (every channel
    constant: no signal power) has no SNR: NaN (`snr_scores` leaves such frames out and counts them).

    References: Loizou 2013, "Speech enhancement: theory and practice", section 11.1 (SNR).
    """
    clean = jnp.asarray(clean_NxTxC)
    n = clean.shape[0]
    signal_N = corruptions.signal_power(clean) * (clean.size // n)  # the sum of squares about the channel means
    error_N = jnp.sum(jnp.square(jnp.asarray(estimate_NxTxC) - clean).reshape(n, -1), axis=1)
    return jnp.where(signal_N > 0, 10.0 * jnp.log10(signal_N / error_N), jnp.nan)


def snr_scores(model, params, x, *, corruption: str, level: float, key, batch_size: int = 1000,
               y=None) -> dict[str, float]:
    """SNR of corrupt(x) ("snr_in") and of model.reconstruct(corrupt(x)) ("snr_out") against the clean x.

    Both are means over the frames that carry signal of `snr_db`; "snr_improvement" is the mean of
    their per-frame differences snr_out - snr_in (the SNR improvement, SNRi). Silent frames (every
    channel constant, e.g. zero padding: no signal power, so no SNR) are left out of the three and
    counted in "silent_frames"; "mse" is the denoised mean squared error over every frame.
    """
    corruptions.check_level(corruption, level)
    corrupt = corruptions.get_corruption(corruption)

    @jax.jit
    def sums(p, xb, yb, k, level):
        x_tilde = corrupt(xb, level, key=k)
        x_hat = model.reconstruct(p, {"x": x_tilde, "y": yb})
        voiced = corruptions.signal_power(xb) > 0
        snr_in, snr_out = snr_db(x_tilde, xb), snr_db(x_hat, xb)
        kept = lambda v: jnp.sum(jnp.where(voiced, v, 0.0))  # noqa: E731
        return (kept(snr_in), kept(snr_out), kept(snr_out - snr_in), jnp.sum(jnp.square(x_hat - xb)),
                jnp.sum(voiced))

    y = np.zeros(len(x), np.int32) if y is None else y
    totals = np.zeros(5)
    for i, start in enumerate(range(0, len(x), batch_size)):
        out = sums(params, x[start:start + batch_size], y[start:start + batch_size], jax.random.fold_in(key, i),
                   jnp.float32(level))
        totals += np.asarray(jax.device_get(out), np.float64)
    voiced = int(totals[4])
    if voiced == 0:
        raise DataError(f"all {len(x)} test frames are silent (every channel constant): the SNR is undefined; "
                        "evaluate on data that carries signal.")
    return {"snr_in": totals[0] / voiced, "snr_out": totals[1] / voiced, "snr_improvement": totals[2] / voiced,
            "mse": totals[3] / np.size(x), "silent_frames": len(x) - voiced}

def denoising_task(model, params, dataset, hp, *, seed: int, out_dir: str, corruption: str | None = None,
                   level: float | None = None, levels: Mapping[str, Sequence[float]] | None = None,
                   batch_size: int = 1000, max_examples: int = 0, wav_examples: int = 0,
                   sample_rate: int = 8000) -> dict[str, Any]:
    """Scores denoising on the test split at the training level and over a grid of levels.

    Args:
      model, params, dataset, hp: the trained run (any kind with `reconstruct`).
      seed: the run's seed; seeds the corruption noise.
      out_dir: where denoising.png and denoising_grid.png go.
      corruption, level: the headline setting; default the run's own (model.corruption,
        hp.noise_level) for a denoising run, else ("gaussian", 0.2), or ("white_snr", 0 dB) for 1-D data.
      levels: corruption name -> levels for the grid (default `DEFAULT_LEVELS`, for 1-D data
        `DEFAULT_SNR_LEVELS`).
      batch_size: evaluation batch size.
      max_examples: use only the first N test examples (0: all).
      wav_examples: 1-D data only: write this many clean/noisy/denoised examples as WAV files
        to out_dir/audio (single-channel data).
      sample_rate: the WAV files' and the waveform figure's sample rate in Hz (the data's).
    Returns:
      Flat keys "test/psnr", "test/ssim", "test/input_psnr", "test/input_ssim" at the headline
      setting, the same under "test/<corruption>@<level>/...", and "grid": a list of rows. For
      1-D data "test/snr_in", "test/snr_out", "test/snr_improvement" (means over the frames that carry
      signal), "test/mse" and "test/silent_frames" (constant frames left out of the SNRs) instead.
    """
    sequences = np.ndim(dataset.test.x) == 3
    corruption = corruption or (model.corruption if isinstance(model, Corrupting) else
                                ("white_snr" if sequences else "gaussian"))
    if level is None:
        level = float(hp["noise_level"]) if "noise_level" in hp else (0.0 if sequences else 0.2)
    if sequences:
        return _sequence_task(model, params, dataset, seed=seed, out_dir=out_dir, corruption=corruption,
                              level=float(level), levels=levels or DEFAULT_SNR_LEVELS, batch_size=batch_size,
                              max_examples=max_examples, wav_examples=wav_examples, sample_rate=sample_rate)
    grid_levels = {k: tuple(v) for k, v in (levels or DEFAULT_LEVELS).items()}
    corruptions.check_level(corruption, level)
    for name, values in grid_levels.items():
        for value in values:
            corruptions.check_level(name, value)
    x, y = dataset.test.x, dataset.test.y
    if max_examples:
        x, y = x[:max_examples], y[:max_examples]
    key = jax.random.key(seed)

    def score(name, value, i):
        return denoising_scores(model, params, x, corruption=name, level=value,
                                key=jax.random.fold_in(key, i), batch_size=batch_size, y=y)

    head = score(corruption, float(level), 0)
    results: dict[str, Any] = {f"test/{k}": float(v) for k, v in head.items()}
    results["corruption"], results["level"] = corruption, float(level)
    grid = []
    for j, (name, values) in enumerate(grid_levels.items()):
        for i, value in enumerate(values):
            same = name == corruption and math.isclose(value, level, rel_tol=1e-6)
            s = head if same else score(name, float(value), 1 + 100 * j + i)
            grid.append({"corruption": name, "level": float(value), **{k: float(v) for k, v in s.items()}})
            results.update({f"test/{name}@{value:g}/{k}": float(v) for k, v in s.items()})
    results["grid"] = grid
    results["figures"] = _figures(model, params, out_dir, x[:10], y[:10], corruption, float(level), grid, key)
    return results


def _figures(model, params, out, x, y, corruption, level, grid, key) -> list[str]:
    import matplotlib.pyplot as plt

    from aejax.viz.figures import image_rows

    os.makedirs(out, exist_ok=True)
    x_tilde = np.asarray(corruptions.get_corruption(corruption)(jnp.asarray(x), level, key=jax.random.fold_in(key, 7)))
    x_hat = np.asarray(model.reconstruct(params, {"x": x_tilde, "y": y}))
    paths = [image_rows([x, x_tilde, x_hat], ["clean", "corrupted", "denoised"], os.path.join(out, "denoising.png"),
                        title=f"{corruption} at level {level:g}")]
    names = list(dict.fromkeys(r["corruption"] for r in grid))
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        rows = [r for r in grid if r["corruption"] == name]
        ax.plot([r["level"] for r in rows], [r["psnr"] for r in rows], "o-", label="denoised")
        ax.plot([r["level"] for r in rows], [r["input_psnr"] for r in rows], "s--", label="corrupted input")
        ax.set_title(name)
        ax.set_xlabel("level")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = os.path.join(out, "denoising_grid.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return paths + [path]


def _sequence_task(model, params, dataset, *, seed, out_dir, corruption, level, levels, batch_size, max_examples,
                   wav_examples, sample_rate) -> dict[str, Any]:
    """`denoising_task` for 1-D data: SNR in, out and improvement at the headline setting and over the grid."""
    grid_levels = {k: tuple(v) for k, v in levels.items()}
    corruptions.check_level(corruption, level)
    for name, values in grid_levels.items():
        for value in values:
            corruptions.check_level(name, value)
    if wav_examples < 0 or sample_rate < 1:
        raise ConfigError(f"wav_examples must be >= 0 and sample_rate >= 1 Hz, got {wav_examples} and {sample_rate}.")
    x, y = dataset.test.x, dataset.test.y
    if max_examples:
        x, y = x[:max_examples], y[:max_examples]
    if wav_examples and x.shape[-1] != 1:
        raise ConfigError(f"WAV examples need single-channel sequences [N, T, 1], got {x.shape[-1]} channels; "
                          "set wav_examples=0.")
    key = jax.random.key(seed)

    def score(name, value, i):
        return snr_scores(model, params, x, corruption=name, level=value, key=jax.random.fold_in(key, i),
                          batch_size=batch_size, y=y)

    head = score(corruption, level, 0)
    results: dict[str, Any] = {f"test/{k}": float(v) for k, v in head.items()}
    results["corruption"], results["level"] = corruption, level
    grid = []
    for j, (name, values) in enumerate(grid_levels.items()):
        for i, value in enumerate(values):
            same = name == corruption and math.isclose(value, level, rel_tol=1e-6, abs_tol=1e-9)
            s = head if same else score(name, float(value), 1 + 100 * j + i)
            grid.append({"corruption": name, "level": float(value), **{k: float(v) for k, v in s.items()}})
            results.update({f"test/{name}@{value:g}/{k}": float(v) for k, v in s.items()})
    results["grid"] = grid
    shown = min(len(x), max(4, wav_examples))
    x_tilde = np.asarray(corruptions.get_corruption(corruption)(jnp.asarray(x[:shown]), level,
                                                                key=jax.random.fold_in(key, 7)))
    x_hat = np.asarray(model.reconstruct(params, {"x": x_tilde, "y": y[:shown]}))
    waves = [_waveform_units(a, dataset) for a in (x[:shown], x_tilde, x_hat)]
    os.makedirs(out_dir, exist_ok=True)
    results["figures"] = [_waveform_figure(out_dir, *waves, corruption, level, sample_rate),
                          _snr_grid_figure(out_dir, grid)]
    if wav_examples:
        from aejax.data.audio import write_wav

        audio_dir = os.path.join(out_dir, "audio")
        os.makedirs(audio_dir, exist_ok=True)
        results["wav_files"] = [write_wav(os.path.join(audio_dir, f"example{i}_{name}.wav"), wave[i, :, 0], sample_rate)
                                for i in range(wav_examples) for name, wave in zip(("clean", "noisy", "denoised"), waves)]
    return results


def _waveform_units(x_NxTxC, dataset) -> np.ndarray:
    """Stored sequence values back in the signal's own units when the dataset records its scaling."""
    scaling = getattr(dataset, "scaling", None)
    if scaling is None:
        return np.asarray(x_NxTxC, np.float64)
    from aejax.data.datasets import series_values

    return series_values(x_NxTxC, scaling)


def _waveform_figure(out_dir, clean, noisy, denoised, corruption, level, sample_rate) -> str:
    import matplotlib.pyplot as plt

    n = min(4, len(clean))
    time_ms = np.arange(clean.shape[1]) / sample_rate * 1000.0
    fig, axes = plt.subplots(n, 1, figsize=(9, 1.9 * n), squeeze=False, sharex=True)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(time_ms, noisy[i, :, 0], color="0.75", lw=0.8, label="noisy")
        ax.plot(time_ms, clean[i, :, 0], color="black", lw=1.2, label="clean")
        ax.plot(time_ms, denoised[i, :, 0], color="tab:orange", lw=1.0, ls="--", label="denoised")
        snr_in, snr_out = (float(snr_db(a[i:i + 1], clean[i:i + 1])[0]) for a in (noisy, denoised))
        ax.set_title(f"example {i}: input SNR {snr_in:.1f} dB, denoised {snr_out:.1f} dB" if not np.isnan(snr_in)
                     else f"example {i}: silent (no SNR)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=3)
    axes[-1, 0].set_xlabel("time (ms)")
    fig.suptitle(f"{corruption} at {level:g} dB")
    fig.tight_layout()
    path = os.path.join(out_dir, "denoising_waveforms.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _snr_grid_figure(out_dir, grid) -> str:
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["corruption"] for r in grid))
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name in names:
        rows = [r for r in grid if r["corruption"] == name]
        ax.plot([r["snr_in"] for r in rows], [r["snr_improvement"] for r in rows], "o-", label=name)
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel("input SNR (dB)")
    ax.set_ylabel("SNR improvement (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = os.path.join(out_dir, "denoising_grid.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
