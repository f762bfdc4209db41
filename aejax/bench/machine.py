"""What the benchmark ran on, and the machine's own matmul rate measured in the same run.

`machine_info()` names the device, the CPU (model and cores), the library versions and the
XLA flags; `matmul_flops_per_s` times a jitted float32 matrix product, the yardstick every
benchmarked step's FLOP rate is divided by (its "efficiency").
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp

# (M, K, N) of the products timed for the peak: the reference MLP's widest layer at both batch
# sizes and a square product; the best of them is the peak.
PEAK_SHAPES = ((128, 784, 512), (1024, 784, 512), (1024, 1024, 1024))


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """Device, CPU, versions and flags, as the JSON's "machine" entry."""
    device = jax.devices()[0]
    return {"backend": jax.default_backend(), "device": device.device_kind, "device_count": jax.device_count(),
            "cpu_model": cpu_model(), "cpu_cores": os.cpu_count(), "python": sys.version.split()[0],
            "jax": jax.__version__, "jaxlib": _version("jaxlib"), "flax": _version("flax"),
            "optax": _version("optax"), "numpy": _version("numpy"), "torch": _version("torch"),
            "xla_flags": os.environ.get("XLA_FLAGS", "")}


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS does not say): how shared the machine was."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def matmul_flops_per_s(m: int, k: int, n: int, *, min_seconds: float = 0.05) -> float:
    """FLOP/s (2*M*K*N per product) of a jitted float32 [M, K] @ [K, N], compiled first, timed
    over enough back-to-back products to last `min_seconds`."""
    if min(m, k, n) < 1 or min_seconds <= 0:
        raise ValueError(f"matrix sides and min_seconds must be positive, got {(m, k, n)} and {min_seconds}.")
    a = jax.random.normal(jax.random.key(0), (m, k), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (k, n), jnp.float32)
    product = jax.jit(jnp.matmul)
    product(a, b).block_until_ready()
    flops = 2.0 * m * k * n
    reps = max(1, int(min_seconds * 1e11 / flops))  # a first guess at 100 GFLOP/s, corrected below
    while True:
        start = time.perf_counter()
        for _ in range(reps):
            out = product(a, b)
        out.block_until_ready()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or reps >= 10_000:
            return flops * reps / elapsed
        reps = min(10_000, max(reps * 2, int(reps * min_seconds / max(elapsed, 1e-6)) + 1))


def matmul_peak_flops_per_s(shapes=PEAK_SHAPES, *, min_seconds: float = 0.05) -> float:
    """The best FLOP/s over `shapes`: the peak matmul rate of this device right now."""
    return max(matmul_flops_per_s(*shape, min_seconds=min_seconds) for shape in shapes)
