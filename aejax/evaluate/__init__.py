"""Tasks that score a trained model, and `evaluate_workdir`, which runs one on a workdir.

Every task is a plain function
`task(model, params, dataset, hp, *, seed, out_dir, **options) -> dict`: no config, no
workdir. Its options are its other keyword-only parameters, with defaults and types;
`check_options` validates `--option KEY=VALUE` against them before anything loads, and
`seed` is always the run's own seed.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import os
import sys
import types
import typing
from typing import Any, Callable, Mapping

from aejax.errors import ConfigError
from aejax.evaluate.run import LoadedRun, load_run

# task name -> "module:function"; modules are imported on first use.
TASKS: dict[str, str] = {
    "reconstruction": "aejax.evaluate.reconstruction:reconstruction_task",
    "denoising": "aejax.evaluate.denoising:denoising_task",
    "sparsity": "aejax.evaluate.sparsity:sparsity_task",
    "likelihood": "aejax.evaluate.likelihood:likelihood_task",
    "generation": "aejax.evaluate.generation:generation_task",
    "anomaly": "aejax.evaluate.anomaly:anomaly_task",
    "representation": "aejax.evaluate.representation:representation_task",
    "compression": "aejax.evaluate.compression:compression_task",
    "inpainting": "aejax.evaluate.inpainting:inpainting_task",
    "mae": "aejax.evaluate.masked:mae_task",
    "colorization": "aejax.evaluate.colorization:colorization_task",
    "faces": "aejax.evaluate.faces:faces_task",
}
# task name -> "module:function" of its form for a sweep's directory (DIR/runs/<run-id>/, no config.json): a
# population of runs scored together, `fn(runs, *, seed, out_dir, **options)`, with the same options as TASKS'.
POPULATION_TASKS: dict[str, str] = {
    "faces": "aejax.evaluate.faces:faces_population_task",
}

_SUPPLIED = ("seed", "out_dir")  # keyword arguments the caller supplies, not options


def task_function(task: str) -> Callable[..., dict]:
    if task not in TASKS:
        close = difflib.get_close_matches(task, list(TASKS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown evaluation task {task!r}; choose one of {sorted(TASKS)}.{hint}")
    module_name, fn_name = TASKS[task].split(":")
    return getattr(importlib.import_module(module_name), fn_name)


def _option_types(annotation) -> tuple[type, ...]:
    """The types an option accepts, from its annotation (`float | None` -> (float, NoneType))."""
    if annotation is inspect.Parameter.empty:
        return ()
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return tuple(t for a in typing.get_args(annotation) for t in _option_types(a))
    if annotation is None:
        return (type(None),)
    if origin is not None:
        return (dict,) if origin in (dict, Mapping, typing.Mapping) or issubclass(origin, Mapping) else (origin,)
    return (annotation,)


def task_options(task: str) -> dict[str, inspect.Parameter]:
    """The task's options: keyword-only parameters other than the ones the caller supplies."""
    signature = inspect.signature(task_function(task), eval_str=True)
    return {name: p for name, p in signature.parameters.items()
            if p.kind is p.KEYWORD_ONLY and name not in _SUPPLIED}


def describe_options(task: str) -> str:
    """`name=default (type), ...` for messages and --help."""
    parts = []
    for name, p in task_options(task).items():
        kinds = "|".join(t.__name__ for t in _option_types(p.annotation) if t is not type(None)) or "value"
        parts.append(f"{name}={p.default!r} ({kinds})")
    return ", ".join(parts)


def option_help(task: str) -> list[str]:
    """One line per option: `name=default (type): meaning`, the meaning from the task's Args: docstring."""
    doc = task_function(task).__doc__ or ""
    meanings: dict[str, str] = {}
    current = None
    for line in doc.splitlines():
        stripped = line.strip()
        head, sep, rest = stripped.partition(":")
        names = [n.strip() for n in head.split(",")]
        if sep and names and all(n.isidentifier() for n in names) and line.startswith("      ") and not line.startswith("        "):
            for n in names:
                meanings[n] = rest.strip()
            current = names
        elif current and line.startswith("        ") and stripped:
            for n in current:
                meanings[n] = f"{meanings[n]} {stripped}".strip()
        elif not stripped:
            current = None
    lines = []
    for name, p in task_options(task).items():
        kinds = "|".join(t.__name__ for t in _option_types(p.annotation) if t is not type(None)) or "value"
        lines.append(f"{name}={p.default!r} ({kinds})" + (f": {meanings[name]}" if name in meanings else ""))
    return lines


def check_options(task: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Validates options against the task's signature; ints are accepted where floats are."""
    known = task_options(task)
    checked = {}
    for name, value in options.items():
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"task {task!r} has no option {name!r}; {hint}its options: {describe_options(task)} "
                              f"(aejax list tasks explains each).")
        allowed = _option_types(known[name].annotation)
        if float in allowed and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        ok = not allowed or any(isinstance(value, t) and not (t is int and isinstance(value, bool))
                                for t in allowed)
        if not ok:
            names = " or ".join(t.__name__ for t in allowed if t is not type(None))
            raise ConfigError(f"option {name!r} of task {task!r} takes {names}, got {value!r}.")
        checked[name] = value
    return checked


