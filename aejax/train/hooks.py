"""A per-epoch hook on the one training loop: `fit(config, workdir, on_epoch=fn)`.

`EpochHook` is a `Scheduler` (aejax.train.loop) of a population of one whose decisions fall on the
validation epochs (`train.eval_every`, and the last epoch): after each validated epoch the loop hands it
that epoch's metrics record (the metrics.jsonl line: epoch, step, train/* and val/*) and asks for a
decision; `fn(epoch, record)` returning True stops the run there, as a search stops a member (status
"stopped" in summary.json, the epoch's checkpoint, records and summary written). A wall-clock
`train.eval_every` has no epochs to fall on, so the hook then decides (and validates) after every epoch.

Each decision epoch ends the device call there; the run's checkpoints still follow train.checkpoint_every
(`save_at_decisions = False`: a checkpoint per decision more than doubled a digits fit), and a run the hook
stops saves its checkpoint at that epoch.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from aejax.config import duration
from aejax.train.loop import Decision

# fn(epoch, record) -> True to stop the run (None or False: train on)
EpochFn = Callable[[int, dict[str, Any]], "bool | None"]


class EpochHook:
    """Calls `fn(epoch, record)` after every validated epoch of a single run; True stops the run."""

    def __init__(self, fn: EpochFn, *, eval_every, epochs: int):
        if not callable(fn):
            raise TypeError(f"on_epoch must be a function fn(epoch, record) -> bool | None, got {fn!r}.")
        self.fn, self.epochs = fn, int(epochs)
        d = duration("train.eval_every", eval_every)
        self.every = 1 if d.unit == "seconds" else max(1, d.epochs(epochs=self.epochs))
        self.records: dict[int, dict[str, Any]] = {}

    save_at_decisions = False  # checkpoints follow train.checkpoint_every (see the module's docstring)

    def next_decision(self, epoch: int) -> int | None:
        end = min((epoch // self.every + 1) * self.every, self.epochs)
        return end if end > epoch else None

    def on_record(self, member: int, record: dict[str, Any]) -> None:
        self.records[member] = record

    def decide(self, end: int, members: Sequence[int], val: dict[str, np.ndarray]) -> Decision:
        keep = []
        for i, m in enumerate(members):
            record = self.records.get(m)
            if record is None or record.get("epoch") != end:  # the loop wrote no record for this epoch
                record = {"epoch": end, **{k: float(np.asarray(v)[i]) for k, v in val.items()}}
            if not self.fn(end, dict(record)):
                keep.append(m)
        return Decision(keep=keep)

    def commit(self, end: int) -> None:
        pass


__all__ = ["EpochFn", "EpochHook"]
