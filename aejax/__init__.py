"""aejax: a JAX/Flax research framework for autoencoders.

The Python API in a few names (docs/python.md shows each in use):

    get_experiment_config(name, overrides)  an experiment's complete config ("digits_ae", "fmnist_vae:beta4")
    base_config(kind, net), resolve_config  build a config in code; fill its defaults and apply overrides
    fit(config, workdir)                    train (resumes; returns the summary with "params" and "model");
                                            draws the training figures (aejax.api)
    run_sweep(experiment, workdir, ...)     many runs, vmapped in groups; results.csv / results.md
    load_run(workdir)                       a trained run back: .model .params .dataset .hp, and
                                            .encode(x) .reconstruct(x) .sample(num) on arrays
    evaluate_workdir(workdir, task, ...)    an evaluation task; writes eval_TASK.json and report.md
    model_from_options(kind, ...)           a model without a config (kinds: aejax.models.KINDS)
    arrays_dataset(x, y, ...)               your own arrays as a Dataset for fit(config, workdir, dataset=...)
"""

__version__ = "0.1.0"

from aejax import platform as _platform  # noqa: E402

_platform.request_deterministic(True)  # train.deterministic's default, before any JAX backend starts

# The API names are imported on first use (PEP 562), so `import aejax` and the command line start in
# milliseconds and `aejax` reaches its Ctrl-C handling before JAX and the rest load (a Ctrl-C then
# gives one line and exit 130, not a traceback from inside an import).
_API = {
    "fit": "aejax.api", "run_sweep": "aejax.api",
    "base_config": "aejax.config", "get_experiment_config": "aejax.config", "resolve_config": "aejax.config",
    "Dataset": "aejax.data", "load_dataset": "aejax.data", "arrays_dataset": "aejax.data.arrays",
    "evaluate_workdir": "aejax.evaluate", "load_run": "aejax.evaluate",
    "model_from_options": "aejax.models", "setup_run": "aejax.train",
}
_SUBPACKAGES = ("api", "bench", "cli", "config", "data", "durations", "errors", "evaluate", "models", "nets",
                "objectives", "platform", "sweep", "train", "viz")


def __getattr__(name: str):
    import importlib

    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"aejax.{name}")
    raise AttributeError(f"module 'aejax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


__all__ = ["Dataset", "arrays_dataset", "base_config", "evaluate_workdir", "fit", "get_experiment_config",
           "load_dataset", "load_run", "model_from_options", "resolve_config", "run_sweep", "setup_run"]
