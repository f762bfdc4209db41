"""Checkpoints through orbax's public API: a save never holds up the loop; a full disk, a damaged checkpoint and one
of another configuration are each one short line (and the right exception type); nothing half-written stays."""

import errno
import logging
import os
import shutil
import subprocess
import threading

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from aejax.errors import CheckpointError, CheckpointStructureError
from aejax.train.checkpoint import Checkpointer, damage_reason, is_write_failure

SPEC = ("[tensorstore_spec='{\\\"context\\\":{\\\"cache_pool\\\":{}},\\\"driver\\\":\\\"zarr\\\",\\\"kvstore\\\":"
        "{\\\"path\\\":\\\"/w/checkpoints/3/default/\\\"}}']")
TENSORSTORE_FULL = ('RESOURCE_EXHAUSTED: Error writing "w/0" in OCDBT database at local file "/w/c/2.orbax-checkpoint-'
                    'tmp/default.orbax-checkpoint-tmp/ocdbt.process_0/": Failed to write 503099 bytes to file 11: No '
                    "space left on device [os_error_code='28']")


def test_the_reason_drops_the_spec_dump_and_keeps_the_cause():
    err = ValueError('DATA_LOSS: Error opening "zarr" driver: Error reading "step/.zarray" in OCDBT database at local '
                     'file "/w/checkpoints/3/default/": Error decoding local file "/w/checkpoints/3/default/manifest.'
                     'ocdbt": Error decoding manifest: Length in header (115) does not match actual length (57); at '
                     f'byte 12 {SPEC}\nmore detail on a second line')
    reason = damage_reason(err)
    assert "tensorstore_spec" not in reason and "\n" not in reason and len(reason) <= 240
    assert reason.startswith("DATA_LOSS: ") and reason.endswith("does not match actual length (57); at byte 12")
    assert damage_reason(ValueError("Expecting value: line 1 column 1 (char 0)")) == \
        "Expecting value: line 1 column 1 (char 0)"
    assert damage_reason(KeyError()) == "KeyError"  # no message: the type


def test_orbax_s_read_wrapper_gives_way_to_its_cause():
    """Orbax wraps a failed read in "Encountered error while reading array index ... See full TensorStore details:
    <the whole spec, over many lines>"; the cause names the entry and the status."""
    cause = ValueError('FAILED_PRECONDITION: Error reading "params.w/0.0" in OCDBT database at local file "/w/c/2/'
                       'default/": ZSTD_decompressStream() failed: Unknown frame descriptor; at byte 0')
    try:
        try:
            raise cause
        except ValueError as e:
            raise Exception("Encountered error while reading array index: (slice(0, 16, 1),). See full TensorStore "
                            "details: <bound method spec of TensorStore({\n  'base': {\n    'driver': 'zarr',\n"
                            "})>.") from e
    except Exception as wrapped:  # noqa: BLE001 - the wrapper orbax raises
        reason = damage_reason(wrapped)
    assert reason.startswith("FAILED_PRECONDITION: ") and "ZSTD_decompressStream() failed" in reason
    assert "TensorStore details" not in reason and "\n" not in reason


def _tree(value: float = 1.0):
    return {"w": jnp.full((32, 32), value, jnp.float32), "step": jnp.asarray(3, jnp.int32)}


def _target():
    return {"w": np.zeros((32, 32), np.float32), "step": np.zeros((), np.int32)}


def _on_orbax_commit(monkeypatch, callback):
    """Every Checkpointer made inside the test runs `callback` in orbax's background save thread, after the arrays
    are written and before the checkpoint is committed (orbax's public `AsyncOptions.post_finalization_callback`)."""
    options = ocp.CheckpointManagerOptions
    monkeypatch.setattr(ocp, "CheckpointManagerOptions", lambda **kw: options(
        **kw, async_options=ocp.AsyncOptions(post_finalization_callback=callback)))


