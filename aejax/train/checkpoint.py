"""Checkpoints through orbax: atomic saves that never block training, keep-N, fallback past damaged ones.

`Checkpointer.save` copies the tree to the host and returns: orbax's save (its directories, metadata
and the asynchronous write) runs in a worker thread, one for the process so that orbax never runs two
saves side by side (a population's members save one after another), and the training loop dispatches
its next call at once. Every other call (steps, delete, restore, wait, close) first waits for that save, and a save
that failed raises there. With several processes orbax's save is a collective: it runs on the
calling thread, as orbax's own asynchronous save.

Restores always go against an abstract target (shapes and dtypes only). Before restoring,
the stored tree is compared with the target so that a checkpoint written by a
structurally different configuration fails with the list of mismatching entries rather
than an error from deep inside orbax.

A damaged checkpoint is reported in one line (`damage_reason`: the error's first line without
TensorStore's spec dump). Orbax runs a restore's reads as tasks of a fresh asyncio event loop and
closes that loop as soon as one read fails, while its sibling reads are still in flight; when those
complete, TensorStore calls back into the closed loop ("Event loop is closed" tracebacks) and
asyncio reports their exceptions as never retrieved. Within `_draining_reads` orbax's calls run on
a `_RestoreLoop`: a failed call waits for the tasks it left running and retrieves their exceptions
before the loop is closed, and the closed loop drops the callbacks of reads that were not tasks
(already cancelled, or TensorStore futures awaited by a finished task), so nothing is left to print.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import os
import re
import sys
import threading
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from aejax.errors import CheckpointError

try:  # where orbax runs a synchronous call's coroutine in a fresh event loop (orbax-checkpoint 0.11)
    from orbax.checkpoint._src import asyncio_utils as _orbax_asyncio
except ImportError:  # pragma: no cover - another orbax layout: the filters below still apply
    _orbax_asyncio = None

DRAIN_TIMEOUT_S = 60.0  # how long a failed restore waits for its sibling reads


class _RestoreLoop(asyncio.SelectorEventLoop):
    """The event loop of one orbax call. Once closed it drops the thread-safe callbacks that late
    TensorStore reads deliver (their results were discarded when the call failed) instead of raising
    "Event loop is closed" in TensorStore's thread."""

    def call_soon_threadsafe(self, callback, *args, context=None):
        try:
            return super().call_soon_threadsafe(callback, *args, context=context)
        except RuntimeError:
            if self.is_closed():
                return None
            raise


def _run_sync_draining(coro):
    """orbax's `_run_sync_via_new_loop` on a `_RestoreLoop`; when the coroutine fails, the tasks it leaves
    running (the other reads of a damaged checkpoint) are awaited and their exceptions retrieved before
    the loop closes. Identical on success."""
    loop = _RestoreLoop()
    try:
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(coro)
        except Exception:
            pending = asyncio.all_tasks(loop)
            if pending:
                _, late = loop.run_until_complete(asyncio.wait(pending, timeout=DRAIN_TIMEOUT_S))
                for task in late:
                    task.cancel()
                if late:
                    loop.run_until_complete(asyncio.wait(late, timeout=1.0))
                for task in pending:
                    if task.done() and not task.cancelled():
                        task.exception()  # retrieved: asyncio does not report it at garbage collection
            raise
    finally:
        asyncio.set_event_loop(None)
        loop.close()


_DRAIN_LOCK = threading.Lock()
# The process's one checkpoint-saving thread (an executor starts its thread at the first submit).
_SAVER = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="aejax-checkpoint")


@contextlib.contextmanager
def _draining_reads():
    """Within the block, orbax's synchronous calls drain a failed coroutine's tasks (see the module docstring)."""
    original = getattr(_orbax_asyncio, "_run_sync_via_new_loop", None)
    if original is None:
        yield
        return
    with _DRAIN_LOCK:
        _orbax_asyncio._run_sync_via_new_loop = _run_sync_draining
        try:
            yield
        finally:
            _orbax_asyncio._run_sync_via_new_loop = original


_SPEC_DUMP = re.compile(r"\s*\[(?:tensorstore_spec|source locations)='.*?'\]", re.DOTALL)


def damage_reason(err: BaseException, limit: int = 240) -> str:
    """One line saying why a checkpoint could not be read: the error's first line without TensorStore's
    `[tensorstore_spec='...']` dump; a long chain of "context: cause" clauses keeps its status and last clauses."""
    text = _SPEC_DUMP.sub("", str(err)).strip()
    text = text.splitlines()[0].strip() if text else ""
    if not text:
        return type(err).__name__
    parts = text.split(": ")
    if len(text) > limit and len(parts) > 3:
        text = f"{parts[0]}: ...: " + ": ".join(parts[-2:])
    if len(text) > limit:
        text = text[:limit - 3].rstrip() + "..."
    return text


