"""`fit` and `run_sweep` as the Python API and the command line call them: the training loop's, with the
training figures (`aejax.viz.training_figures`) drawn for each run when `train.figures` is set.

The training layer does not import `aejax.viz` (figures sit above it), so the figures are handed to it
here; `aejax.train.fit` and `aejax.sweep.run_sweep` called directly draw none unless given `figures=`.
"""

from __future__ import annotations

import os
from typing import Any

from aejax.evaluate.report import refresh_after_training
from aejax.evaluate.sizes import size_curve
from aejax.sweep import run_sweep as _run_sweep
from aejax.train import fit as _fit
from aejax.train.distributed import is_primary
from aejax.viz import training_figures


def fit(config, workdir: str, **options: Any) -> dict[str, Any]:
    """`aejax.train.fit(config, workdir, ...)` with the training figures (figures/reconstructions.png, curves.png);
    afterwards (finished or stopped) the sections of an existing report.md scored at an older epoch are
    marked stale (`aejax.evaluate.report.refresh_after_training`)."""
    try:
        return _fit(config, workdir, figures=training_figures, **options)
    finally:
        if is_primary() and os.path.isfile(os.path.join(workdir, "report.md")):
            refresh_after_training(workdir)


def run_sweep(experiment: str, workdir: str, **options: Any) -> dict[str, Any]:
    """`aejax.sweep.run_sweep(experiment, workdir, ...)` with every member's training figures and, for a sweep over
    data.train_examples, the data-size curve (`aejax.evaluate.sizes.size_curve`); afterwards the members'
    report.md sections scored at an older epoch are marked stale, as after `fit`."""
    try:
        out = _run_sweep(experiment, workdir, figures=training_figures, **options)
        if is_primary():  # a sweep over data.train_examples: the data-size curve beside PCA's
            curve = size_curve(workdir)
            if curve is not None:
                out["figures"] = [*out.get("figures", []), curve]
        return out
    finally:
        runs = os.path.join(workdir, "runs")
        for run_id in sorted(os.listdir(runs)) if is_primary() and os.path.isdir(runs) else ():
            if os.path.isfile(os.path.join(runs, run_id, "report.md")):
                refresh_after_training(os.path.join(runs, run_id))


__all__ = ["fit", "run_sweep"]
