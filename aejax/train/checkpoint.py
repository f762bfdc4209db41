"""Checkpoints through orbax: atomic async saves, keep-N, fallback past damaged ones.

Restores always go against an abstract target (shapes and dtypes only). Before restoring,
the stored tree is compared with the target so that a checkpoint written by a
structurally different configuration fails with the list of mismatching entries rather
than an error from deep inside orbax.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from aejax.errors import CheckpointError


class _DamagedCheckpointReads(logging.Filter):
    """Drops asyncio's "Task/Future exception was never retrieved" records for tensorstore reads of a damaged
    checkpoint: orbax leaves those read tasks unawaited when a restore fails, after `restore` has
    already raised (and `restore_latest` reported the damage and fell back). Nothing else is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        unretrieved = "exception was never retrieved" in message  # asyncio's words for a Task or a Future
        return not (unretrieved and ('Error opening "zarr" driver' in message or "OCDBT database" in message))


logging.getLogger("asyncio").addFilter(_DamagedCheckpointReads())


def _closed_loop_callback(unraisable) -> bool:
    """True for the RuntimeError("Event loop is closed") that a tensorstore read of a damaged checkpoint
    raises when it completes after orbax closed its event loop: the read's result was already discarded."""
    tb = unraisable.exc_traceback
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return (unraisable.exc_type is RuntimeError and str(unraisable.exc_value) == "Event loop is closed"
            and tb is not None and tb.tb_frame.f_code.co_name == "_check_closed")


def _install_unraisable_filter() -> None:
    previous = sys.unraisablehook

    def hook(unraisable):
        if not _closed_loop_callback(unraisable):
            previous(unraisable)

    sys.unraisablehook = hook


def _path_str(path) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)


def _leaf_signature(leaf) -> tuple:
    shape = tuple(getattr(leaf, "shape", np.shape(leaf)))
    return shape


def structure_mismatches(stored_tree, target_tree, limit: int = 8) -> list[str]:
    """Entries whose presence or shape differ between a stored metadata tree and a target."""
    stored = {_path_str(p): _leaf_signature(v) for p, v in
              jax.tree_util.tree_flatten_with_path(stored_tree, is_leaf=lambda x: x is None)[0] if v is not None}
    target = {_path_str(p): _leaf_signature(v) for p, v in jax.tree_util.tree_flatten_with_path(target_tree)[0]}
    problems = []
    # parameters first: they are what a reader recognises (optimizer entries mirror them)
    for key in sorted(set(stored) | set(target), key=lambda k: (not k.startswith("params"), k)):
        if key not in target:
            problems.append(f"{key} is in the checkpoint but not in this configuration")
        elif key not in stored:
            problems.append(f"{key} is in this configuration but not in the checkpoint")
        elif stored[key] != target[key]:
            problems.append(f"{key} has shape {stored[key]} in the checkpoint but {target[key]} here")
    if len(problems) > limit:
        problems = problems[:limit] + [f"... and {len(problems) - limit} more"]
    return problems


class Checkpointer:
    """Saves and restores the training tree under `directory`, one orbax step per epoch.

    Args:
      directory: where checkpoints live (created if missing).
      keep: how many recent checkpoints to keep.
      async_save: write in a background thread; `wait()` blocks until written.
    """

    def __init__(self, directory: str | os.PathLike, *, keep: int = 3, async_save: bool = True):
        if keep < 1:
            raise CheckpointError(f"train.keep_checkpoints must be >= 1, got {keep}.")
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save,
                                               cleanup_tmp_directories=True, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_handlers=ocp.StandardCheckpointHandler())

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, tree: Any) -> None:
        self._manager.save(step, args=ocp.args.StandardSave(tree))

    def delete(self, step: int) -> None:
        """Removes checkpoint `step` (a sweep member ahead of its group after a kill)."""
        self._manager.delete(step)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()

    def restore(self, step: int, target: Any) -> Any:
        """Restores checkpoint `step` against the shapes and dtypes of `target`."""
        try:
            stored = self._manager.item_metadata(step)
            stored_tree = getattr(stored, "tree", stored)
        except Exception as err:  # unreadable metadata: treat as damage
            raise CheckpointError(f"checkpoint {step} in {self.directory} is damaged: {err}") from err
        problems = structure_mismatches(stored_tree, target)
        if problems:
            raise CheckpointError(
                f"checkpoint {step} in {self.directory} was written by a structurally different configuration ("
                + "; ".join(problems) + "); use a new --workdir or restore the old configuration.")
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
        try:
            return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as err:
            raise CheckpointError(f"checkpoint {step} in {self.directory} is damaged: {err}") from err

    def restore_latest(self, target: Any, *, warn=None) -> tuple[int, Any] | None:
        """Restores the newest readable checkpoint; damaged newer ones are reported and skipped.

        Returns (step, tree), or None when there is no checkpoint. A structural mismatch is
        raised, not skipped: an older checkpoint of the same run would mismatch too.
        """
        warn = warn or (lambda message: print(f"aejax: warning: {message}", file=sys.stderr, flush=True))
        steps = self.steps()
        for step in reversed(steps):
            try:
                return step, self.restore(step, target)
            except CheckpointError as err:
                if "structurally different" in str(err):
                    raise
                _install_unraisable_filter()  # the damaged read's late callbacks are harmless; see above
                warn(f"{err}; falling back to the previous checkpoint.")
        if steps:
            raise CheckpointError(f"every checkpoint in {self.directory} ({steps}) is damaged; "
                                  "delete the directory to start afresh.")
        return None
