"""Feeding the training steps of a population: the split on the device, or streamed from host memory.

A population of R >= 1 runs trains from one of two feeds with one interface,
`feed(state, epochs, validate_after) -> (state, parts, val)` (`parts`: device arrays of the
steps' metrics and finite flags, fetched later with `epoch_metrics`; `val`: the validation sums of a
feed that validates inside its call, else None). Both take the single run's `step(state, batch, key, hp)`
and make its programs a population's with `program` (`aejax.train.population.Population.program`: vmapped
over the slots, or as it is for a run alone), so the state, hp and keys carry a leading slot axis exactly
when the population has one. `DeviceEpochs` keeps the training split on the device, `HostStream` in host
memory; `streams_from_host` decides between the two.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax.train.distributed import host
from aejax.train.step import chunk_body, epoch_batch_indices, epoch_body, subset_epoch_body

Program = Callable[..., Callable]  # program(fn, shared_positions) -> the population's fn

CHUNK_BYTES = 64 << 20  # a streamed chunk's size when data.stream_chunk_steps is 0: about 64 MiB


def split_bytes(x, y) -> int:
    """Bytes a split takes on the device: its examples as float32 and its int32 labels."""
    return 4 * (int(np.prod(x.shape, dtype=np.int64)) + int(np.prod(np.shape(y), dtype=np.int64)))


def free_device_bytes() -> int | None:
    """The free memory of this process's first device (`memory_stats()`), or None when the backend does
    not say (the CPU, where the device is host memory) or several processes must decide alike (each sees
    only its own devices: `jax.devices()[0]` is not even addressable from process 1)."""
    if jax.process_count() > 1:
        return None
    stats = jax.local_devices()[0].memory_stats()
    if not stats or "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))


def streams_from_host(x, y, *, on_device: bool, bytes_limit: int) -> bool:
    """True when the training split streams from the host: asked (`on_device=False`), memory-mapped (it may not
    fit in RAM, let alone on the device), or larger than `bytes_limit` when > 0, else than half the device's free
    memory when known (the other half for params, optimizer states, activations and the evaluation splits)."""
    if not on_device or callable(getattr(x, "chunks", None)):
        return True
    if bytes_limit > 0:
        return split_bytes(x, y) > bytes_limit
    free = free_device_bytes()
    return free is not None and split_bytes(x, y) > free // 2


def chunk_steps_for(requested: int, *, example_bytes: int, batch_size: int, steps_per_epoch: int,
                    members: int = 1) -> int:
    """Steps per streamed chunk: `requested` when > 0, else about `CHUNK_BYTES` of examples over all
    `members`; at most an epoch."""
    steps = requested if requested > 0 else CHUNK_BYTES // max(1, example_bytes * batch_size * members)
    return int(max(1, min(steps, steps_per_epoch)))


class DeviceEpochs:
    """The feed of a training split on the device: one epoch per call, or several epochs in one call that
    validates inside.

    Calls of one epoch run the one-epoch program (the loop validates after it). Once a call of several epochs
    comes, every call runs the long program: its epochs in a `lax.fori_loop` whose trip count is an argument,
    up to `capacity`, so calls of any length share one compiled program; after each epoch `validate_after`
    marks, it sums the validation split's terms with the key `fold_in(eval_key, epoch)`, the same numbers as
    the loop's validation: the host looks at the device once per call, whatever the cadence.

    Args:
      x, y: the split on the device (replicated over a mesh when there is one).
      hp, data_key, loop_key, eval_key: the population's (`program` says whether they carry a slot axis).
      val: the validation split (x, y) on the device, and `split_sums` the single run's sums over it.
      capacity: the most epochs one call runs (the validation buffers' length, V).
      batch_sharding: each batch split over a "data" mesh axis (a data-parallel run), or None.
      rows: members that see subsets of (x, y) (`aejax.data.subsets`): (idx [(slots,) L] padded index tables,
        count [(slots,)] their lengths, steps: the longest member's steps per epoch); every call then runs
        one-epoch programs (`subset_epoch_body`) and the loop validates each member after the call.
    """

    def __init__(self, step: Callable, x, y, hp, *, data_key, loop_key, eval_key, val, split_sums: Callable,
                 capacity: int, batch_size: int, program: Program, batch_sharding=None, rows=None):
        self.rows, self.capacity, self.validates = rows, capacity, False  # validates: the long program has run
        self._args = (x, y, hp, data_key, loop_key, eval_key)
        if rows is not None:
            single = subset_epoch_body(step, num_rows=len(y), steps=rows[2], batch_size=batch_size,
                                       batch_sharding=batch_sharding)
            self._epoch = jax.jit(program(single, (1, 2, 6)), donate_argnums=(0,))
            return
        single = epoch_body(step, num_examples=len(y), batch_size=batch_size, batch_sharding=batch_sharding)
        one = jax.jit(single)  # jitted inside the long program: its outputs' shapes and its body share one trace

        def epochs(state, x_N, y_N, hp, data_key, loop_key, eval_key, vx, vy, first, count, validate_V):
            def validate(params, e):
                return split_sums(params, vx, vy, hp, jax.random.fold_in(eval_key, e))

            def zeros(shapes, *lead):
                return jax.tree_util.tree_map(lambda a: jnp.zeros((*lead, *a.shape), a.dtype), shapes)

            out_shapes = jax.eval_shape(lambda s: one(s, x_N, y_N, hp, data_key, loop_key, first)[1], state)
            val_shapes = jax.eval_shape(validate, state["params"], first)

            def body(i, carry):
                state, outs, vals = carry
                e = first + i
                state, out = one(state, x_N, y_N, hp, data_key, loop_key, e)
                val = jax.lax.cond(validate_V[i], validate, lambda p, e: zeros(val_shapes), state["params"], e)
                put = lambda buffers, new: jax.tree_util.tree_map(lambda b, n: b.at[i].set(n), buffers, new)
                return state, put(outs, out), put(vals, val)

            carry = (state, zeros(out_shapes, capacity), zeros(val_shapes, capacity))
            state, outs, vals = jax.lax.fori_loop(0, count, body, carry)
            return state, (outs, vals)

        single, epochs = program(single, (1, 2, 6)), program(epochs, (1, 2, 7, 8, 9, 10, 11))
        self._epoch, self._epochs = jax.jit(single, donate_argnums=(0,)), jax.jit(epochs, donate_argnums=(0,))
        self._args += tuple(val)

    def update(self, hp, data_key, loop_key, eval_key, rows=None) -> None:
        """The population's new hp and keys (a search stopped members or changed hp), and its members' index
        tables when they see subsets: a program is compiled once per width, so the same width compiles nothing."""
        self._args = (*self._args[:2], hp, data_key, loop_key, eval_key, *self._args[6:])
        self.rows = rows if rows is not None else self.rows

    def __call__(self, state, epochs: range, validate_after: Sequence[bool]):
        """Runs `epochs`; returns (state, parts, val): `val` None after the one-epoch program, else the validation
        sums, [(slots,) V] per term, to be read at the positions `validate_after` marks (`parts` hold
        V = `capacity` epochs too, the first ones run)."""
        if not 1 <= len(epochs) <= self.capacity:
            raise ValueError(f"a call of {len(epochs)} epochs; this feed runs 1 to {self.capacity}.")
        if self.rows is not None or (len(epochs) == 1 and not self.validates):  # one-epoch programs
            rows, parts = () if self.rows is None else self.rows[:2], []
            for epoch in epochs:
                state, out = self._epoch(state, *self._args[:5], np.int32(epoch), *rows)
                parts.append(out)
            return state, parts, None
        self.validates = True
        validate_V = np.zeros(self.capacity, bool)
        validate_V[:len(epochs)] = validate_after
        state, (out, val) = self._epochs(state, *self._args, np.int32(epochs.start), np.int32(len(epochs)), validate_V)
        return state, [out], val


class HostStream:
    """The feed of a training split in host memory (ndarrays, or `aejax.data.lazy.Rows` of a memory-mapped file):
    chunks of `chunk_steps` batches of every member (an epoch's last chunk may be shorter: one more compile).

    Each epoch's batch order is the device's permutation (`epoch_batch_indices`, fetched once per epoch); the
    host gathers a chunk's batches in that order, `jax.device_put`s them and runs the same step scanned over
    them (`chunk_body`): the parameters equal the on-device run's bitwise (on CPU). Double buffering comes from
    JAX's asynchronous dispatch, not a thread: the host gathers and transfers chunk k+1 while the device
    computes chunk k, and waits for chunk k-1 first: at most two chunks on the device.
    """

    def __init__(self, step: Callable, x, y, hp, *, data_key, loop_key, batch_size: int, chunk_steps: int,
                 program: Program):
        order = program(functools.partial(epoch_batch_indices, num_examples=len(y), batch_size=batch_size), (1,))
        self._chunk, self._order = jax.jit(program(chunk_body(step)), donate_argnums=(0,)), jax.jit(order)
        self._x, self._y, self.chunk_steps = x, np.asarray(y), chunk_steps
        self.update(hp, data_key, loop_key)

    def update(self, hp, data_key, loop_key, eval_key=None) -> None:
        self._hp, self._data_key, self._loop_key = hp, data_key, loop_key

    def _chunk_indices(self, epochs: range):
        """[(slots,) S, B] example indices of each chunk, in training order; the next epoch's permutation
        is dispatched before this epoch's chunks are gathered, so it is ready when needed."""
        pending = self._order(self._data_key, epochs[0])
        for i in range(len(epochs)):
            idx = np.asarray(host(pending))
            if i + 1 < len(epochs):
                pending = self._order(self._data_key, epochs[i + 1])
            for start in range(0, idx.shape[-2], self.chunk_steps):
                yield idx[..., start:start + self.chunk_steps, :]

    def _gather(self, idx: np.ndarray):
        flat = idx.reshape(-1)
        x = self._x.take(flat) if hasattr(self._x, "take") and not isinstance(self._x, np.ndarray) else self._x[flat]
        return x.reshape(*idx.shape, *x.shape[1:]), self._y[flat].reshape(idx.shape)

    def __call__(self, state, epochs: range, validate_after: Sequence[bool] = ()):
        """Runs `epochs` chunk by chunk; returns (state, parts, None): validation is the loop's."""
        parts: list[Any] = []
        indices = self._chunk_indices(epochs)
        ready = jax.device_put(self._gather(next(indices)))
        while True:
            state, out = self._chunk(state, *ready, self._hp, self._loop_key)  # returns before it has run
            parts.append(out)
            idx = next(indices, None)
            if idx is None:
                return state, parts, None
            gathered = self._gather(idx)  # on the host, while the device computes the chunk just dispatched
            if len(parts) >= 2:
                jax.block_until_ready(parts[-2])  # the chunk before it is done: at most two on the device
            ready = jax.device_put(gathered)


def _joined(parts: Sequence[Any], num_epochs: int, steps_per_epoch: int) -> np.ndarray:
    """[slots, E, S]: the first `num_epochs` epochs of a call's `parts` (each [slots, ...]), joined."""
    whole = np.concatenate([np.asarray(p).reshape(len(p), -1) for p in parts], axis=1)
    return whole[:, :num_epochs * steps_per_epoch].reshape(whole.shape[0], num_epochs, steps_per_epoch)


def epoch_metrics(fetched: Sequence[Any], num_epochs: int, steps_per_epoch: int
                  ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(metrics {term: [slots, E, S]}, finite [slots, E, S]) of a call's first `num_epochs` epochs (a padded call
    has more) from a feed's `parts` fetched to the host with their slot axis (`Population.fetch`)."""
    metrics = {k: _joined([out[0][k] for out in fetched], num_epochs, steps_per_epoch) for k in fetched[0][0]}
    return metrics, _joined([out[1] for out in fetched], num_epochs, steps_per_epoch)


def active_steps(fetched: Sequence[Any], num_epochs: int, steps_per_epoch: int) -> np.ndarray | None:
    """[slots, E, S] True where a member trained (members that see subsets: a step past a member's own count is
    not its), or None when every step of a call is every member's."""
    return _joined([out[2] for out in fetched], num_epochs, steps_per_epoch) if len(fetched[0]) > 2 else None


__all__ = ["DeviceEpochs", "HostStream", "active_steps", "chunk_steps_for", "epoch_metrics",
           "free_device_bytes", "split_bytes", "streams_from_host"]
