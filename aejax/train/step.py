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
from aejax.train.distributed import host as to_host_default

TrainState = dict  # {"step": int32 [], "params": pytree, "opt_state": pytree}


def init_train_state(model, tx, params) -> TrainState:
    """Step 0: `params` and the optimizer state (the kind's own when it is a CustomUpdate)."""
    opt_state = model.init_opt_state(tx, params) if isinstance(model, CustomUpdate) else tx.init(params)
    return {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": opt_state}


def make_train_step(model, tx, *, skip_nonfinite: bool) -> Callable:
    """Returns step(state, batch, key, hp) -> (state, metrics, finite): the one update path. The global step goes
    to the loss (for KL warm-up and other schedules) or a CustomUpdate's `update`; `finite` is False when the loss
    or the gradient norm is not finite, and with `skip_nonfinite` such an update is dropped (the step advances)."""

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
            params, opt_state = jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), (params, opt_state),
                                                       (state["params"], state["opt_state"]))
        return ({"step": state["step"] + 1, "params": params, "opt_state": opt_state},
                {"loss": loss, **aux, "grad_norm": grad_norm}, finite)

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
    """`fn` vmapped over a leading run axis R of every positional argument but those at `shared` (the data, the
    epoch numbers): the one way a population's programs are made. `spmd_axis_name` names the mesh axis the run
    axis is sharded over, so that sharding constraints inside `fn` (a "data" axis) keep it."""

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


def _scan_steps(step: Callable, state, xs, batch_of: Callable, hp, loop_key, batch_sharding=None, gated=False):
    """`step` scanned over the leading axis of `xs`, each element made a batch by `batch_of` (split over the devices
    of `batch_sharding` when given). `gated`: `xs` are (active [S] bool, ...), an inactive step leaves the state as
    it was, and the outputs gain `active`."""

    def body(state, x):
        active, x = x if gated else (None, x)
        batch = batch_of(x)
        if batch_sharding is not None:
            batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
        new, metrics, finite = step(state, batch, jax.random.fold_in(loop_key, state["step"]), hp)
        if not gated:
            return new, (metrics, finite)
        return jax.tree_util.tree_map(lambda n, o: jnp.where(active, n, o), new, state), (metrics, finite, active)

    return jax.lax.scan(body, state, xs)


def epoch_body(step: Callable, *, num_examples: int, batch_size: int, batch_sharding=None) -> Callable:
    """The unjitted epoch(state, x, y, hp, data_key, loop_key, epoch) -> (state, (metrics, finite)): one `lax.scan`
    of `step` over the batches of the epoch's permutation, gathered on the device (`metrics`: [S] per term,
    `finite`: [S] bool). With `batch_sharding` (a NamedSharding over a "data" mesh axis) each batch is split
    across devices and XLA all-reduces the gradients: data-parallel training of a run."""

    def epoch_fn(state, x_N, y_N, hp, data_key, loop_key, epoch):
        idx_SxB = epoch_batch_indices(data_key, epoch, num_examples=num_examples, batch_size=batch_size)
        return _scan_steps(step, state, idx_SxB, functools.partial(batch_at, x_N, y_N), hp, loop_key, batch_sharding)

    return epoch_fn


def subset_batch_indices(data_key, epoch, idx_L, count, *, num_rows: int, steps: int, batch_size: int):
    """The [steps, batch_size] rows of one epoch of a run that sees the rows `idx_L[:count]` of a split of
    `num_rows` (the table padded to a population's longest, L): keys `u = bits(fold_in(data_key, epoch))` drawn
    over the WHOLE split, the run's rows keyed by u[row], the padding by the largest key, a stable argsort.
    The first `count` entries are a uniformly random order of the run's rows, the same bits alone or padded;
    batches past the run's own `count // batch_size` hold padding and are not trained on."""
    u_N = jax.random.bits(jax.random.fold_in(data_key, epoch), (num_rows,))
    valid_L = jnp.arange(idx_L.shape[0]) < count
    keys_L = jnp.where(valid_L, u_N[idx_L], jnp.array(jnp.iinfo(u_N.dtype).max, u_N.dtype))
    order_L = idx_L[jnp.argsort(keys_L, stable=True)]
    need = steps * batch_size
    if need > order_L.shape[0]:
        order_L = jnp.concatenate([order_L, jnp.broadcast_to(order_L[:1], (need - order_L.shape[0],))])
    return order_L[:need].reshape(steps, batch_size)


def subset_epoch_body(step: Callable, *, num_rows: int, steps: int, batch_size: int, batch_sharding=None) -> Callable:
    """The unjitted epoch(state, x, y, hp, data_key, loop_key, epoch, idx_L, count) -> (state, (metrics, finite,
    active)) of a run that sees the rows `idx_L[:count]` of the split (`aejax.data.subsets`): `steps` (a
    population's longest epoch) steps of `subset_batch_indices`' batches; a step past the run's own
    `count // batch_size` leaves the state as it was (so the run's keys stay its own) and is marked inactive."""

    def epoch_fn(state, x_N, y_N, hp, data_key, loop_key, epoch, idx_L, count):
        idx_SxB = subset_batch_indices(data_key, epoch, idx_L, count, num_rows=num_rows, steps=steps,
                                       batch_size=batch_size)
        active_S = jnp.arange(steps) < count // batch_size

        def batch_of(idx_B):
            return {"x": x_N.at[idx_B].get(mode="promise_in_bounds"), "y": y_N.at[idx_B].get(mode="promise_in_bounds")}

        return _scan_steps(step, state, (active_S, idx_SxB), batch_of, hp, loop_key, batch_sharding, gated=True)

    return epoch_fn


