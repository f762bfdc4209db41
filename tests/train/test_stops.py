"""Stops, workdirs and checkpoint cadence: a signal's message names the checkpoint it wrote, whenever it lands;
one training per workdir; a workdir that cannot be one is one line; checkpoints by wall-clock time."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, digits_config

import aejax.train.loop as loop
from aejax import platform
from aejax.errors import ConfigError
from aejax.train import StopRequested, fit
from aejax.train.checkpoint import Checkpointer

# only the last epoch (or a stop) saves; one epoch per call, its records written before the next call
QUIET = {"train.epochs": 6, "train.checkpoint_every": 100, "train.epochs_per_call": 1, "train.async_metrics": False}


def _signal_inside(monkeypatch, where: str, signum: int, on_call: int):
    """Sends `signum` to this process from inside the loop's `where` ("dispatch" of a device call or "records"), on its
    `on_call`-th call: the signal lands exactly there, with no timing involved."""
    calls = {"n": 0}

    def hit():
        calls["n"] += 1
        if calls["n"] == on_call:
            os.kill(os.getpid(), signum)

    if where == "dispatch":
        call = loop.DeviceEpochs.__call__

        def signalling(self, *args, **kwargs):
            hit()
            return call(self, *args, **kwargs)

        monkeypatch.setattr(loop.DeviceEpochs, "__call__", signalling)
    else:
        write = loop.MetricsWriter.write

        def signalling(self, record, **kwargs):
            write(self, record, **kwargs)
            hit()

        monkeypatch.setattr(loop.MetricsWriter, "write", signalling)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("whole")
    return fit(digits_config(**QUIET), str(workdir))


@pytest.mark.parametrize("where, signum, on_call", [("dispatch", signal.SIGTERM, 3), ("records", signal.SIGINT, 2),
                                                    ("dispatch", signal.SIGINT, 5)])
def test_a_stop_saves_the_epoch_its_message_names_and_resumes_exactly(tmp_path, monkeypatch, uninterrupted, where,
                                                                       signum, on_call):
    _signal_inside(monkeypatch, where, signum, on_call)
    with pytest.raises(StopRequested) as stop:
        fit(digits_config(**QUIET), str(tmp_path))
    epoch = int(str(stop.value).split("after epoch ")[1].split(";")[0])
    assert f"stopped by signal {int(signum)} after epoch {epoch}; its checkpoint is in" in str(stop.value)
    assert epoch == on_call and Checkpointer(str(tmp_path / "checkpoints")).steps()[-1] == epoch
    monkeypatch.undo()
    resumed = fit(digits_config(**QUIET), str(tmp_path))
    for a, b in zip(loop.jax.tree_util.tree_leaves(resumed["params"]),
                    loop.jax.tree_util.tree_leaves(uninterrupted["params"])):
        np.testing.assert_array_equal(a, b)


def test_checkpoints_by_wall_clock_time(tmp_path, monkeypatch):
    fit(digits_config(**{"train.epochs": 3, "train.checkpoint_every": "1 h"}), str(tmp_path / "hourly"))
    assert Checkpointer(str(tmp_path / "hourly" / "checkpoints")).steps() == [3]  # only the end
    # The loop's clock, read as it decides, advances 8 s per reading: every call ends 8+ s after the last save.
    # (A real clock cannot test this: a device call is dispatched, not finished, when the loop decides.)
    clock = iter(range(0, 10_000, 8))
    monkeypatch.setattr(loop, "time", type("Clock", (), {"perf_counter": staticmethod(lambda: next(clock))}))
    fit(digits_config(**{"train.epochs": 3, "train.checkpoint_every": "5 s"}), str(tmp_path / "often"))
    assert Checkpointer(str(tmp_path / "often" / "checkpoints")).steps() == [1, 2, 3]


def test_one_training_per_workdir_and_a_workdir_that_cannot_be_one_is_one_line(tmp_path):
    with loop.workdir_lock(str(tmp_path / "busy")):
        with pytest.raises(ConfigError, match=rf"{tmp_path / 'busy'} is being trained by aejax process {os.getpid()}"):
            fit(digits_config(), str(tmp_path / "busy"))
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file, not a directory; pass another --workdir"):
        fit(digits_config(), str(tmp_path / "file"))
    with pytest.raises(ConfigError, match="cannot write to the workdir /dev/null/run"):
        fit(digits_config(), "/dev/null/run")


def test_gpu_determinism_is_on_by_default_and_recorded(tmp_path):
    """`import aejax` adds XLA's deterministic-ops flag before any backend starts; config.json and summary.json
    say whether it was in effect; --set train.deterministic=False removes it before the backend starts."""
    # this process imported aejax before its backend started (conftest sets only the host device count)
    assert "--xla_gpu_deterministic_ops=true" in os.environ["XLA_FLAGS"].split() and platform.deterministic_active()
    cli = subprocess.run([sys.executable, "-m", "aejax.cli", "train", "digits_ae", "--workdir", str(tmp_path / "off"),
                          "--set", "train.deterministic=False", "--set", "train.epochs=1", "--set",
                          "train.figures=False", "--set", "train.progress=False"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert cli.returncode == 0, cli.stderr
    assert json.loads((tmp_path / "off" / "summary.json").read_text())["deterministic"] is False
    assert json.loads((tmp_path / "off" / "config.json").read_text())["train"]["deterministic"] is False
