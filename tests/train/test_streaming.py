"""Training from host memory (data.on_device=False) and from memory-mapped .npy files gives the
on-device run's parameters bitwise; the choice between the feeds; the checks of the memmap source."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import digits_config

from aejax.data import lazy, load_dataset
from aejax.errors import ConfigError, DataError, DatasetNotFoundError
from aejax.train import fit, make_eval_fn
from aejax.train.feed import HostStream, streams_from_host
from aejax.train.setup import setup_run
from aejax.train.step import epoch_batch_indices

SMALL = {"model.kind": "vae", "train.epochs": 2, "model.hidden": (32,)}  # stochastic steps; 19 of 64 an epoch
STREAMED = {"data.on_device": False, "data.stream_chunk_steps": 4}  # chunks of 4, 4, 4, 4 and 3 steps


def _leaves(summary):
    return jax.tree_util.tree_leaves(summary["params"])


def _assert_same_params(a, b):
    leaves_a, leaves_b = _leaves(a), _leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        assert np.array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run on the device and streamed from the host (workdirs and summaries)."""
    root = tmp_path_factory.mktemp("streaming")
    on_device = fit(digits_config(**SMALL), str(root / "on_device"))
    streamed = fit(digits_config(**SMALL, **STREAMED), str(root / "streamed"))
    return root, on_device, streamed


def test_streamed_training_equals_on_device_bitwise(runs):
    root, on_device, streamed = runs
    _assert_same_params(on_device, streamed)
    # same batches, same steps: every train/* and val/* value of every epoch, to the last digit
    assert (root / "streamed" / "metrics.jsonl").read_text() == (root / "on_device" / "metrics.jsonl").read_text()
    assert streamed["test/mse"] == on_device["test/mse"]


def test_streamed_run_resumes_from_a_mid_run_checkpoint(runs):
    root, on_device, _ = runs
    resumed = root / "resumed"
    shutil.copytree(root / "streamed", resumed)  # as if killed after epoch 1: checkpoint 1 and one metrics line
    shutil.rmtree(resumed / "checkpoints" / "2")
    (resumed / "metrics.jsonl").write_text((resumed / "metrics.jsonl").read_text().splitlines(keepends=True)[0])
    summary = fit(digits_config(**SMALL, **STREAMED), str(resumed))
    assert summary["steps"] == 2 * 19
    _assert_same_params(on_device, summary)
    assert (resumed / "metrics.jsonl").read_text() == (root / "on_device" / "metrics.jsonl").read_text()


def test_host_stream_feeds_the_epochs_batches_in_order():
    """Each streamed step sees the batch the on-device epoch would gather, chunk boundaries included."""
    x = np.arange(50, dtype=np.float32).reshape(50, 1, 1, 1)
    y = np.arange(50, dtype=np.int32)

    def step(state, batch, key, hp):
        del key, hp
        return {"step": state["step"] + 1}, {"first": batch["y"][0]}, jnp.isfinite(batch["x"]).all()

    keys = jax.random.split(jax.random.key(3))
    stream = HostStream(step, x, y, {}, data_key=keys[0], loop_key=keys[1], batch_size=8, chunk_steps=4,
                        program=lambda fn, shared=(): fn)  # a run alone; 6 steps an epoch: chunks of 4 and 2
    state, parts, _ = stream({"step": np.int32(0)}, range(1, 3))
    firsts = np.concatenate([np.asarray(m["first"]) for m, _ in parts])
    expected = np.concatenate([np.asarray(epoch_batch_indices(keys[0], e, num_examples=50, batch_size=8))[:, 0]
                               for e in (1, 2)])
    np.testing.assert_array_equal(firsts, expected)
    assert int(state["step"]) == 12 and [len(np.asarray(m["first"])) for m, _ in parts] == [4, 2, 4, 2]


def test_streamed_evaluation_reads_the_split_in_chunks():
    """The host-chunked evaluation gives the same means (summed chunk by chunk) as the one-call one."""
    run = setup_run(digits_config(**SMALL))
    params = run.init_state()["params"]
    x, y = run.dataset.train.x, run.dataset.train.y
    whole = make_eval_fn(run.model, batch_size=100)(params, jax.device_put(x), jax.device_put(y), run.hp,
                                                     jax.random.key(0))
    chunked = make_eval_fn(run.model, batch_size=100, host_chunk_batches=3)(params, x, y, run.hp, jax.random.key(0))
    assert whole.keys() == chunked.keys()
    for k in whole:
        assert chunked[k] == pytest.approx(whole[k], rel=1e-6)


