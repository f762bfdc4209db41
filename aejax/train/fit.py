"""`fit(config, workdir)`: a config -> trained params, metrics, checkpoints, figures, summary.

A run alone is a population of one: `setup_run` (aejax.train.setup) builds it from the config and
`train_population` (aejax.train.loop, the one training loop) trains it with the single run's
programs, then evaluates every split and writes summary.json and the figures.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from aejax import platform
from aejax.config import resolve_config
from aejax.data import Dataset
from aejax.errors import ConfigError
from aejax.train.hooks import EpochFn, EpochHook
from aejax.train.loop import FigureHook, Scheduler, StopRequested, check_run_identity, train_population
from aejax.train.setup import setup_run


def fit(config: ml_collections.ConfigDict, workdir: str, *, dataset: Dataset | None = None,
        extend: bool = False, figures: FigureHook | None = None, on_epoch: EpochFn | None = None,
        scheduler: Scheduler | None = None) -> dict[str, Any]:
    """Trains the configured model in `workdir`, resuming from its newest good checkpoint.

    Writes config.json, metrics.jsonl, tensorboard/, checkpoints/ and summary.json, and with
    `figures` (`aejax.viz.training_figures`: `aejax.fit` and `aejax train` pass it) figures/*.png. Returns
    the summary dict (flat `split/metric` keys and timings) with the final "params" and the "model" added.
    A workdir holds one configuration: a different one is a ConfigError before anything is written, except
    more epochs with `extend=True` (recorded in history.jsonl). Raises NonFiniteError when a loss or gradient
    goes non-finite (unless train.skip_nonfinite; failed.json names the step and the terms, the last good
    checkpoint is kept), StopRequested after SIGTERM/SIGINT (a checkpoint is saved first).

    `on_epoch(epoch, record)` is called after each validated epoch with its metrics record (the
    metrics.jsonl line, train/* and val/*); True stops the run there: status "stopped" in the summary,
    its checkpoint kept (`aejax.train.hooks.EpochHook`). `scheduler` is any loop `Scheduler` instead.
    """
    config = resolve_config(config)  # once: setup_run takes it as it is
    extension = check_run_identity(config, workdir, extend=extend)  # before the data loads: a refusal costs nothing
    platform.ensure_deterministic(config.train.deterministic)
    run = setup_run(config, dataset=dataset, resolved=True)  # everything is checked here, before any compile
    if on_epoch is not None:
        if scheduler is not None:
            raise ConfigError("give fit either on_epoch= or scheduler=, not both.")
        scheduler = EpochHook(on_epoch, eval_every=run.train.eval_every, epochs=run.train.epochs)
    (summary,) = train_population([run], [workdir], runs_axis=False, extend=extend, figures=figures,
                                  scheduler=scheduler, extensions=[extension])
    if "failed" in summary:
        raise summary["failed"]
    return summary


__all__ = ["StopRequested", "check_run_identity", "fit"]
