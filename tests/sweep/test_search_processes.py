"""A search over two processes joined by jax.distributed (each with its own CPU device): one population whose
members are spread over both processes' devices, decisions taken alike by both, files written by process 0;
the same decisions and results as one process."""

import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import REPO

from aejax.sweep import run_sweep
from aejax.sweep.search import SearchOptions

QUIET = {"train.figures": False, "train.tensorboard": False}
SPACE = {"hp.learning_rate": "loguniform(1e-3,3e-2)"}
SEARCHES = {  # (one process's run_sweep arguments, the command line's)
    "halving": (dict(overrides={**QUIET, "train.epochs": 7}, sample=9, sampler="sobol",
                     search=SearchOptions("halving", eta=3, min_epochs=2)),
                ["--sample", "9", "--sampler", "sobol", "--scheduler", "halving", "--eta", "3", "--min-epochs", "2",
                 "--set", "train.epochs=7"]),
    "pbt": (dict(overrides={**QUIET, "train.epochs": 6}, sample=4, sampler="random",
                 search=SearchOptions("pbt", ready_epochs=2, quantile=0.25)),
            ["--sample", "4", "--scheduler", "pbt", "--ready-epochs", "2", "--quantile", "0.25",
             "--set", "train.epochs=6"]),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["halving", "pbt"])
def test_a_search_over_two_processes_equals_one_process(tmp_path, scheduler):
    kwargs, argv = SEARCHES[scheduler]
    one = run_sweep("digits_ae", str(tmp_path / "one"), space=SPACE, progress=False, **kwargs)
    command = [sys.executable, "-m", "aejax.cli", "sweep", "digits_ae", "--workdir", str(tmp_path / "two"),
               "--no-progress", "--space", f"hp.learning_rate={SPACE['hp.learning_rate']}", *argv,
               *[a for k, v in QUIET.items() for a in ("--set", f"{k}={v}")],
               "--coordinator", f"127.0.0.1:{_free_port()}", "--num-processes", "2"]
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    logs = [(tmp_path / f"out{i}.txt", tmp_path / f"err{i}.txt") for i in range(2)]  # files: no pipe to fill
    procs = [subprocess.Popen([*command, "--process-id", str(i)], stdout=open(logs[i][0], "w"),
                              stderr=open(logs[i][1], "w"), cwd=REPO, env=env) for i in range(2)]
    for p in procs:
        p.wait(timeout=600)
    outs = [(out.read_text(), err.read_text()) for out, err in logs]
    for i, (p, (_, err)) in enumerate(zip(procs, outs)):  # both processes' logs, from the start, on a failure
        other = outs[1 - i][1][-3000:]
        assert p.returncode == 0, f"process {i}: {err[:3000]}\n...\n{err[-3000:]}\nprocess {1 - i}: {other}"
    assert "ran 9 runs in 1 groups" in outs[0][0] if scheduler == "halving" else "ran 4 runs in 1 groups" in outs[0][0]
    decisions = [json.loads((tmp_path / d / "search.json").read_text())["decisions"] for d in ("one", "two")]
    assert decisions[0].keys() == decisions[1].keys() and decisions[0]
    for end in decisions[0]:
        for key in decisions[0][end]:  # kept/stopped, or parents/hp/factors
            assert json.dumps(decisions[1][end][key], sort_keys=True) == json.dumps(decisions[0][end][key],
                                                                                      sort_keys=True) or key == "hp"
            if key == "hp":
                for run_id, hp in decisions[0][end][key].items():
                    for name, value in hp.items():
                        assert decisions[1][end][key][run_id][name] == pytest.approx(value, rel=1e-12)
    rows = {r.split(",")[0]: r.split(",") for r in (tmp_path / "two" / "results.csv").read_text().splitlines()[1:]}
    header = (tmp_path / "two" / "results.csv").read_text().splitlines()[0].split(",")
    for row in one["rows"]:
        two = dict(zip(header, rows[row["run_id"]]))
        assert (two["status"], int(two["epochs"])) == (row["status"], row["epochs"]), row["run_id"]
        for metric in ("test/mse", "val/mse", "val/loss"):
            assert float(two[metric]) == pytest.approx(row[metric], rel=1e-5), (row["run_id"], metric)
        lines = (tmp_path / "two" / "runs" / row["run_id"] / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == list(range(1, row["epochs"] + 1))  # trained once