def test_a_save_returns_before_orbax_has_written_it_and_wait_blocks_until_it_has(tmp_path, monkeypatch):
    release, started = threading.Event(), threading.Event()

    def held():  # orbax's own background thread, held until the test releases it
        started.set()
        if not release.wait(10):
            raise TimeoutError("never released")

    _on_orbax_commit(monkeypatch, held)
    ckpt = Checkpointer(tmp_path / "c")
    tree = _tree(2.0)
    ckpt.save(1, tree)  # returns while orbax's write is held
    assert started.wait(10) and not release.is_set()
    assert not (tmp_path / "c" / "1").exists()  # not committed yet
    jax.jit(lambda t: jax.tree_util.tree_map(lambda a: a * 0 - 1, t), donate_argnums=0)(tree)  # the next call donates
    waiter = threading.Thread(target=ckpt.wait)
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()  # wait() blocks while the write is held
    release.set()
    waiter.join(60)
    assert not waiter.is_alive() and os.listdir(tmp_path / "c") == ["1"] and ckpt.steps() == [1]
    restored = ckpt.restore(1, _target())
    np.testing.assert_array_equal(restored["w"], np.full((32, 32), 2.0, np.float32))
    ckpt.close()


def test_a_full_disk_is_one_checkpoint_error_and_leaves_nothing_half_written(tmp_path, monkeypatch, caplog):
    full = threading.Event()

    def write_fails():
        if full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")

    _on_orbax_commit(monkeypatch, write_fails)
    ckpt = Checkpointer(tmp_path / "c")
    ckpt.save(1, _tree(1.0))
    ckpt.wait()
    full.set()
    ckpt.save(2, _tree(2.0))  # fails in orbax's background thread
    with pytest.raises(CheckpointError) as err:
        ckpt.wait()
    message = str(err.value)
    assert message.startswith(f"could not write checkpoint 2 to {tmp_path / 'c'} (") and "\n" not in message
    assert "No space left on device" in message and "free space on that disk and run the same command to resume" \
        in message
    assert os.listdir(tmp_path / "c") == ["1"]  # the partial save is gone, not left for the next run
    assert ckpt.steps() == [1] and float(ckpt.restore_latest(_target())[1]["w"][0, 0]) == 1.0
    assert [r.getMessage()[:80] for r in caplog.records if r.levelno >= logging.WARNING] == []  # no orbax tracebacks
    full.clear()  # space was freed: the same save goes through
    ckpt.save(2, _tree(2.0))
    ckpt.close()
    assert Checkpointer(tmp_path / "c").steps() == [1, 2]


def test_an_error_that_is_not_a_failed_write_is_not_reported_as_one(tmp_path, monkeypatch):
    def bug():
        raise TypeError("a bug in a callback")

    _on_orbax_commit(monkeypatch, bug)
    ckpt = Checkpointer(tmp_path / "c")
    ckpt.save(1, _tree())
    with pytest.raises(TypeError, match="a bug in a callback"):
        ckpt.wait()
    assert os.listdir(tmp_path / "c") == []
    assert is_write_failure(ValueError(TENSORSTORE_FULL)) and is_write_failure(PermissionError(13, "denied"))
    assert not is_write_failure(ValueError("DATA_LOSS: Error decoding manifest"))


@pytest.fixture
def tiny_disk(tmp_path):
    """A 512 KiB tmpfs (root only): TensorStore's own full-disk error."""
    where = tmp_path / "tiny"
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(where)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_a_really_full_disk(tiny_disk, caplog):
    ckpt = Checkpointer(tiny_disk / "c")
    ckpt.save(1, _tree())
    ckpt.wait()
    noise = np.random.default_rng(0).random((512, 512), np.float32)  # 1 MiB that does not compress
    ckpt.save(2, {"w": jnp.asarray(noise), "step": jnp.asarray(3, jnp.int32)})
    with pytest.raises(CheckpointError, match=r"could not write checkpoint 2 .*No space left on device.*; free space "
                                              r"on that disk and run the same command to resume"):
        ckpt.wait()
    assert os.listdir(tiny_disk / "c") == ["1"] and ckpt.steps() == [1]
    assert [r.getMessage()[:80] for r in caplog.records if r.levelno >= logging.WARNING] == []
    ckpt.close()


