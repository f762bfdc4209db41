"""The training step and the scanned epoch.

An epoch is one `jax.lax.scan` over batches of a permutation drawn on the device from
`fold_in(data_key, epoch)`; the step's key is `fold_in(loop_key, step)`. Batch order and
per-step randomness are therefore functions of (seed, step) alone, which is what makes a
resumed run draw exactly the numbers an uninterrupted one would (big_vision's convention).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from aejax.models.protocols import CustomUpdate
from aejax.models.updates import gradient_norm, gradient_step
from aejax.train.distributed import host as to_host

TrainState = dict  # {"step": int32 [], "params": pytree, "opt_state": pytree}


def init_train_state(model, tx, params) -> TrainState:
    """Step 0: `params` and the optimizer state (the kind's own when it is a CustomUpdate)."""
    opt_state = model.init_opt_state(tx, params) if isinstance(model, CustomUpdate) else tx.init(params)
    return {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": opt_state}


def make_train_step(model, tx, *, skip_nonfinite: bool) -> Callable:
    """Returns step(state, batch, key, hp) -> (state, metrics, finite): the one update path.

    The global step goes to the loss (`loss(..., step=state["step"])`, for KL warm-up and any
    other schedule) or to a CustomUpdate kind's `update`. `finite` is False when the loss or
    the gradient norm is NaN or infinite; with `skip_nonfinite` such an update is dropped
    (params and optimizer state kept, the step still advances).
    """

    def step(state, batch, key, hp):
        if isinstance(model, CustomUpdate):
            params, opt_state, loss, aux, grad_norm = model.update(
                tx, state["params"], state["opt_state"], batch, key, hp, step=state["step"])
        else:
            loss_fn = functools.partial(model.loss, step=state["step"])
            params, opt_state, loss, aux, grads = gradient_step(
                loss_fn, tx, state["params"], state["opt_state"], hp["learning_rate"], batch, key, hp)
            grad_norm = gradient_norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        if skip_nonfinite:
            keep = lambda new, old: jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), new, old)
            params = keep(params, state["params"])
            opt_state = keep(opt_state, state["opt_state"])
        new_state = {"step": state["step"] + 1, "params": params, "opt_state": opt_state}
        metrics = {"loss": loss, **aux, "grad_norm": grad_norm}
        return new_state, metrics, finite

    return step


def at_precision(fn: Callable, precision: str | None) -> Callable:
    """`fn` traced under `jax.default_matmul_precision(precision)` (None: unchanged): "tensorfloat32" uses
    a GPU's tensor cores for float32 matrix products, "highest" full float32, "bfloat16" one bf16 pass."""
    if precision is None:
        return fn

    @functools.wraps(fn)
    def traced_at_precision(*args, **kwargs):
        with jax.default_matmul_precision(precision):
            return fn(*args, **kwargs)

    return traced_at_precision


def over_runs(fn: Callable, shared: tuple[int, ...] = (), *, spmd_axis_name: str | None = None) -> Callable:
    """`fn` vmapped over a leading run axis R of every positional argument but those at `shared` (the data,
    the epoch numbers), which all runs see whole: the one way a population's programs are made (the
    training loop, the benchmark and the scripts). `spmd_axis_name` names the mesh axis the run axis is
    sharded over, so that sharding constraints inside `fn` (a "data" axis) keep it."""

    def vmapped(*args):
        in_axes = tuple(None if i in shared else 0 for i in range(len(args)))
        return jax.vmap(fn, in_axes=in_axes, spmd_axis_name=spmd_axis_name)(*args)

    return functools.wraps(fn)(vmapped)


def _count_compiles(event: str, seconds: float, **_) -> None:
    if event.startswith("/jax/core/compile/"):  # tracing, lowering to MLIR, backend compilation
        _COMPILE_SECONDS[0] += seconds


_COMPILE_SECONDS = [0.0]  # a process-wide clock of compile seconds, fed by JAX's own compile events
jax.monitoring.register_event_duration_secs_listener(_count_compiles)


def compile_seconds() -> float:
    """Seconds this process has spent tracing and compiling JAX programs so far (JAX's monitoring events):
    the training loop subtracts the compiles a call caused from its time, whatever the options."""
    return _COMPILE_SECONDS[0]


def epoch_batch_indices(data_key, epoch, *, num_examples: int, batch_size: int):
    """The [steps, batch_size] example indices of one epoch (the last partial batch is dropped)."""
    steps = num_examples // batch_size
    perm = jax.random.permutation(jax.random.fold_in(data_key, epoch), num_examples)
    return perm[: steps * batch_size].reshape(steps, batch_size)