def test_training_split_streams_when_asked_memory_mapped_or_over_the_limit():
    x, y = np.zeros((100, 8, 8, 1), np.float32), np.zeros(100, np.int32)  # 26,000 bytes on the device
    assert not streams_from_host(x, y, on_device=True, bytes_limit=0)  # CPU: no device limit known
    assert streams_from_host(x, y, on_device=False, bytes_limit=0)
    assert streams_from_host(x, y, on_device=True, bytes_limit=25_000)
    assert not streams_from_host(x, y, on_device=True, bytes_limit=26_000)
    run = setup_run(digits_config(**{"data.device_bytes_limit": 10_000}))
    assert run.streams


@pytest.mark.parametrize("override", [{"data.device_bytes_limit": -1}, {"data.stream_chunk_steps": -2}])
def test_bad_feed_options_are_config_errors(override):
    with pytest.raises(ConfigError, match="must be >= 0"):
        setup_run(digits_config(**override))


# -- memory-mapped .npy sources ------------------------------------------------------------------


@pytest.fixture(scope="module")
def npy_files(tmp_path_factory):
    """Digits as uint8 images [N, 8, 8, 1] in x.npy and labels in y.npy."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("mmap")
    bunch = load_digits()
    np.save(root / "x.npy", (bunch.images * 15).astype(np.uint8)[..., None])
    np.save(root / "y.npy", bunch.target.astype(np.int64))
    return f"{root / 'x.npy'},{root / 'y.npy'}"


def test_memory_mapped_split_is_a_view_of_the_file_not_a_copy(npy_files):
    mapped = load_dataset("arrays", path=npy_files, mmap=True)
    in_memory = load_dataset("arrays", path=npy_files)
    train_x = mapped.train.x
    assert isinstance(train_x, lazy.Rows) and not isinstance(train_x, np.ndarray)
    assert isinstance(train_x.source, np.memmap) and train_x.source.dtype == np.uint8  # the file, unread
    assert train_x.shape == in_memory.train.x.shape and len(train_x) == len(in_memory.train)
    np.testing.assert_array_equal(train_x[5:9], in_memory.train.x[5:9])
    np.testing.assert_array_equal(train_x.take([7, 2, 7]), in_memory.train.x[[7, 2, 7]])
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(np.asarray(getattr(mapped, split).x), getattr(in_memory, split).x)
        np.testing.assert_array_equal(getattr(mapped, split).y, getattr(in_memory, split).y)
    assert (mapped.num_classes, mapped.source_hash) == (in_memory.num_classes, in_memory.source_hash)


def test_memory_mapped_training_equals_in_memory_training(npy_files, tmp_path, monkeypatch):
    options = {**SMALL, "train.epochs": 1, "data.name": "arrays", "data.path": npy_files}
    in_memory = fit(digits_config(**options), str(tmp_path / "in_memory"))

    def whole_split_read(self, dtype=None, copy=None):
        raise AssertionError("the memory-mapped training split was read whole")

    monkeypatch.setattr(lazy.Rows, "__array__", whole_split_read)  # loading, checks, training, evaluation: chunks only
    mapped = fit(digits_config(**options, **{"data.mmap": True}), str(tmp_path / "mapped"))
    _assert_same_params(in_memory, mapped)
    assert mapped["data/source_hash"] == in_memory["data/source_hash"]


def _write(tmp_path, x, name="x.npy"):
    np.save(tmp_path / name, x)
    return str(tmp_path / name)


def test_memory_mapped_checks_scan_every_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(lazy, "CHUNK_BYTES", 256)  # 4 images of 8x8 a chunk
    x = np.full((40, 8, 8, 1), 0.5, np.float32)
    x[-1, 3, 3, 0] = np.nan  # in the last chunk
    with pytest.raises(DataError, match="1 NaN or infinite values"):
        load_dataset("arrays", path=_write(tmp_path, x), mmap=True, val_size=5, test_size=5)
    x[-1, 3, 3, 0] = 1.5
    with pytest.raises(DataError, match=r"lie in \[0.5, 1.5\] but float images must lie in \[0, 1\]"):
        load_dataset("arrays", path=_write(tmp_path, x), mmap=True, val_size=5, test_size=5)


def test_memory_mapped_source_rejects_what_it_cannot_map(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_dataset("arrays", path=str(tmp_path / "missing.npy"), mmap=True)
    np.savez(tmp_path / "d.npz", x=np.zeros((20, 8, 8, 1), np.float32))
    with pytest.raises(ConfigError, match="memory-maps .npy files"):
        load_dataset("arrays", path=str(tmp_path / "d.npz"), mmap=True)
    with pytest.raises(DataError, match="set data.mmap=False"):
        load_dataset("arrays", path=_write(tmp_path, np.zeros((20, 5), np.float32)), mmap=True)
    with pytest.raises(DataError, match="float in \\[0, 1\\] or uint8"):
        load_dataset("arrays", path=_write(tmp_path, np.zeros((20, 8, 8, 1), np.int16)), mmap=True)

