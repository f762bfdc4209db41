"""Metric logging: line-atomic `metrics.jsonl` plus optional TensorBoard events; atomic file writes; progress bars."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any


def _clean(value: Any) -> Any:
    value = float(value) if not isinstance(value, (int, str)) else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep them readable
    return value


def write_atomically(path: str | os.PathLike, text: str, *, durable: bool = False) -> None:
    """`text` into `path` through a temporary file and a rename: a kill leaves the old file or the new one (with
    `durable`, fsynced first: a machine crash too)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def progress_bar(enabled: bool, *, total: int, initial: int = 0, unit: str):
    """A tqdm bar on stderr (a no-op object when not `enabled`): the loop's over epochs, a sweep's over runs."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit=unit, dynamic_ncols=True, file=sys.stderr, disable=not enabled)


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """Reads `metrics.jsonl`, skipping a torn last line left by a crash."""
    records = []
    if not os.path.exists(path):
        return records
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return records


class MetricsWriter:
    """Appends one JSON object per line, each flushed to the operating system as it is written (a killed
    process loses none), and fsynced to disk by `sync` (the loop calls it beside every checkpoint, so the
    records up to a checkpoint survive a machine crash too, without a disk flush every epoch).

    Records past `resume_step` (and a torn last line) are dropped by an atomic rewrite: a resumed run never
    duplicates lines. A `tracker` (`aejax.train.tracking.MlflowRun`) receives every record too.
    """

    def __init__(self, workdir: str | os.PathLike, *, resume_step: int = 0, tensorboard: bool = True,
                 tracker: Any = None):
        self.path = os.path.join(workdir, "metrics.jsonl")
        kept = [r for r in read_metrics(self.path) if int(r.get("step", 0)) <= resume_step]
        write_atomically(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept), durable=True)
        self._file = open(self.path, "a", encoding="utf-8")
        self._tracker = tracker
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=resume_step + 1)

    def write(self, record: dict[str, Any], *, extra_scalars: dict[str, float] | None = None) -> None:
        """Appends `record` (must hold "step"); `extra_scalars` go to TensorBoard only."""
        clean = {k: _clean(v) for k, v in record.items()}
        self._file.write(json.dumps(clean, sort_keys=True) + "\n")
        self._file.flush()
        if self._tb is not None:
            step = int(record["step"])
            for k, v in {**record, **(extra_scalars or {})}.items():
                if k not in ("step", "epoch") and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, step)
        if self._tracker is not None:
            self._tracker.log_record(record)

    def sync(self) -> None:
        """Everything written so far on disk (metrics.jsonl fsynced, TensorBoard's events flushed)."""
        os.fsync(self._file.fileno())
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        self.sync()
        self._file.close()
        if self._tb is not None:
            self._tb.close()


class NullWriter:
    """Stands in for MetricsWriter on processes that do not write (all but process 0 of a multi-host run)."""

    def write(self, record: dict[str, Any], *, extra_scalars: dict[str, float] | None = None) -> None:
        del record, extra_scalars

    def sync(self) -> None:
        pass

    close = sync
