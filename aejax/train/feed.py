"""Feeding the training steps: the split on the device, or streamed from host memory in chunks.

A run trains from one of two feeds with one interface, `feed(state, epochs) -> (state, parts)`
(`parts`: the device arrays of the steps' metrics and finite flags, fetched later with
`epoch_metrics`):

- `DeviceEpochs`: the training split lives on the device; an epoch is one scanned call that
  gathers its batches there (`aejax.train.step.make_epoch_fn`), or several epochs are one call
  (`make_epochs_fn`, `train.epochs_per_call`).
- `HostStream`: the split stays in host memory (or in a memory-mapped file, `aejax.data.lazy`).
  Each epoch's batch order is the device's permutation (`epoch_batch_indices`, fetched once per
  epoch); the host gathers `chunk_steps` batches in that order, `jax.device_put`s them and runs
  the same step scanned over them (`make_chunk_fn`). Double buffering comes from JAX's
  asynchronous dispatch, not a thread: the call that runs chunk k returns at once, so the host
  gathers and transfers chunk k+1 while the device computes chunk k; before a third chunk is
  transferred the host waits for chunk k-1, so at most two chunks occupy the device.

Same batches, same keys, same step: the parameters equal the on-device run's bitwise (on CPU).
`streams_from_host` decides between the two.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax.train.distributed import host
from aejax.train.step import epoch_batch_indices

CHUNK_BYTES = 64 << 20  # a streamed chunk's size when train.stream_chunk_steps is 0: about 64 MiB


def split_bytes(x, y) -> int:
    """Bytes a split takes on the device: its examples as float32 and its int32 labels."""
    examples = int(np.prod(x.shape, dtype=np.int64)) * 4
    return examples + int(np.prod(np.shape(y), dtype=np.int64)) * 4


def device_budget_bytes(limit: int) -> int | None:
    """Bytes a training split may take on the device: `limit` when > 0, else half the device's free
    memory (`memory_stats()`; the other half for params, optimizer state, activations and the
    evaluation splits), else None: no known limit (the CPU, where the device is host memory)."""
    if limit > 0:
        return int(limit)
    if jax.process_count() > 1:
        # Processes of one run must decide alike, and each sees only its own devices' memory (jax.devices()[0]
        # is not addressable from process 1: asking it raised there and left process 0 waiting in gloo).
        return None
    stats = jax.local_devices()[0].memory_stats()
    if not stats or "bytes_limit" not in stats:
        return None
    return (int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))) // 2


def streams_from_host(x, y, *, on_device: bool, bytes_limit: int) -> bool:
    """True when the training split streams from the host: asked (`on_device=False`), memory-mapped
    (it may not fit in RAM, let alone on the device), or larger than `device_budget_bytes`."""
    if not on_device or callable(getattr(x, "chunks", None)):
        return True
    budget = device_budget_bytes(bytes_limit)
    return budget is not None and split_bytes(x, y) > budget


def chunk_steps_for(requested: int, *, example_bytes: int, batch_size: int, steps_per_epoch: int) -> int:
    """Steps per streamed chunk: `requested` when > 0, else about `CHUNK_BYTES` of examples; at most an epoch."""
    steps = requested if requested > 0 else CHUNK_BYTES // max(1, example_bytes * batch_size)
    return int(max(1, min(steps, steps_per_epoch)))


class DeviceEpochs:
    """The feed of a training split on the device: one epoch per call (the default program), or
    several epochs scanned in one call."""

    def __init__(self, epoch_fn: Callable, epochs_fn: Callable, x, y, hp, *, data_key, loop_key):
        self._epoch_fn, self._epochs_fn = epoch_fn, epochs_fn
        self._args = (x, y, hp, data_key, loop_key)

    def __call__(self, state, epochs: range):
        if len(epochs) == 1:
            state, out = self._epoch_fn(state, *self._args, jnp.asarray(epochs[0], jnp.int32))
        else:
            state, out = self._epochs_fn(state, *self._args, jnp.arange(epochs.start, epochs.stop, dtype=jnp.int32))
        return state, [out]


class HostStream:
    """The feed of a training split in host memory: chunks of `chunk_steps` batches, double-buffered.

    Args:
      chunk_fn: chunk(state, x_KxB, y_KxB, hp, loop_key) from `make_chunk_fn`.
      x, y: the split on the host (ndarrays, or `aejax.data.lazy.Rows` with a `take` method).
      chunk_steps: batches per chunk; the last chunk of an epoch may be shorter (one more compile).
    """

    def __init__(self, chunk_fn: Callable, x, y, hp, *, data_key, loop_key, batch_size: int, chunk_steps: int):
        self._chunk_fn, self._x, self._y, self._hp = chunk_fn, x, np.asarray(y), hp
        self._data_key, self._loop_key = data_key, loop_key
        self._batch_size, self.chunk_steps = batch_size, chunk_steps
        self._order = jax.jit(functools.partial(epoch_batch_indices, num_examples=len(self._y), batch_size=batch_size))

    def _chunk_indices(self, epochs: range):
        """[K, B] example indices of each chunk, in training order; the next epoch's permutation is
        dispatched before this epoch's chunks are gathered, so it is ready when needed."""
        pending = self._order(self._data_key, epochs[0])
        for i, _ in enumerate(epochs):
            idx_SxB = np.asarray(host(pending))
            if i + 1 < len(epochs):
                pending = self._order(self._data_key, epochs[i + 1])
            for start in range(0, len(idx_SxB), self.chunk_steps):
                yield idx_SxB[start:start + self.chunk_steps]

    def _gather(self, idx_KxB: np.ndarray):
        flat = idx_KxB.reshape(-1)
        x = self._x.take(flat) if hasattr(self._x, "take") and not isinstance(self._x, np.ndarray) else self._x[flat]
        return x.reshape(*idx_KxB.shape, *x.shape[1:]), self._y[flat].reshape(idx_KxB.shape)

    def __call__(self, state, epochs: range):
        parts: list[Any] = []
        indices = self._chunk_indices(epochs)
        ready = jax.device_put(self._gather(next(indices)))
        while True:
            state, out = self._chunk_fn(state, *ready, self._hp, self._loop_key)  # returns before it has run
            parts.append(out)
            idx = next(indices, None)
            if idx is None:
                return state, parts
            gathered = self._gather(idx)  # on the host, while the device computes the chunk just dispatched
            if len(parts) >= 2:
                jax.block_until_ready(parts[-2])  # the chunk before it is done: at most two chunks on the device
            ready = jax.device_put(gathered)


def epoch_metrics(parts: Sequence[Any], num_epochs: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(metrics {term: [E, steps]}, finite [E, steps]) on the host from a feed's `parts`: the one transfer."""
    fetched = host(list(parts))
    metrics = {k: np.concatenate([np.reshape(m[k], -1) for m, _ in fetched]).reshape(num_epochs, -1)
               for k in fetched[0][0]}
    finite = np.concatenate([np.reshape(f, -1) for _, f in fetched]).reshape(num_epochs, -1)
    return metrics, finite


__all__ = ["DeviceEpochs", "HostStream", "chunk_steps_for", "device_budget_bytes", "epoch_metrics",
           "split_bytes", "streams_from_host"]
