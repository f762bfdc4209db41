"""Optuna driving `aejax.fit`: a pruning callback on fit's per-epoch hook (docs/tuning.md).

    pruning = PruningCallback(trial, "val/mse")
    summary = aejax.fit(config, workdir, on_epoch=pruning)
    pruning.check_pruned()          # raises optuna.TrialPruned when the pruner stopped the run
    return summary["val/mse"]

After each validated epoch the callback reports the monitored value of that epoch's record to the trial
(`trial.report(value, epoch)`: the step is the 1-based epoch) and asks `trial.should_prune()`; True stops
the run there (status "stopped" in summary.json, its checkpoint kept), and `check_pruned()` raises
`optuna.TrialPruned` once `fit` has returned, as optuna-integration's Keras and Lightning callbacks do
(raising inside the loop would leave the run without its summary). Optuna is optional:
`pip install "aejax[tune]"`. For Optuna as the sampler of a whole population, see `aejax sweep --sampler
tpe` (aejax.tune.rounds).
"""

from __future__ import annotations

import math
from typing import Any

from aejax.errors import ConfigError
from aejax.tune.rounds import require_optuna


class PruningCallback:
    """`fit(..., on_epoch=PruningCallback(trial, "val/mse"))`: reports `monitor` at each validated epoch and
    stops the run when the study's pruner says so; `check_pruned()` then raises optuna.TrialPruned."""

    def __init__(self, trial, monitor: str = "val/mse"):
        require_optuna("the pruning callback")
        self.trial, self.monitor = trial, monitor
        self.pruned_at: int | None = None
        self.value: float | None = None

    def __call__(self, epoch: int, record: dict[str, Any]) -> bool:
        if self.monitor not in record:
            known = ", ".join(sorted(k for k in record if k not in ("epoch", "step")))
            raise ConfigError(f"PruningCallback monitors {self.monitor!r}, which the epoch's record does not hold; "
                              f"it has {known}.")
        self.value = float(record[self.monitor])
        # Optuna's pruners treat NaN as the worst value; an infinite one is reported as NaN too
        self.trial.report(self.value if math.isfinite(self.value) else float("nan"), epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            return True
        return False

    def check_pruned(self) -> None:
        """Raises optuna.TrialPruned when the pruner stopped the run (call it after `fit` returned)."""
        if self.pruned_at is not None:
            import optuna

            raise optuna.TrialPruned(f"pruned at epoch {self.pruned_at} ({self.monitor} = {self.value:.6g})")


__all__ = ["PruningCallback"]
