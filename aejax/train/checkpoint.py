"""Checkpoints through orbax's asynchronous `CheckpointManager`: atomic saves that do not hold up training,
keep-N, fallback past damaged ones. Only orbax's public API is used.

`Checkpointer.save` returns once the tree is copied off the device (the next training call may donate its
buffers) and orbax writes it in its own background thread; `wait()` blocks until it is on disk. A save first
waits for the previous one of its directory; a population's members (a Checkpointer and a directory each) write
side by side. With several processes (jax.distributed) each call is orbax's collective, made by every process.

A save that cannot be written (a full disk, a read-only directory) is one `CheckpointError` where it surfaces
(the next save, `wait`, `steps`, `delete`, `restore` or `close`): which checkpoint, where, what to do. Its
half-written temporary directory is removed at once, and orbax's own log records of the failure (a traceback
from each of its worker threads) are dropped: the error carries the cause.

Restores go against an abstract target (shapes and dtypes only), compared with the stored tree first: a checkpoint
of a structurally different configuration is a `CheckpointStructureError` listing the mismatching entries.

A damaged checkpoint is reported in one line (`damage_reason`: the error's first line without TensorStore's
spec dump). Orbax runs a restore's reads on an asyncio event loop of its own and closes that loop as soon as
one read fails, while sibling reads are still in flight: when those complete, TensorStore calls back into the
closed loop ("Event loop is closed"), the read coroutines collected later raise or warn, and asyncio logs the
exceptions nobody awaited. Those reports, and only those, are dropped through Python's public hooks
(`sys.unraisablehook`, a logging filter, a warnings filter).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import inspect
import logging
import os
import re
import shutil
import sys
import threading
import traceback
import warnings
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from aejax.errors import CheckpointError, CheckpointStructureError

_SPEC_DUMP = re.compile(r"\s*\[(?:tensorstore_spec|source locations)='.*?'\]", re.DOTALL)
_DETAILS = re.compile(r"\.?\s*See full TensorStore details:.*", re.DOTALL)  # orbax's wrapper of a failed read


def damage_reason(err: BaseException, limit: int = 240) -> str:
    """One line saying why a checkpoint could not be read: the error's first line without TensorStore's
    `[tensorstore_spec='...']` dump (orbax's "See full TensorStore details" wrapper gives way to its cause, which
    names the entry and the status); a long chain of "context: cause" clauses keeps its status and last clauses."""
    if _DETAILS.search(str(err)) and err.__cause__ is not None:
        return damage_reason(err.__cause__, limit)
    text = _DETAILS.sub("", _SPEC_DUMP.sub("", str(err))).strip()
    text = text.splitlines()[0].strip() if text else ""
    if not text:
        return type(err).__name__
    parts = text.split(": ")
    if len(text) > limit and len(parts) > 3:
        text = f"{parts[0]}: ...: " + ": ".join(parts[-2:])
    if len(text) > limit:
        text = text[:limit - 3].rstrip() + "..."
    return text


# How TensorStore (its errors are ValueErrors carrying a status) and the OS say that storage refused a write.
_NO_SPACE = re.compile(r"RESOURCE_EXHAUSTED|No space left|[Qq]uota exceeded")
_STORAGE = re.compile(_NO_SPACE.pattern + r"|PERMISSION_DENIED|Permission denied|Read-only file system|"
                      r"Failed writing|Error writing")


def _causes(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def is_write_failure(err: BaseException, *, out_of_space: bool = False) -> bool:
    """Whether `err` says that storage refused a checkpoint's write (an OSError, or TensorStore's status); with
    `out_of_space`, because it was full."""
    return any((isinstance(e, OSError) and (not out_of_space or e.errno in (errno.ENOSPC, errno.EDQUOT)))
               or (_NO_SPACE if out_of_space else _STORAGE).search(str(e)) for e in _causes(err))


_ORBAX_DIR = os.path.dirname(os.path.abspath(ocp.__file__))
_reading = threading.Event()  # set by the process's first restore: late reads can only follow it
_READ_ERROR = re.compile(r'Error opening "zarr" driver|OCDBT database|See full TensorStore details')


def _not_a_reported_write_failure(record: logging.LogRecord) -> bool:
    """A logging filter: drops orbax's records of a failed checkpoint write (a full disk printed 600 lines)."""
    err = record.exc_info[1] if record.exc_info else None
    return err is None or not os.path.abspath(record.pathname).startswith(_ORBAX_DIR) or not is_write_failure(err)


logging.getLogger("absl").addFilter(_not_a_reported_write_failure)  # orbax logs through absl's logger


# asyncio's words for the exception of a Task or a Future that nobody awaited: when it is collected, or when
# asyncio.run() (older orbax's event loop) cancels the tasks left at its end.
_UNCLAIMED = re.compile(r"exception was never retrieved|unhandled exception during asyncio\.run\(\) shutdown")


def _not_a_damaged_read(record: logging.LogRecord) -> bool:
    """A logging filter: drops asyncio's reports of the reads of a damaged checkpoint a failed restore left running."""
    err = record.exc_info[1] if record.exc_info else None
    return not (err is not None and _UNCLAIMED.search(record.getMessage())
                and any(_READ_ERROR.search(str(e)) for e in _causes(err)))


logging.getLogger("asyncio").addFilter(_not_a_damaged_read)


