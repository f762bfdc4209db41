"""The benchmark suite (`aejax bench`, `scripts/bench.py`): throughput, compile time, efficiency
against the machine's matmul rate, fit against the bare scan, sweeps, and a PyTorch reference.

Sits on top of train/ and sweep/ (it times their programs); nothing in the library imports it.
"""

from aejax.bench.machine import (
           machine_info,
           matmul_flops_per_s,
           matmul_peak_flops_per_s,
)
from aejax.bench.steps import compiled_flops, counted_mlp_step_flops, hlo_counts, load_plain_scan, time_run_step
from aejax.bench.suite import (
           SECTIONS,
           SuiteOptions,
           markdown,
           reference_config,
           run_suite,
)
from aejax.bench.torch_reference import TorchReference, torch_available, torch_device, torch_steps_per_s

__all__ = ["SECTIONS", "SuiteOptions", "TorchReference", "compiled_flops", "counted_mlp_step_flops", "hlo_counts",
           "load_plain_scan", "machine_info", "markdown", "matmul_flops_per_s", "matmul_peak_flops_per_s",
           "reference_config", "run_suite", "time_run_step", "torch_available", "torch_device", "torch_steps_per_s"]
