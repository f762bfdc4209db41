"""aejax: a JAX/Flax research framework for autoencoders.

The Python API in a few names (docs/python.md shows each in use):

    get_experiment_config(name, overrides)  an experiment's complete config ("digits_ae", "fmnist_vae:beta4")
    base_config(kind, net), resolve_config  build a config in code; fill its defaults and apply overrides
    fit(config, workdir)                    train (resumes; returns the summary with "params" and "model")
    run_sweep(experiment, workdir, ...)     many runs, vmapped in groups; results.csv / results.md
    load_run(workdir)                       a trained run back: .model .params .dataset .hp, and
                                            .encode(x) .reconstruct(x) .sample(num) on arrays
    evaluate_workdir(workdir, task, ...)    an evaluation task; writes eval_TASK.json and report.md
    model_from_options(kind, ...)           a model without a config (kinds: aejax.models.KINDS)
    arrays_dataset(x, y, ...)               your own arrays as a Dataset for fit(config, workdir, dataset=...)
"""

__version__ = "0.1.0"

from aejax.config import base_config, get_experiment_config, resolve_config  # noqa: E402
from aejax.data import Dataset, load_dataset  # noqa: E402
from aejax.data.arrays import arrays_dataset  # noqa: E402
from aejax.evaluate import evaluate_workdir, load_run  # noqa: E402
from aejax.models import model_from_options  # noqa: E402
from aejax.sweep import run_sweep  # noqa: E402
from aejax.train import fit, setup_run  # noqa: E402

__all__ = ["Dataset", "arrays_dataset", "base_config", "evaluate_workdir", "fit", "get_experiment_config",
           "load_dataset", "load_run", "model_from_options", "resolve_config", "run_sweep", "setup_run"]