def chunk_body(step: Callable) -> Callable:
    """The unjitted chunk(state, x_SxB, y_SxB, hp, loop_key) -> (state, (metrics, finite)): the steps of S
    batches the host gathered (`aejax.train.feed.HostStream`), with the on-device epoch's step and keys."""

    def chunk_fn(state, x_SxB, y_SxB, hp, loop_key):
        return _scan_steps(step, state, (x_SxB, y_SxB), lambda b: {"x": b[0], "y": b[1]}, hp, loop_key)

    return chunk_fn


def make_split_sums(model, *, batch_size: int, precision: str | None = None) -> Callable:
    """Returns the traceable sums(params, x, y, hp, key, first_batch=0) -> {term: sum over the rows} of one run:
    the model's loss and aux terms (`step=None`: every term at its full weight) and "mse", the mean squared
    error per pixel of `model.reconstruct`, summed over the full batches of `x` (one `lax.map`; batch i's key
    is `fold_in(key, first_batch + i)`) and over a last partial batch (its own key, `fold_in(key, 2**31 - 1)`).
    The one evaluation program: `make_eval_fn` and the loop's long calls (`aejax.train.feed.DeviceEpochs`) run it."""

    @functools.partial(at_precision, precision=precision)
    def batch_terms(params, batch, key, hp):
        loss, aux = model.loss(params, batch, key, hp)
        x_hat = model.reconstruct(params, batch)
        return {"loss": loss, **aux, "mse": jnp.mean(jnp.square(x_hat - batch["x"]))}

    def sums(params, x, y, hp, key, first_batch=0):
        n = x.shape[0]
        m, full = n // batch_size, (n // batch_size) * batch_size
        parts = []
        if m:
            def one(args):
                i, xb, yb = args
                return batch_terms(params, {"x": xb, "y": yb}, jax.random.fold_in(key, i), hp)
            terms = jax.lax.map(one, (jnp.arange(m) + first_batch, x[:full].reshape(m, batch_size, *x.shape[1:]),
                                      y[:full].reshape(m, batch_size)))
            parts.append(jax.tree_util.tree_map(lambda t: jnp.sum(t, axis=0) * batch_size, terms))
        if full < n:
            terms = batch_terms(params, {"x": x[full:], "y": y[full:]}, jax.random.fold_in(key, 2**31 - 1), hp)
            parts.append(jax.tree_util.tree_map(lambda t: t * (n - full), terms))
        return functools.reduce(lambda a, b: jax.tree_util.tree_map(jnp.add, a, b), parts)

    return sums


def make_eval_fn(model, *, batch_size: int, program: Callable | None = None, fetch: Callable | None = None,
                 host_chunk_batches: int = 0, precision: str | None = None) -> Callable:
    """Returns evaluate(params, x, y, hp, key, *, fetch=True) -> {term: mean over the split}.

    The terms and keys of `make_split_sums`; means are exact (weighted). A split on the device is one
    program, one dispatch. With `host_chunk_batches` > 0, a split given as host arrays (numpy, or rows of
    a memory-mapped file) is summed `host_chunk_batches` batches at a time, at most two chunks on the
    device (the means may differ from a one-call evaluation in the last bits). `program` makes a population's
    program (`Population.program`: params, hp and key per slot, the split shared), `fetch` brings its sums to
    the host (default: `jax.device_get`). With `fetch=False` it returns a function that fetches the means.
    """
    program = program or (lambda fn, shared=(): fn)
    split_sums = jax.jit(program(make_split_sums(model, batch_size=batch_size, precision=precision), (1, 2, 5)))
    to_host = fetch or to_host_default

    def streamed_sums(params, x, y, hp, key):
        n, sums, in_flight = int(x.shape[0]), None, None
        step = host_chunk_batches * batch_size
        for start in range(0, n, step):
            stop = n if n - start < step + batch_size else start + step  # the remainder rides with the last chunk
            x_c, y_c = jax.device_put(np.asarray(x[start:stop])), jax.device_put(np.asarray(y[start:stop]))
            if in_flight is not None:
                jax.block_until_ready(in_flight)  # at most two chunks on the device
            in_flight = split_sums(params, x_c, y_c, hp, key, start // batch_size)
            sums = in_flight if sums is None else jax.tree_util.tree_map(jnp.add, sums, in_flight)
            if stop == n:
                break
        return sums

    def means(sums, n: int) -> dict[str, Any]:
        return {k: np.asarray(v, np.float64) / n if np.ndim(v) else float(v) / n for k, v in to_host(sums).items()}

    def evaluate(params, x, y, hp, key, *, fetch: bool = True):
        streamed = host_chunk_batches > 0 and not isinstance(x, jax.Array)
        sums = streamed_sums(params, x, y, hp, key) if streamed else split_sums(params, x, y, hp, key, 0)
        n = int(x.shape[0])
        return means(sums, n) if fetch else functools.partial(means, sums, n)

    return evaluate
