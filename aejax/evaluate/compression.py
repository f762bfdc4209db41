"""Compression: test distortion at the model's code size beside PCA's, and a rate-distortion curve.

Distortion is the test MSE per pixel (pixels in [0, 1]) and PSNR = 10 log10(1 / MSE) over the
whole split. The rate: each code dimension is quantized uniformly to b bits between that
dimension's minimum and maximum over the training codes (values outside are clipped), so an
image costs b * K bits (the 2 * K floats of the ranges are shared by all images and not counted).
The same quantizer on PCA coefficients at the same width gives PCA's curve. A curve over code
sizes comes from a sweep (`scripts/compression_curve.py`).

References: Hinton & Salakhutdinov 2006, "Reducing the dimensionality of data with neural
networks" (autoencoders against PCA); Theis et al. 2017, "Lossy image compression with
compressive autoencoders" (rate as bits of quantized codes).
"""

from __future__ import annotations

import os
from typing import Any, Protocol, Sequence, runtime_checkable

import jax
import numpy as np
from sklearn.decomposition import PCA

from aejax.errors import ConfigError
from aejax.evaluate.anomaly import codes
from aejax.models.protocols import Sampler


@runtime_checkable
class _LogitDecoder(Protocol):
    """The deterministic block of aejax.models.common: reconstruct = sigmoid(decode_logits(encode(x)))."""

    def decode_logits(self, params, z_BxK): ...


def psnr_from_mse(mse: float) -> float:
    """10 log10(1 / MSE) for pixels in [0, 1]; +inf for an exact reconstruction."""
    return float("inf") if mse <= 0 else float(10.0 * np.log10(1.0 / mse))


def decoder_of(model):
    """decode(params, z_BxK) -> data-space means, for kinds that can decode a code; else a ConfigError."""
    if isinstance(model, Sampler):
        return lambda params, z: model.decode(params, z)
    if isinstance(model, _LogitDecoder):
        return lambda params, z: jax.nn.sigmoid(model.decode_logits(params, z))
    raise ConfigError(f"the compression task's quantized codes need a decoder from codes, and the {model.name!r} "
                      "kind has none; use bits=() to score only the unquantized reconstruction.")


def quantize(z_NxK: np.ndarray, lo_K: np.ndarray, hi_K: np.ndarray, bits: int) -> np.ndarray:
    """Uniform quantization of each dimension to 2**bits levels on [lo, hi] (clipped), dequantized."""
    if not 1 <= bits <= 24:
        raise ConfigError(f"bits per code dimension must lie in [1, 24], got {bits}.")
    levels = 2 ** int(bits) - 1
    span = np.where(hi_K > lo_K, hi_K - lo_K, 1.0)
    q = np.round(np.clip((z_NxK - lo_K) / span, 0.0, 1.0) * levels)
    return (lo_K + q / levels * span).astype(z_NxK.dtype)


def pca_curve(train_x: np.ndarray, test_x: np.ndarray, sizes: Sequence[int]) -> dict[int, float]:
    """Test MSE per pixel of PCA with each number of components, fitted on train_x (one SVD)."""
    flat_tr = train_x.reshape(len(train_x), -1).astype(np.float64)
    flat_te = test_x.reshape(len(test_x), -1).astype(np.float64)
    top = max(sizes)
    if top > min(flat_tr.shape):
        raise ConfigError(f"PCA has at most {min(flat_tr.shape)} components here, asked for {top}.")
    pca = PCA(n_components=top, svd_solver="full").fit(flat_tr)
    centred = flat_te - pca.mean_
    out = {}
    for k in sizes:
        v = pca.components_[:k]
        out[int(k)] = float(np.mean(np.square(centred @ v.T @ v - centred)))
    return out


def _mse(model_decode, params, z, x, batch_size) -> float:
    total = 0.0
    for s in range(0, len(x), batch_size):
        total += float(np.sum(np.square(np.asarray(model_decode(params, z[s:s + batch_size])) - x[s:s + batch_size])))
    return total / x.size


