import json
import subprocess
import sys

import pytest

from conftest import REPO

QUICK = ["--set", "train.epochs=2", "--set", "train.progress=False"]


def aejax(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "aejax.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_train_end_to_end_then_resume_then_eval(tmp_path):
    workdir = tmp_path / "run"
    out = aejax("train", "digits_ae", "--workdir", str(workdir), *QUICK, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert f"aejax: workdir     {workdir}" in out.stdout and "reconstructions.png" in out.stdout
    summary = json.loads((workdir / "summary.json").read_text())
    assert 0 < summary["test/mse"] < 0.1 and summary["steps"] == 2 * 19
    for name in ("config.json", "metrics.jsonl", "checkpoints", "figures/curves.png"):
        assert (workdir / name).exists()
    again = aejax("train", "digits_ae", "--workdir", str(workdir), *QUICK, cwd=REPO)
    assert again.returncode == 0 and "resuming from epoch 2" in again.stdout
    assert len((workdir / "metrics.jsonl").read_text().splitlines()) == 2
    ev = aejax("eval", str(workdir), "--task", "reconstruction")
    assert ev.returncode == 0, ev.stderr
    assert "test/pca16_mse" in ev.stdout and "## reconstruction" in (workdir / "report.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["train", "no_such_experiment"], "no experiment 'no_such_experiment'"),
    (["train", "digits_ae", "--set", "model.code_sise=4"], "did you mean 'model.code_size'"),
    (["train", "digits_ae", "--set", "model.code_size=100"], "narrower than its input"),
    (["eval", "/nonexistent", "--task", "reconstruction"], "has no config.json"),
    (["eval", "/nonexistent", "--task", "nope"], "unknown evaluation task"),
    # options are checked against the task's signature before anything loads (no config.json error)
    (["eval", "/nonexistent", "--task", "likelihood", "--option", "num_sample=10"],
     "task 'likelihood' has no option 'num_sample'; did you mean 'num_samples'?"),
    (["eval", "/nonexistent", "--task", "likelihood", "--option", "num_samples=many"],
     "option 'num_samples' of task 'likelihood' takes int, got 'many'"),
    (["eval", "/nonexistent", "--task", "generation", "--option", "seed=3"], "has no option 'seed'"),
    (["train", "digits_vae", "--set", "hp.sigmaa=0.1"], "did you mean 'hp.sigma'"),
    (["train", "fmnist_vae:beta5"], "unknown variant 'beta5'"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    out = aejax(*args, "--workdir", str(tmp_path / "w")) if args[0] == "train" else aejax(*args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len([line for line in out.stderr.splitlines() if line.startswith("aejax: error")]) == 1
