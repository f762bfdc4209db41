"""A damaged checkpoint is one short line: the reason without TensorStore's spec dump, and no asynchronous noise;
a save never blocks the loop."""

import asyncio
import gc
import threading

import pytest

from aejax.train.checkpoint import _RestoreLoop, _run_sync_draining, damage_reason

SPEC = ("[tensorstore_spec='{\\\"context\\\":{\\\"cache_pool\\\":{}},\\\"driver\\\":\\\"zarr\\\",\\\"kvstore\\\":"
        "{\\\"path\\\":\\\"/w/checkpoints/3/default/\\\"}}']")


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


def test_a_closed_restore_loop_drops_late_threadsafe_callbacks():
    """TensorStore completes a read in its own thread with loop.call_soon_threadsafe; after a failed restore
    the loop is closed, and a plain asyncio loop raises "Event loop is closed" there (printed as a traceback)."""
    plain = asyncio.new_event_loop()
    plain.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        plain.call_soon_threadsafe(lambda: None)
    loop = _RestoreLoop()
    loop.close()
    errors = []

    def late_read():
        try:
            loop.call_soon_threadsafe(lambda: None)
        except BaseException as e:  # noqa: BLE001 - anything raised here is the noise
            errors.append(e)

    thread = threading.Thread(target=late_read)
    thread.start()
    thread.join()
    assert errors == []


def test_a_failed_call_waits_for_its_other_reads_and_retrieves_their_errors(caplog):
    finished = []

    async def read(i, delay):
        await asyncio.sleep(delay)
        finished.append(i)
        raise ValueError(f"read {i} failed")

    async def restore():  # orbax's shape: every read gathered, the first failure raised at once
        await asyncio.gather(read(0, 0.0), read(1, 0.05), read(2, 0.1))

    with pytest.raises(ValueError, match="read 0 failed"):
        _run_sync_draining(restore())
    assert sorted(finished) == [0, 1, 2]  # the siblings ran to their end before the loop closed
    gc.collect()  # an unretrieved task exception is logged when the task is collected
    assert "never retrieved" not in caplog.text


def test_a_save_returns_before_orbax_has_saved_and_wait_blocks_until_it_has(tmp_path, monkeypatch):
    import numpy as np

    from aejax.train.checkpoint import Checkpointer

    ckpt = Checkpointer(str(tmp_path / "c"))
    release, started = threading.Event(), threading.Event()
    save = ckpt._manager.save

    def slow_save(*args, **kwargs):  # orbax's save, held until the test releases it
        started.set()
        assert release.wait(60)
        return save(*args, **kwargs)

    monkeypatch.setattr(ckpt._manager, "save", slow_save)
    ckpt.save(1, {"w": np.arange(3.0)})  # returns while orbax's save is held
    assert started.wait(60) and ckpt._saving is not None and not ckpt._saving.done()
    waiter = threading.Thread(target=ckpt.wait)
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # wait() blocks while the save is held
    release.set()
    waiter.join(60)
    assert not waiter.is_alive() and ckpt.steps() == [1]
    np.testing.assert_array_equal(ckpt.restore(1, {"w": np.zeros(3)})["w"], np.arange(3.0))
    ckpt.close()