def compression_task(model, params, dataset, hp, *, seed: int, out_dir: str,
                     bits: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8), max_train: int = 10000,
                     batch_size: int = 1000) -> dict[str, Any]:
    """Test MSE and PSNR of the model and of PCA at its code size; rate-distortion with quantized codes.

    Args:
      model, params, dataset, hp: the trained run (quantized codes need a decoder: the
        deterministic kinds and `Sampler` kinds).
      seed: the run's seed (unused: the task is deterministic).
      out_dir: where rate_distortion.png goes.
      bits: bits per code dimension to quantize to (empty: no rate-distortion curve).
      max_train: training examples that fix the code ranges and fit PCA (0: all).
    Returns:
      "test/mse", "test/psnr", "test/pca_mse", "test/pca_psnr", "code_size", and
      "rate_distortion": rows {bits, bits_per_image, mse, psnr, pca_mse, pca_psnr}.
    """
    del hp, seed
    bits = tuple(int(b) for b in ((bits,) if isinstance(bits, int) else bits))
    decode = decoder_of(model) if bits else None
    train_x = dataset.train.x[:max_train] if max_train else dataset.train.x
    x = dataset.test.x
    k = int(model.code_size)
    z_te = codes(model, params, x, batch_size=batch_size)
    recon_mse = 0.0
    for s in range(0, len(x), batch_size):
        xb = x[s:s + batch_size]
        recon_mse += float(np.sum(np.square(np.asarray(model.reconstruct(params, {"x": xb, "y": np.zeros(len(xb), np.int32)})) - xb)))
    recon_mse /= x.size
    flat_tr, flat_te = train_x.reshape(len(train_x), -1), x.reshape(len(x), -1)
    pca = PCA(n_components=min(k, *flat_tr.shape), svd_solver="full").fit(flat_tr)
    c_tr, c_te = pca.transform(flat_tr), pca.transform(flat_te)
    pca_mse = float(np.mean(np.square(pca.inverse_transform(c_te) - flat_te)))
    results: dict[str, Any] = {"code_size": k, "test/mse": recon_mse, "test/psnr": psnr_from_mse(recon_mse),
                               "test/pca_mse": pca_mse, "test/pca_psnr": psnr_from_mse(pca_mse)}
    rows = []
    if bits:
        z_tr = codes(model, params, train_x, batch_size=batch_size)
        lo, hi = z_tr.min(axis=0), z_tr.max(axis=0)
        p_lo, p_hi = c_tr.min(axis=0), c_tr.max(axis=0)
        for b in bits:
            mse = _mse(decode, params, quantize(z_te, lo, hi, b), x, batch_size)
            p_mse = float(np.mean(np.square(pca.inverse_transform(quantize(c_te, p_lo, p_hi, b)) - flat_te)))
            rows.append({"bits": b, "bits_per_image": b * k, "mse": mse, "psnr": psnr_from_mse(mse),
                         "pca_mse": p_mse, "pca_psnr": psnr_from_mse(p_mse)})
            results[f"test/q{b}_psnr"], results[f"test/q{b}_pca_psnr"] = rows[-1]["psnr"], rows[-1]["pca_psnr"]
        results["figures"] = [rate_distortion_figure({k: rows}, os.path.join(out_dir, "rate_distortion.png"))]
    results["rate_distortion"] = rows
    return results


def rate_distortion_figure(rows_by_size: dict[int, list[dict]], path: str) -> str:
    """PSNR against bits per image for each code size: the autoencoder (solid) and PCA (dashed)."""
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(1, len(rows_by_size))))
    for colour, (k, rows) in zip(colours, sorted(rows_by_size.items())):
        r = [row["bits_per_image"] for row in rows]
        ax.plot(r, [row["psnr"] for row in rows], "o-", color=colour, label=f"AE, K={k}")
        ax.plot(r, [row["pca_psnr"] for row in rows], "x--", color=colour, alpha=0.7, label=f"PCA, K={k}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bits per image (b bits x K code dimensions)")
    ax.set_ylabel("test PSNR (dB)")
    ax.set_title("rate-distortion with uniformly quantized codes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
