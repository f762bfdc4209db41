"""The platform a run trains on: the device kind, and bitwise-repeatable GPU runs (`train.deterministic`).

GPU runs repeat bitwise only with XLA's deterministic ops (`--xla_gpu_deterministic_ops=true`; without
it, atomics in reductions and scatter make two identical runs differ in the last bits). The flag is
read when the backend starts, so `import aejax` adds it to XLA_FLAGS (`train.deterministic` defaults
to true), and the command line removes it for `--set train.deterministic=False` before the backend
starts. A run whose wish cannot be met any more (the backend already started the other way, e.g. after
`import jax` and a computation before `import aejax`) gets one line on stderr. CPU runs are
deterministic either way; the flag changes nothing there.
"""

from __future__ import annotations

import os
import sys

DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"
_state = {"at_start": None, "warned": False}  # the flag as the backend started with it (None: not started)


def _backend_started() -> bool:
    if "jax" not in sys.modules:  # not imported, so not started; and `import aejax` stays light (no JAX yet)
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # another jax: try anyway (the flag is harmless once a backend runs)
        return False


def request_deterministic(wanted: bool = True) -> None:
    """Adds XLA's deterministic-ops flag to XLA_FLAGS (or removes it), if the backend has not started yet."""
    if _backend_started():
        return
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith("--xla_gpu_deterministic_ops")]
    os.environ["XLA_FLAGS"] = " ".join(flags + ([DETERMINISTIC_FLAG] if wanted else []))


def deterministic_active() -> bool:
    """Whether the running backend started with XLA's deterministic ops (starts the backend if needed)."""
    if _state["at_start"] is None:
        import jax

        jax.devices()  # start the backend, then read the flags it started with
        _state["at_start"] = DETERMINISTIC_FLAG in os.environ.get("XLA_FLAGS", "").split()
    return bool(_state["at_start"])


def ensure_deterministic(wanted: bool) -> bool:
    """Applies `train.deterministic`: sets the flag if the backend has not started, else says in one line
    (once) when a GPU run asked for repeatability it cannot have. Returns whether the flag is in effect."""
    request_deterministic(wanted)
    active = deterministic_active()
    if wanted and not active and device_kind().startswith("gpu") and not _state["warned"]:
        _state["warned"] = True
        print("aejax: warning: train.deterministic=True, but the GPU backend started without "
              f"{DETERMINISTIC_FLAG}: this run may not repeat bitwise; import aejax (or set XLA_FLAGS) before "
              "the first JAX computation.", file=sys.stderr, flush=True)
    return active


def device_kind() -> str:
    """"platform: device kind" of the first local device, e.g. "gpu: NVIDIA H200" or "cpu: cpu"."""
    import jax

    device = jax.local_devices()[0]
    return f"{device.platform}: {device.device_kind}"


__all__ = ["DETERMINISTIC_FLAG", "deterministic_active", "device_kind", "ensure_deterministic",
           "request_deterministic"]
