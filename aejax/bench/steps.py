"""Timing one run's training step: compile apart from run time, FLOPs per step, efficiency.

Every timed program is the bare `lax.scan` of a `RunSetup`'s own step (`make_bare_scan`, the
program `fit` runs without validation, logging and checkpoints). Compile time is the
`lower(...).compile()` of that scan; run time is the median over repeats of one call of S
steps. Each repeat also times the peak matmul (`aejax.bench.machine`), right after the
steps, so the efficiency (step FLOP/s over matmul FLOP/s) compares two figures measured under
the same load; its median over repeats is reported.
"""

from __future__ import annotations

import collections
import itertools
import re
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from aejax.bench.machine import PEAK_SHAPES, matmul_peak_flops_per_s
from aejax.train.benchmark import make_bare_scan
from aejax.train.setup import RunSetup
from aejax.train.step import epoch_batch_indices


def counted_mlp_step_flops(widths: Sequence[int], batch_size: int) -> float:
    """Matmul FLOPs of one training step of an MLP with layer widths `widths` (input first).

    Forward: 2*B*in*out per layer. Backward: the weight gradient of every layer (2*B*in*out)
    and the input gradient of every layer but the first (nothing needs d loss / d x).
    Elementwise work (activations, the loss, the optimizer) is not counted.
    """
    pairs = list(itertools.pairwise(widths))
    if not pairs or batch_size < 1:
        raise ValueError(f"need at least two widths and a positive batch size, got {widths} and {batch_size}.")
    forward = sum(2.0 * batch_size * a * b for a, b in pairs)
    first_input_grad = 2.0 * batch_size * pairs[0][0] * pairs[0][1]
    return 3 * forward - first_input_grad


def compiled_flops(compiled) -> float | None:
    """The "flops" XLA's cost analysis gives a compiled program (a dict, or a list with one dict
    on some jax versions); None when the backend does not say."""
    try:
        analysis = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - some backends raise instead of returning nothing
        return None
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else None
    flops = (analysis or {}).get("flops")
    return float(flops) if flops and flops > 0 else None


