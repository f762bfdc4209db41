"""Data-parallel training over several devices and over two processes joined by jax.distributed."""

import json
import os
import socket
import subprocess
import sys

import pytest

from aejax.config import get_experiment_config
from aejax.train import fit

from conftest import REPO

SETTINGS = ["--set", "train.epochs=2", "--set", "train.progress=False", "--set", "train.figures=False",
            "--set", "train.tensorboard=False"]


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
    """The same run on this process's single device."""
    config = get_experiment_config("digits_ae", {"train.epochs": 2, "train.progress": False, "train.figures": False,
                                                 "train.tensorboard": False})
    return fit(config, str(tmp_path_factory.mktemp("one") / "run"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_data_parallel_over_eight_devices_equals_one_device(one_device, tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    out = subprocess.run([sys.executable, "-m", "aejax.cli", "train", "digits_ae", "--workdir", str(tmp_path / "dp"),
                          *SETTINGS, "--set", "train.data_parallel=True"], capture_output=True, text=True, cwd=REPO,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "dp" / "summary.json").read_text())
    for key in ("test/mse", "val/mse", "train/loss"):
        assert abs(summary[key] - one_device[key]) <= 1e-5 * one_device[key], key


@pytest.mark.slow
def test_two_processes_train_one_data_parallel_run_like_one_process(one_device, tmp_path):
    port = _free_port()
    command = [sys.executable, "-m", "aejax.cli", "train", "digits_ae", "--workdir", str(tmp_path / "mh"), *SETTINGS,
               "--set", "train.data_parallel=True", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    procs = [subprocess.Popen([*command, "--process-id", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=REPO) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    summary = json.loads((tmp_path / "mh" / "summary.json").read_text())
    for key in ("test/mse", "val/mse", "train/loss"):
        assert abs(summary[key] - one_device[key]) <= 1e-5 * one_device[key], key
    lines = (tmp_path / "mh" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # written once, by process 0