def evaluate_workdir(workdir: str, task: str, **options: Any) -> dict[str, Any]:
    """Runs `task` on the run in `workdir` (options checked first), writes eval_TASK.json and its report.md section
    (and logs both into the run's MLflow run when its training was tracked: `train.mlflow=True`).

    The results say which checkpoint was scored: "run/epoch" (its epoch), "run/train_epochs" (the run's
    train.epochs) and "run/finished". An unfinished run (stopped or still training: its newest checkpoint
    is below train.epochs, or summary.json is missing) is scored at its newest checkpoint with a one-line
    warning on stderr; report.md sections scored at another epoch are marked stale.
    """
    fn = task_function(task)
    options = check_options(task, options)
    from aejax.evaluate.oneclass import is_sweep, oneclass_table

    if is_sweep(workdir) and task == "anomaly":  # a sweep's one-class members: the per-class table
        return oneclass_table(workdir, evaluate_workdir, **options)
    if not os.path.isfile(os.path.join(workdir, "config.json")) and os.path.isdir(os.path.join(workdir, "runs")):
        return _evaluate_sweep(workdir, task, options)
    run = load_run(workdir)
    if not run.finished:
        print(f"aejax: warning: {workdir} is not a finished run: scoring its newest checkpoint, {run.status()}; "
              "run the same `aejax train` command to finish it, then evaluate again.", file=sys.stderr, flush=True)
    from aejax.train.tracking import figure_times, log_evaluation

    figures_before = figure_times(workdir)
    results = fn(run.model, run.params, run.dataset, run.hp, seed=run.seed,
                 out_dir=os.path.join(workdir, "figures"), **options)
    results = {**results, "run/epoch": run.epoch, "run/train_epochs": run.train_epochs, "run/finished": run.finished}
    from aejax.evaluate.report import eval_command, write_report

    write_report(workdir, task, results, command=eval_command(workdir, task, options),
                 run_line=f"Run: `{workdir}`, scored at {run.status()}; model kind `{run.model.name}`.",
                 epoch=run.epoch)
    with open(os.path.join(workdir, f"eval_{task}.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, sort_keys=True, default=str)
    log_evaluation(workdir, task, results, figures_before)  # into the run's MLflow run, if training was tracked
    return results


def _evaluate_sweep(workdir: str, task: str, options: dict[str, Any]) -> dict[str, Any]:
    """A population task on a sweep's directory: every run under WORKDIR/runs/ loaded and scored together;
    eval_TASK.json and the report.md section go into WORKDIR."""
    if task not in POPULATION_TASKS:
        raise ConfigError(f"{workdir} is a sweep's directory; task {task!r} scores one run: pass "
                          f"{os.path.join(workdir, 'runs', '<run-id>')}. Tasks that score a sweep: "
                          f"{sorted([*POPULATION_TASKS, 'anomaly'])}.")
    module_name, fn_name = POPULATION_TASKS[task].split(":")
    fn = getattr(importlib.import_module(module_name), fn_name)
    takes = inspect.signature(fn).parameters
    for name in options:
        if name not in takes:
            sweep_options = sorted(k for k, p in takes.items() if p.kind is p.KEYWORD_ONLY and k not in _SUPPLIED)
            raise ConfigError(f"option {name!r} of task {task!r} scores one run; a sweep's directory takes "
                              f"{sweep_options}.")
    run_dirs = sorted(d for d in os.listdir(os.path.join(workdir, "runs"))
                      if os.path.isfile(os.path.join(workdir, "runs", d, "config.json")))
    if not run_dirs:
        raise ConfigError(f"{workdir}/runs holds no run with a config.json; run `aejax sweep` first.")
    runs = [load_run(os.path.join(workdir, "runs", d)) for d in run_dirs]
    unfinished = [r.workdir for r in runs if not r.finished]
    if unfinished:
        print(f"aejax: warning: {len(unfinished)} runs of {workdir} are not finished (e.g. {unfinished[0]}): scoring "
              "their newest checkpoints; run the same `aejax sweep` command to finish them.", file=sys.stderr,
              flush=True)
    results = fn(runs, seed=runs[0].seed, out_dir=os.path.join(workdir, "figures"), **options)
    epochs = sorted({r.epoch for r in runs})
    results = {**results, "run/runs": len(runs), "run/epoch": epochs[-1], "run/finished": not unfinished}
    from aejax.evaluate.report import eval_command, write_report

    write_report(workdir, task, results, command=eval_command(workdir, task, options),
                 run_line=f"Sweep: `{workdir}`, {len(runs)} runs scored at epoch "
                          f"{'/'.join(map(str, epochs))}; model kind `{runs[0].model.name}`.")
    with open(os.path.join(workdir, f"eval_{task}.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, sort_keys=True, default=str)
    return results


__all__ = ["LoadedRun", "POPULATION_TASKS", "TASKS", "check_options", "describe_options", "option_help", "evaluate_workdir",
           "load_run", "task_options"]
