"""Tasks that score a trained model. Each task is `task(run: LoadedRun, **options) -> dict`
and writes its figures under run.workdir/figures; `evaluate_workdir` writes report.md.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

from aejax.errors import ConfigError
from aejax.evaluate.run import LoadedRun, load_run

# task name -> "module:function"; modules are imported on first use.
TASKS: dict[str, str] = {
    "reconstruction": "aejax.evaluate.reconstruction:reconstruction_task",
    "denoising": "aejax.evaluate.denoising:denoising_task",
    "sparsity": "aejax.evaluate.sparsity:sparsity_task",
    "likelihood": "aejax.evaluate.likelihood:likelihood_task",
    "generation": "aejax.evaluate.generation:generation_task",
}


def evaluate_workdir(workdir: str, task: str, **options: Any) -> dict[str, Any]:
    """Runs `task` on the run in `workdir`, writes WORKDIR/report.md (appending a section) and returns results."""
    if task not in TASKS:
        raise ConfigError(f"unknown evaluation task {task!r}; choose one of {sorted(TASKS)}.")
    module_name, fn_name = TASKS[task].split(":")
    fn = getattr(importlib.import_module(module_name), fn_name)
    run = load_run(workdir)
    results = fn(run, **options)
    with open(os.path.join(workdir, "report.md"), "a", encoding="utf-8") as f:
        f.write(f"## {task}\n\n")
        f.write(f"Run: `{workdir}` (epoch {run.epoch}, model kind `{run.config.model.kind}`)\n\n")
        f.write("| metric | value |\n|---|---|\n")
        for k, v in results.items():
            if not isinstance(v, (list, dict)):
                f.write(f"| {k} | {v:.6g} |\n" if isinstance(v, float) else f"| {k} | {v} |\n")
        f.write("\n")
    with open(os.path.join(workdir, f"eval_{task}.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, sort_keys=True, default=str)
    return results


__all__ = ["LoadedRun", "TASKS", "evaluate_workdir", "load_run"]