def test_population_members_save_one_after_another_each_in_its_own_directory(tmp_path):
    """A population has one Checkpointer per member; the loop starts their saves one after another, and orbax
    writes them side by side in its background threads."""
    members = [Checkpointer(tmp_path / f"run{r}" / "checkpoints", keep=2) for r in range(4)]
    for epoch in range(1, 5):
        for r, ckpt in enumerate(members):
            ckpt.save(epoch, {"w": jnp.full((32, 32), 10 * r + epoch, jnp.float32),
                              "step": jnp.asarray(epoch, jnp.int32)})
    for ckpt in members:
        ckpt.wait()
    for r, ckpt in enumerate(members):
        assert sorted(os.listdir(ckpt.directory)) == ["3", "4"]  # written, kept 2, no temporary directory left
        restored = ckpt.restore(4, _target())
        assert float(restored["w"][0, 0]) == 10 * r + 4 and int(restored["step"]) == 4
        ckpt.close()


def _two_checkpoints(directory):
    ckpt = Checkpointer(directory)
    for step in (1, 2):
        ckpt.save(step, {"w": np.full(3, float(step), np.float32)})
    ckpt.wait()
    return ckpt


def test_a_structurally_different_checkpoint_is_raised_as_its_type_without_falling_back(tmp_path):
    ckpt = _two_checkpoints(tmp_path / "c")
    warnings = []
    with pytest.raises(CheckpointStructureError) as err:
        ckpt.restore_latest({"w": np.zeros(4, np.float32)}, warn=warnings.append)
    assert isinstance(err.value, CheckpointError)
    assert "checkpoint 2" in str(err.value) and "written by a structurally different configuration" in str(err.value)
    assert "w has shape (3,) in the checkpoint but (4,) here" in str(err.value)
    assert warnings == []  # checkpoint 1 would differ the same way: no fallback
    ckpt.close()


def test_the_fallback_is_decided_by_the_exception_type_not_its_words(tmp_path, monkeypatch):
    ckpt = _two_checkpoints(tmp_path / "c")
    restore = ckpt.restore

    def newest_fails(error):
        def fake(step, target):
            if step == 2:
                raise error
            return restore(step, target)
        return fake

    warnings = []
    monkeypatch.setattr(ckpt, "restore", newest_fails(CheckpointError("checkpoint 2 is damaged (a file that "
                                                                      "mentions structurally different data)")))
    step, tree = ckpt.restore_latest({"w": np.zeros(3, np.float32)}, warn=warnings.append)
    assert step == 1 and float(tree["w"][0]) == 1.0 and len(warnings) == 1
    assert "falling back to the previous checkpoint" in warnings[0]
    monkeypatch.setattr(ckpt, "restore", newest_fails(CheckpointStructureError("checkpoint 2 has other entries")))
    with pytest.raises(CheckpointStructureError):
        ckpt.restore_latest({"w": np.zeros(3, np.float32)}, warn=warnings.append)
    assert len(warnings) == 1
    ckpt.close()


def test_a_damaged_newest_checkpoint_falls_back_with_one_line(tmp_path):
    ckpt = _two_checkpoints(tmp_path / "c")
    for p in (tmp_path / "c" / "2").rglob("*"):
        if p.is_file() and "ocdbt" in str(p):
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    warnings = []
    step, tree = ckpt.restore_latest({"w": np.zeros(3, np.float32)}, warn=warnings.append)
    assert step == 1 and float(tree["w"][0]) == 1.0
    assert len(warnings) == 1 and warnings[0].startswith("checkpoint 2 in ") and "is damaged" in warnings[0]
    ckpt.close()