def batch_at(x_N, y_N, idx_B) -> dict:
    """The batch {"x": x_N[idx_B], "y": y_N[idx_B]} of in-range, non-negative indices (a permutation's):
    gathered as promised in bounds, without the clamp, fill or negative-index wrap that would add a select
    over the whole batch each step."""
    def rows(a):
        return a.at[idx_B].get(mode="promise_in_bounds", unique_indices=True, wrap_negative_indices=False)
    return {"x": rows(x_N), "y": rows(y_N)}


def epoch_body(step: Callable, *, num_examples: int, batch_size: int, batch_sharding=None) -> Callable:
    """The unjitted epoch(state, x, y, hp, data_key, loop_key, epoch) -> (state, (metrics, finite)).

    One `lax.scan` of `step` over the batches of `permutation(fold_in(data_key, epoch))`; the
    step's key is `fold_in(loop_key, step)`. The training loop jits it for one run, or vmaps it
    over a leading run axis of state, hp and keys for a population (`over_runs`). With
    `batch_sharding` (a NamedSharding over a "data" mesh axis) each batch is split across
    devices and XLA all-reduces the gradients: data-parallel training of a run.
    """

    def epoch_fn(state, x_N, y_N, hp, data_key, loop_key, epoch):
        idx_SxB = epoch_batch_indices(data_key, epoch, num_examples=num_examples, batch_size=batch_size)

        def body(state, idx_B):
            batch = batch_at(x_N, y_N, idx_B)
            if batch_sharding is not None:
                batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
            key = jax.random.fold_in(loop_key, state["step"])
            state, metrics, finite = step(state, batch, key, hp)
            return state, (metrics, finite)

        return jax.lax.scan(body, state, idx_SxB)

    return epoch_fn


def chunk_body(step: Callable) -> Callable:
    """The unjitted chunk(state, x_KxB, y_KxB, hp, loop_key) -> (state, (metrics, finite)).

    The steps of K batches that the host gathered (streaming from host memory, see
    `aejax.train.feed`): the same step with the same key `fold_in(loop_key, step)` as the
    on-device epoch, scanned over the chunk's leading axis.
    """

    def chunk_fn(state, x_KxB, y_KxB, hp, loop_key):
        def body(state, batch):
            x_B, y_B = batch
            key = jax.random.fold_in(loop_key, state["step"])
            state, metrics, finite = step(state, {"x": x_B, "y": y_B}, key, hp)
            return state, (metrics, finite)

        return jax.lax.scan(body, state, (x_KxB, y_KxB))

    return chunk_fn


def make_epoch_fn(step: Callable, *, num_examples: int, batch_size: int, batch_sharding=None) -> Callable:
    """Returns a jitted epoch(state, x, y, hp, data_key, loop_key, epoch) -> (state, (metrics, finite)).

    `metrics` holds one value per step for every term ([steps] arrays) and `finite` is
    [steps] bool; both stay on the device until the caller fetches them once.
    The state argument is donated.
    """
    body = epoch_body(step, num_examples=num_examples, batch_size=batch_size, batch_sharding=batch_sharding)
    return jax.jit(body, donate_argnums=(0,))


def _eval_pieces(model, *, precision: str | None) -> tuple[Callable, Callable]:
    """The single run's unjitted full_batches(params, x_MxB, y_MxB, hp, key, first_batch) and
    remainder(params, x, y, hp, key): each split term summed over M full batches (one `lax.map`, the
    key folded with the batch's number) and over a last partial batch (its own key)."""

    @functools.partial(at_precision, precision=precision)
    def batch_terms(params, batch, key, hp):
        loss, aux = model.loss(params, batch, key, hp)  # step=None: every term at its full weight
        x_hat = model.reconstruct(params, batch)
        mse = jnp.mean(jnp.square(x_hat - batch["x"]))
        return {"loss": loss, **aux, "mse": mse}

    def full_batches(params, x_MxB, y_MxB, hp, key, first_batch):
        def one(args):
            i, xb, yb = args
            return batch_terms(params, {"x": xb, "y": yb}, jax.random.fold_in(key, i), hp)
        batch_ids = jnp.arange(x_MxB.shape[0]) + first_batch
        terms = jax.lax.map(one, (batch_ids, x_MxB, y_MxB))
        return jax.tree_util.tree_map(lambda t: jnp.sum(t, axis=0) * x_MxB.shape[1], terms)

    def remainder(params, x, y, hp, key):
        terms = batch_terms(params, {"x": x, "y": y}, jax.random.fold_in(key, 2**31 - 1), hp)
        return jax.tree_util.tree_map(lambda t: t * x.shape[0], terms)

    return full_batches, remainder


