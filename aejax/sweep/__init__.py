"""Sweeps: expanding override lists, grouping runs by structure, vmapped/sharded execution, results.

`run_sweep(experiment, workdir, ...)` is what `aejax sweep` calls; `product`, `zip_points` and
`cross` build the list an experiment's `sweep()` returns.
"""

from aejax.sweep.results import collect_results
from aejax.sweep.runner import plan_sweep, run_sweep
from aejax.sweep.spec import cross, expand, parse_grid, parse_shard, product, run_ids, zip_points

__all__ = ["collect_results", "cross", "expand", "parse_grid", "parse_shard", "plan_sweep", "product", "run_ids",
           "run_sweep", "zip_points"]