def _quiet_unraisable(unraisable) -> None:
    """Python's unraisablehook less the aftermath of a failed restore: a RuntimeError raised in asyncio's
    `call_soon_threadsafe` from native code, or one of orbax's read coroutines turning its GeneratorExit (closed
    at garbage collection) into its read error."""
    exc, obj = unraisable.exc_value, unraisable.object
    if inspect.iscoroutine(obj):
        late = (os.path.abspath(obj.cr_code.co_filename).startswith(_ORBAX_DIR)
                and isinstance(exc.__cause__, GeneratorExit))
    else:
        late = (_reading.is_set() and obj is None and isinstance(exc, RuntimeError)
                and str(exc) == "Event loop is closed" and unraisable.exc_traceback is not None
                and traceback.extract_tb(unraisable.exc_traceback)[0].name == "call_soon_threadsafe")
    if not late:
        _previous_unraisablehook(unraisable)


_previous_unraisablehook = sys.unraisablehook
sys.unraisablehook = _quiet_unraisable
# The reads a failed restore never started: their coroutines, collected, warn that they were never awaited. The
# name is orbax's read coroutine's; should it change, the warning shows again and nothing else does.
warnings.filterwarnings("ignore", message=r"coroutine '_read_array_index_and_device_put' was never awaited",
                        category=RuntimeWarning)


def _shapes(tree) -> dict[str, tuple]:
    """{"a/b": shape} of the leaves of `tree` (None entries left out)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)[0]
    return {"/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path):
            tuple(getattr(v, "shape", np.shape(v))) for path, v in leaves if v is not None}


def structure_mismatches(stored_tree, target_tree, limit: int = 8) -> list[str]:
    """Entries whose presence or shape differ between a stored metadata tree and a target."""
    stored, target, problems = _shapes(stored_tree), _shapes(target_tree), []
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
    """Saves and restores the training tree under `directory` (created if missing), one orbax step per epoch,
    keeping the `keep` most recent; without `async_save`, `save` returns once written.
    """

    def __init__(self, directory: str | os.PathLike, *, keep: int = 3, async_save: bool = True):
        if keep < 1:
            raise CheckpointError(f"train.keep_checkpoints must be >= 1, got {keep}.")
        self.directory = os.path.abspath(directory)
        # With several processes every save is a collective whose barriers orbax names by step: each directory (a
        # population member's) gets a prefix of its own, so members saving the same epoch never share a barrier.
        prefix = hashlib.sha1(self.directory.encode()).hexdigest()[:12] if jax.process_count() > 1 else None
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=async_save, cleanup_tmp_directories=True, create=True,
            multiprocessing_options=ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=prefix))
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_handlers=ocp.StandardCheckpointHandler())
        self._writing: int | None = None  # the step orbax may still be writing

    @contextlib.contextmanager
    def _writes(self, step: int | None):
        """A failed write inside is one CheckpointError (other errors pass), with its partial files removed."""
        try:
            yield
        except Exception as err:  # orbax's temporary directories go, then its list of steps is reread
            if jax.process_index() == 0:
                for tmp in ocp.utils.tmp_checkpoints(self.directory):
                    shutil.rmtree(os.fspath(tmp.get()), ignore_errors=True)
            self._manager.reload()
            if not is_write_failure(err):
                raise
            what = f"checkpoint {step}" if step is not None else "a checkpoint"
            todo = ("free space on that disk" if is_write_failure(err, out_of_space=True)
                    else "make sure the directory is writable and has free space")
            raise CheckpointError(f"could not write {what} to {self.directory} ({damage_reason(err)}); {todo} "
                                  "and run the same command to resume from the last checkpoint written.") from err

    def wait(self) -> None:
        """Blocks until every save is on disk; a failure to write the last one raises here."""
        step, self._writing = self._writing, None
        with self._writes(step):
            self._manager.wait_until_finished()

    def steps(self) -> list[int]:
        self.wait()
        return sorted(self._manager.all_steps())

    def save(self, step: int, tree: Any) -> None:
        """Saves `tree` as checkpoint `step` (asynchronously: see the module's docstring)."""
        self.wait()
        with self._writes(step):
            self._manager.save(step, args=ocp.args.StandardSave(tree))
        self._writing = step

    def delete(self, step: int) -> None:
        """Removes checkpoint `step` (a sweep member ahead of its group after a kill)."""
        self.wait()
        self._manager.delete(step)

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._manager.close()

    def restore(self, step: int, target: Any) -> Any:
        """Restores checkpoint `step` against the shapes and dtypes of `target`."""
        self.wait()
        _reading.set()
        try:
            stored = self._manager.item_metadata(step)
        except Exception as err:  # unreadable metadata: treat as damage
            raise CheckpointError(f"checkpoint {step} in {self.directory} is damaged ({damage_reason(err)})") from err
        problems = structure_mismatches(getattr(stored, "tree", stored), target)
        if problems:
            raise CheckpointStructureError(
                f"checkpoint {step} in {self.directory} was written by a structurally different configuration ("
                + "; ".join(problems) + "); use a new --workdir or restore the old configuration.")
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
        try:
            return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as err:
            raise CheckpointError(f"checkpoint {step} in {self.directory} is damaged ({damage_reason(err)})") from err

    def restore_latest(self, target: Any, *, steps=None, warn=None) -> tuple[int, Any] | None:
        """(step, tree) of the newest readable checkpoint (among `steps`, default all), or None when there is none;
        damaged newer ones are reported (one line each through `warn`) and skipped. A CheckpointStructureError is
        raised, not skipped: an older checkpoint of the same run would mismatch too."""
        warn = warn or (lambda message: print(f"aejax: warning: {message}", file=sys.stderr, flush=True))
        steps = self.steps() if steps is None else sorted(steps)
        for step in reversed(steps):
            try:
                return step, self.restore(step, target)
            except CheckpointStructureError:
                raise
            except CheckpointError as err:
                warn(f"{err}; falling back to the previous checkpoint.")
        if steps:
            raise CheckpointError(f"every checkpoint in {self.directory} ({steps}) is damaged; "
                                  "delete the directory to start afresh.")
        return None