class _DamagedCheckpointReads(logging.Filter):
    """Drops asyncio's "Task/Future exception was never retrieved" records for tensorstore reads of a damaged
    checkpoint, should a read escape `_draining_reads` (another orbax layout). Nothing else is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        unretrieved = "exception was never retrieved" in message  # asyncio's words for a Task or a Future
        return not (unretrieved and ('Error opening "zarr" driver' in message or "OCDBT database" in message))


logging.getLogger("asyncio").addFilter(_DamagedCheckpointReads())


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
      async_save: `save` returns once the tree is on the host (orbax writes it in a worker thread); `wait()`
        blocks until written.
    """

    def __init__(self, directory: str | os.PathLike, *, keep: int = 3, async_save: bool = True):
        if keep < 1:
            raise CheckpointError(f"train.keep_checkpoints must be >= 1, got {keep}.")
        self.directory = os.path.abspath(directory)
        # several processes: orbax's barriers are named by step, so each directory's (a population member's) get a
        # prefix of their own: members saving the same epoch side by side do not share a barrier
        prefix = hashlib.sha1(self.directory.encode()).hexdigest()[:12] if jax.process_count() > 1 else None
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=async_save, cleanup_tmp_directories=True, create=True,
            multiprocessing_options=ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=prefix))
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_handlers=ocp.StandardCheckpointHandler())
        self._background = async_save and jax.process_count() == 1
        self._saving: concurrent.futures.Future | None = None

    def _settle(self) -> None:
        """Waits for the save the worker runs (re-raising its error)."""
        saving, self._saving = self._saving, None
        if saving is not None:
            saving.result()

    def steps(self) -> list[int]:
        self._settle()
        return sorted(self._manager.all_steps())

    def save(self, step: int, tree: Any) -> None:
        """Saves `tree` as checkpoint `step`; returns once the tree is copied to the host (the next training
        call may donate its device buffers), while orbax writes it in the worker thread."""
        self._settle()
        if not self._background:
            self._manager.save(step, args=ocp.args.StandardSave(tree))
            return
        tree = jax.device_get(tree)
        self._saving = _SAVER.submit(self._manager.save, step, args=ocp.args.StandardSave(tree))

    def delete(self, step: int) -> None:
        """Removes checkpoint `step` (a sweep member ahead of its group after a kill)."""
        self._settle()
        self._manager.delete(step)

    def wait(self) -> None:
        """Blocks until every save is on disk."""
        self._settle()
        self._manager.wait_until_finished()

    def close(self) -> None:
        try:
            self._settle()
        finally:
            self._manager.close()

    def restore(self, step: int, target: Any) -> Any:
        """Restores checkpoint `step` against the shapes and dtypes of `target`."""
        self._settle()
        try:
            with _draining_reads():
                stored = self._manager.item_metadata(step)
            stored_tree = getattr(stored, "tree", stored)
        except Exception as err:  # unreadable metadata: treat as damage
            raise CheckpointError(f"checkpoint {step} in {self.directory} is damaged ({damage_reason(err)})") from err
        problems = structure_mismatches(stored_tree, target)
        if problems:
            raise CheckpointError(
                f"checkpoint {step} in {self.directory} was written by a structurally different configuration ("
                + "; ".join(problems) + "); use a new --workdir or restore the old configuration.")
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
        try:
            with _draining_reads():
                return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as err:
            raise CheckpointError(f"checkpoint {step} in {self.directory} is damaged ({damage_reason(err)})") from err

    def restore_latest(self, target: Any, *, steps=None, warn=None) -> tuple[int, Any] | None:
        """Restores the newest readable checkpoint (among `steps`, default all); damaged newer ones are
        reported and skipped.

        Returns (step, tree), or None when there is no checkpoint. A structural mismatch is
        raised, not skipped: an older checkpoint of the same run would mismatch too.
        """
        warn = warn or (lambda message: print(f"aejax: warning: {message}", file=sys.stderr, flush=True))
        steps = self.steps() if steps is None else sorted(steps)
        for step in reversed(steps):
            try:
                return step, self.restore(step, target)
            except CheckpointError as err:
                if "structurally different" in str(err):
                    raise
                warn(f"{err}; falling back to the previous checkpoint.")
        if steps:
            raise CheckpointError(f"every checkpoint in {self.directory} ({steps}) is damaged; "
                                  "delete the directory to start afresh.")
        return None