def make_split_sums(model, *, batch_size: int, precision: str | None = None) -> Callable:
    """Returns the traceable sums(params, x, y, hp, key) -> {term: sum over the split} of one run, for a
    split on the device: `make_eval_fn`'s terms and keys (divide by the split's size for its means). It is
    the one program of an evaluation on the device, and the training loop's long calls validate inside
    with it (`aejax.train.feed.DeviceEpochs`)."""
    full_batches, remainder = _eval_pieces(model, precision=precision)

    def sums(params, x, y, hp, key):
        n = x.shape[0]
        full = (n // batch_size) * batch_size
        out = {}
        if full:
            m = full // batch_size
            out = full_batches(params, x[:full].reshape(m, batch_size, *x.shape[1:]), y[:full].reshape(m, batch_size),
                               hp, key, 0)
        if full < n:
            rest = remainder(params, x[full:], y[full:], hp, key)
            out = rest if not out else jax.tree_util.tree_map(jnp.add, out, rest)
        return out

    return sums


def make_eval_fn(model, *, batch_size: int, runs_axis: bool = False, host_chunk_batches: int = 0,
                 precision: str | None = None) -> Callable:
    """Returns evaluate(params, x, y, hp, key, *, fetch=True) -> dict of means over the split.

    Terms: the model's loss and aux terms (with keys folded from `key` per batch) and
    "mse", the mean squared error per pixel of `model.reconstruct`. Full batches run in one
    `lax.map`; a remainder runs once more at its own size; a split on the device is one program
    (`make_split_sums`, one dispatch). Means are exact (weighted).
    With `runs_axis`, params, hp and key carry a leading run axis (a sweep group) and each
    mean is a [R] array. With `host_chunk_batches` > 0, a split given as host arrays (numpy,
    or rows of a memory-mapped file) is read `host_chunk_batches` batches at a time, at most
    two chunks on the device: the same per-batch terms and keys, summed chunk by chunk (so
    the means may differ from a one-call evaluation in the last bits). With `fetch=False` the
    evaluation is only dispatched: it returns a function that fetches the means when called (the
    training loop fetches them after its next call was dispatched).
    """

    full_batches, remainder = _eval_pieces(model, precision=precision)
    split_sums = make_split_sums(model, batch_size=batch_size, precision=precision)
    if runs_axis:  # params, hp and key per run; the split (and the first batch's number) shared
        full_batches, remainder = over_runs(full_batches, shared=(1, 2, 5)), over_runs(remainder, shared=(1, 2))
        split_sums = over_runs(split_sums, shared=(1, 2))
    full_batches, remainder, split_sums = jax.jit(full_batches), jax.jit(remainder), jax.jit(split_sums)

    def add(a, b):
        return b if not a else jax.tree_util.tree_map(jnp.add, a, b)

    def streamed_sums(params, x, y, hp, key):
        n = int(x.shape[0])
        full = (n // batch_size) * batch_size
        sums, in_flight = {}, None
        step = host_chunk_batches * batch_size
        for start in range(0, full, step):
            stop = min(start + step, full)
            m = (stop - start) // batch_size
            x_MxB = jax.device_put(np.asarray(x[start:stop]).reshape(m, batch_size, *x.shape[1:]))
            y_MxB = jax.device_put(np.asarray(y[start:stop]).reshape(m, batch_size))
            if in_flight is not None:
                jax.block_until_ready(in_flight)  # at most two chunks on the device
            in_flight = full_batches(params, x_MxB, y_MxB, hp, key, start // batch_size)
            sums = add(sums, in_flight)
        if full < n:
            sums = add(sums, remainder(params, np.asarray(x[full:]), np.asarray(y[full:]), hp, key))
        return sums

    def means(sums, n: int) -> dict[str, Any]:
        host = to_host(sums)
        if runs_axis:
            return {k: np.asarray(v, np.float64) / n for k, v in host.items()}
        return {k: float(v) / n for k, v in host.items()}

    def evaluate(params, x, y, hp, key, *, fetch: bool = True):
        streamed = host_chunk_batches > 0 and not isinstance(x, jax.Array)
        sums = (streamed_sums if streamed else split_sums)(params, x, y, hp, key)
        n = int(x.shape[0])
        return means(sums, n) if fetch else functools.partial(means, sums, n)

    return evaluate