# Instructions that launch no work of their own (bookkeeping, control flow, aliases).
_NOT_KERNELS = frozenset({"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "while", "conditional",
                          "call", "opt-barrier", "after-all", "partition-id", "replica-id", "add-dependency",
                          "domain", "get-dimension-size"})
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s+\(.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s+(?:ROOT\s+)?%?[\w.\-]+\s*=\s*.+?\s([a-z][\w\-]*)\(")
_CALLED = re.compile(r"(?:calls|to_apply)=%?([\w.\-]+)")
_LOOP_BODY = re.compile(r"body=%?([\w.\-]+)")


def hlo_counts(hlo_text: str, *, loop_body: bool = False) -> dict[str, int]:
    """What an optimized HLO module (`jax.jit(f).lower(...).compile().as_text()`) launches.

    Counted in the computations that run as a program (the entry, while bodies and conditions, called
    computations), not inside fusion bodies or reducers:
      fusion   XLA's fused kernels: on a GPU each is one kernel launch; on the CPU one loop or library call;
      kernels  every instruction there that does work: fusions plus unfused ops (dots, copies, custom-calls
               such as cuBLAS GEMMs, sorts, ...), i.e. the launches per call (per step, for a single step);
      dot, copy, custom-call  those unfused ops alone.
    Counted everywhere, inside fusions too: sort, gather, scatter (the ops to look for in a masking step).
    A scanned program holds its step once, in the while body: with `loop_body` only the while bodies
    are counted, i.e. what runs per step (without the program's entry: copies of undonated arguments).
    """
    called = set(_CALLED.findall(hlo_text))
    bodies = set(_LOOP_BODY.findall(hlo_text)) if loop_body else None
    top: collections.Counter = collections.Counter()
    anywhere: collections.Counter = collections.Counter()
    computation = None
    for line in hlo_text.splitlines():
        header = _COMPUTATION.match(line)
        if header:
            computation = header.group(1)
            continue
        instruction = _INSTRUCTION.match(line)
        if not instruction:
            continue
        op = instruction.group(1)
        if bodies is not None and computation not in bodies and computation not in called:
            continue
        anywhere[op] += 1
        if computation not in called and (bodies is None or computation in bodies):
            top[op] += 1
    out = {"fusion": top["fusion"], "kernels": sum(n for op, n in top.items() if op not in _NOT_KERNELS),
           "dot": top["dot"], "copy": top["copy"], "custom-call": top["custom-call"]}
    out.update({op: anywhere[op] for op in ("sort", "gather", "scatter")})
    return out


def compiled_step(run: RunSetup):
    """`run`'s single training step, jitted and compiled alone (on its first batch)."""
    batch = {"x": jnp.asarray(run.dataset.train.x[:run.train.batch_size]),
             "y": jnp.asarray(run.dataset.train.y[:run.train.batch_size])}
    return jax.jit(run.train_step()).lower(run.init_state(), batch, run.keys.loop, run.hp).compile()


def step_flops(run: RunSetup) -> float | None:
    """FLOPs of one jitted training step of `run` from the compiled program's cost analysis.

    The single step is compiled for this (a scanned program's cost analysis counts its loop
    body once, not once per step).
    """
    return compiled_flops(compiled_step(run))


def load_plain_scan():
    """The module `scripts/plain_scan.py` of this checkout (the hand-written flax + optax scan of the
    reference model), or None when the file is not there (an installed package has no scripts/)."""
    import importlib.util
    import pathlib
    import sys

    path = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "plain_scan.py"
    if not path.is_file():
        return None
    if "aejax_plain_scan" not in sys.modules:
        spec = importlib.util.spec_from_file_location("aejax_plain_scan", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["aejax_plain_scan"] = module  # dataclasses (flax modules) look their module up
        spec.loader.exec_module(module)
    return sys.modules["aejax_plain_scan"]


def batch_indices(run: RunSetup, steps: int) -> jax.Array:
    """[steps, B] example indices: the run's epochs in order, as many as `steps` needs."""
    per_epoch = run.steps_per_epoch
    epochs = [epoch_batch_indices(run.keys.data, e, num_examples=len(run.dataset.train),
                                  batch_size=run.train.batch_size) for e in range(-(-steps // per_epoch))]
    return jnp.concatenate(epochs)[:steps]


def timed(fn: Callable[[], Any]) -> float:
    """Seconds `fn()` takes, its outputs ready."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def time_run_step(run: RunSetup, *, steps: int, repeats: int, counted_flops: float | None = None,
                  peak_shapes=PEAK_SHAPES) -> dict[str, Any]:
    """Times `steps` steps of `run`'s bare scan `repeats` times; one row of the suite's tables.

    Returns compile_s, steps_per_s and examples_per_s (medians), the fusions and kernels of the
    compiled single step (`step_fusions`, `step_kernels`: see `hlo_counts`), the FLOPs per step from the
    cost analysis (`cost_flops`) and, when given, the counted matmul FLOPs (`counted_flops`,
    used as the model FLOPs when present), `step_flops_per_s`, the `matmul_peak_flops_per_s`
    measured beside it, and `efficiency`, the median of their per-repeat ratio.
    """
    if steps < 1 or repeats < 1:
        raise ValueError(f"steps and repeats must be >= 1, got {steps} and {repeats}.")
    bare = make_bare_scan(run)
    idx_SxB = batch_indices(run, steps)
    state = run.init_state()
    start = time.perf_counter()
    compiled = bare.lower(state, idx_SxB).compile()
    compile_s = time.perf_counter() - start
    state, out = compiled(state, idx_SxB)  # first call: allocations, caches
    jax.block_until_ready(out)
    single = compiled_step(run)
    cost, counts = compiled_flops(single), hlo_counts(single.as_text())
    model_flops = counted_flops or cost
    seconds, peaks = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        state, out = compiled(state, idx_SxB)
        jax.block_until_ready((state, out))
        seconds.append(time.perf_counter() - start)
        peaks.append(matmul_peak_flops_per_s(peak_shapes))
    steps_per_s = [steps / s for s in seconds]
    row = {"batch_size": run.train.batch_size, "steps": steps, "repeats": repeats, "compile_s": compile_s,
           "step_fusions": counts["fusion"], "step_kernels": counts["kernels"],
           "steps_per_s": statistics.median(steps_per_s),
           "examples_per_s": statistics.median(steps_per_s) * run.train.batch_size,
           "cost_flops": cost, "counted_flops": counted_flops, "matmul_peak_flops_per_s": statistics.median(peaks)}
    if model_flops:
        row["step_flops_per_s"] = model_flops * row["steps_per_s"]
        row["efficiency"] = statistics.median(model_flops * r / p for r, p in zip(steps_per_s, peaks))
    else:
        row["step_flops_per_s"] = row["efficiency"] = None
    row["finite"] = bool(np.all(np.asarray(out[1])))
    return row
