"""Several processes (hosts) as one JAX runtime, through `jax.distributed.initialize`.

Each process runs the same `aejax train` or `aejax sweep` command; JAX connects them through a
coordinator (the first process's address), and every device of every process joins one mesh: a
data-parallel run splits each batch over all of them, a population spreads its members over them
(`aejax.train.population`). Only process 0 writes metrics, figures, summaries and a sweep's files;
every process takes part in checkpoint saves (orbax coordinates them); choices that hang on a
process's own clock or memory are process 0's (`agree`).
The coordinator service is unauthenticated: run it on a trusted network only.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.experimental import multihost_utils


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
    """Joins the processes when a coordinator is given (flag or JAX_COORDINATOR_ADDRESS), their count and this
    one's id from the flags, JAX_NUM_PROCESSES / JAX_PROCESS_ID or a cluster JAX detects (Slurm); returns whether
    it joined them."""
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if not coordinator:
        return False
    env_count, env_id = os.environ.get("JAX_NUM_PROCESSES"), os.environ.get("JAX_PROCESS_ID")
    num_processes = num_processes if num_processes is not None else (int(env_count) if env_count else None)
    process_id = process_id if process_id is not None else (int(env_id) if env_id else None)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU devices of several processes
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    return True


def agree(value):
    """Process 0's `value` (a bool or an int) on every process: for a choice that depends on a process's own clock,
    memory or signals, which every process must make alike; `value` itself with one process."""
    if jax.process_count() == 1:
        return value
    return type(value)(multihost_utils.broadcast_one_to_all(np.asarray(value)).item())


def barrier(name: str) -> None:
    """With several processes, waits until every process got here (e.g. all read a workdir before any writes)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def is_primary() -> bool:
    """True on the process that writes the run's files (process 0)."""
    return jax.process_index() == 0


def host(tree):
    """`jax.device_get` (one transfer of the whole tree) that also takes arrays replicated over several processes
    (reads the local copy)."""
    def one(x):
        return np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) and not x.is_fully_addressable else x

    return jax.device_get(jax.tree_util.tree_map(one, tree))
