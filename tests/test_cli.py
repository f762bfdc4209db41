import json
import os
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
def test_bad_input_is_one_clear_line(tmp_path, capsys, args, message):
    from aejax.cli import main

    code = main([*args, "--workdir", str(tmp_path / "w")] if args[0] == "train" else args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("aejax: error")]) == 1
    assert not (tmp_path / "w").exists()


def test_the_command_line_process_exits_2_with_one_line_and_no_traceback(tmp_path):
    out = aejax("train", "digits_ae", "--workdir", str(tmp_path / "w"), "--set", "model.code_sise=4")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "aejax: error: unknown config key 'model.code_sise'; did you mean 'model.code_size'?"], out.stderr


def test_a_workdir_refuses_another_configuration_and_extend_trains_on(tmp_path):
    from aejax.config import get_experiment_config
    from aejax.errors import ConfigError
    from aejax.train import fit

    quiet = {"train.epochs": 2, "train.progress": False, "train.figures": False, "train.tensorboard": False}
    fit(get_experiment_config("digits_ae", quiet), str(tmp_path))
    before = (tmp_path / "config.json").read_text()
    checkpoints = sorted(os.listdir(tmp_path / "checkpoints"))
    with pytest.raises(ConfigError, match=r"hp.learning_rate: 0.003 there, 0.01 now\); use a new --workdir"):
        fit(get_experiment_config("digits_ae", {**quiet, "hp.learning_rate": 1e-2}), str(tmp_path))
    with pytest.raises(ConfigError, match="--extend to train this run on"):
        fit(get_experiment_config("digits_ae", {**quiet, "train.epochs": 3}), str(tmp_path))
    assert (tmp_path / "config.json").read_text() == before  # untouched, and so are the checkpoints
    assert sorted(os.listdir(tmp_path / "checkpoints")) == checkpoints
    summary = fit(get_experiment_config("digits_ae", {**quiet, "train.epochs": 3}), str(tmp_path), extend=True)
    assert summary["steps"] == 3 * 19
    assert json.loads((tmp_path / "history.jsonl").read_text()) == {"extended": {"train.epochs": [2, 3]}}
    assert json.loads((tmp_path / "config.json").read_text())["train"]["epochs"] == 3


def test_different_overrides_get_different_default_workdirs():
    from aejax.cli import _default_workdir

    assert _default_workdir("digits_ae") == os.path.join("runs", "digits_ae")
    a = _default_workdir("digits_ae", {"hp.learning_rate": 0.01})
    b = _default_workdir("digits_ae", {"hp.learning_rate": 0.001})
    assert a == os.path.join("runs", "digits_ae-learning_rate=0.01") and a != b
    assert _default_workdir("fmnist_vae:beta4") == os.path.join("runs", "fmnist_vae_beta4")
    long = _default_workdir("digits_ae", {f"hp.key{i}": i for i in range(20)})
    assert len(os.path.basename(long)) == len("digits_ae-") + 10


def _mapped(pid: int, library: str) -> bool:
    """Whether process `pid` has mapped a shared library whose path contains `library` (its import is under way)."""
    with open(f"/proc/{pid}/maps", encoding="utf-8") as f:
        return library in f.read()


# Moments of `aejax train` start-up, in order: JAX's extension loading, its MLIR libraries initialising,
# TensorStore (orbax) and scikit-learn importing, then the run set up (config.json written: the data,
# the model, the first compile or the first epochs). Raising KeyboardInterrupt at the first ones used to
# surface as a traceback with exit -2, an ImportError ("Encountered an error while initializing the
# extension", exit 1), an abort (-6) or a crash (-11).
MOMENTS = {"jaxlib loading": "jaxlib/_jax", "MLIR initialising": "_mlir_libs/_mlir", "tensorstore importing":
           "tensorstore/_tensorstore", "scikit-learn importing": "sklearn/", "setting up or compiling": None}


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="finds the moment through /proc/PID/maps")
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigint_while_starting_or_compiling_exits_130_with_one_line(tmp_path, moment):
    """Ctrl-C at any moment of start-up: one "aejax:" line, exit 130, nothing else. The moment is found by
    waiting for it (a library mapped into the process, or config.json written), never by sleeping a fixed time."""
    import signal
    import time

    workdir = tmp_path / "w"
    proc = subprocess.Popen([sys.executable, "-m", "aejax.cli", "train", "digits_ae", "--workdir", str(workdir),
                             "--set", "train.progress=False", "--set", "train.epochs=50"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    library = MOMENTS[moment]
    reached = (lambda pid: _mapped(pid, library)) if library else (lambda pid: (workdir / "config.json").exists())
    deadline = time.monotonic() + 240
    try:
        while not reached(proc.pid):
            assert proc.poll() is None, f"aejax exited before the moment ({moment}): {proc.communicate()}"
            assert time.monotonic() < deadline, f"aejax did not reach the moment ({moment}) in 240 s"
            time.sleep(0.001)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("aejax:")]) == 1, err
    assert len(err.strip().splitlines()) == 1, err


def test_list_shows_experiments_kinds_and_every_tasks_options(capsys):
    from aejax.cli import main
    from aejax.evaluate import TASKS, task_options

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "digits_ae" in out and "fmnist_vae" in out and "variants: beta4, cvae" in out
    assert "sparse" in out and "hp.*: sparsity_weight=0.05" in out
    for task in TASKS:
        assert f"  {task}" in out
        for option in task_options(task):
            assert f"{option}=" in out
    assert "num_samples=1000 (int): k, the importance samples per example" in out


# -- aejax sweep: options that would do nothing, sizes, workdirs: one line, exit 2, the workdir untouched -------

LR_SPACE = ["--space", "hp.learning_rate=loguniform(1e-3,1e-1)", "--sample", "4"]


def _tree_hash(root):
    import hashlib

    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            digest.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


@pytest.mark.parametrize("args, message", [
    (["--seeds", "2", "--eta", "2"], "--eta only acts in a search; add --scheduler halving or drop --eta."),
    (["--seeds", "2", "--min-epochs", "2"], "--min-epochs only acts in a search; add --scheduler halving"),
    (["--seeds", "2", "--quantile", "0.3"], "--quantile only acts in a search; add --scheduler pbt"),
    (["--seeds", "2", "--ready-epochs", "2"], "--ready-epochs only acts in a search; add --scheduler pbt"),
    (["--seeds", "2", "--perturb", "0.5,2"], "--perturb only acts in a search; add --scheduler pbt"),
    (LR_SPACE + ["--scheduler", "pbt", "--eta", "2"], "--eta is an option of --scheduler halving, not of pbt"),
    (LR_SPACE + ["--scheduler", "halving", "--perturb", "0.5,2"], "--perturb is an option of --scheduler pbt, not of"),
    (LR_SPACE + ["--scheduler", "pbt", "--perturb", "-1,2"], "--perturb takes positive factors such as 0.8,1.2, got "
                                                              "-1,2"),
    (LR_SPACE + ["--scheduler", "pbt", "--perturb", "0.8,x"], "--perturb takes factors such as 0.8,1.2, got '0.8,x'"),
    (LR_SPACE + ["--space", "hp.learning_rate=uniform(0,1)"], "--space gives hp.learning_rate twice"),
    (["--seeds", "2", "--sampler", "sobol"], "--sampler sobol only acts with --sample N"),
    (["--space", "hp.learning_rate=loguniform(1e-3,1e-1)", "--sample", "1001"],
     "this sweep has 1,001 runs: it would create 1,001 run directories under"),
    (["--space", "hp.learning_rate=loguniform(1e-3,1e-1)", "--sample", "1000000"], "add --yes to go ahead"),
    (["--space", "hp.learning_rate=loguniform(1e-3,1e-1)", "--sample", "300", "--seeds", "4"], "has 1,200 runs"),
])
def test_sweep_options_that_would_do_nothing_are_one_line_and_write_nothing(tmp_path, capsys, args, message):
    from aejax.cli import main

    workdir = tmp_path / "w"
    workdir.mkdir()
    (workdir / "note.txt").write_text("a file the refusal must leave alone")
    before = _tree_hash(workdir)
    code = main(["sweep", "digits_ae", "--workdir", str(workdir), "--no-progress", "--set", "train.epochs=2", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert _tree_hash(workdir) == before


def test_a_search_under_a_slurm_array_names_the_array_not_a_shard_never_given(tmp_path, capsys, monkeypatch):
    from aejax.cli import main

    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    code = main(["sweep", "digits_ae", "--workdir", str(tmp_path / "w"), "--no-progress", *LR_SPACE,
                 "--scheduler", "halving"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "task 1 of 4 of a SLURM array" in err[0], err
    assert "(no --shard)" not in err[0] and not (tmp_path / "w").exists()


def test_a_sweep_into_a_file_or_an_unwritable_workdir_is_one_line(tmp_path, capsys, monkeypatch):
    import errno
    import tempfile

    from aejax.cli import main

    (tmp_path / "file").write_text("x")
    for workdir, message in [(tmp_path / "file", "is a file, not a directory"),
                             (tmp_path / "file" / "sub", "lies under"),
                             (tmp_path / "file", "is a file, not a sweep's workdir")]:
        argv = ["sweep", str(workdir), "--collect"] if "sweep's" in message else [
            "sweep", "digits_ae", "--workdir", str(workdir), "--seeds", "2", "--no-progress"]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert (tmp_path / "file").read_text() == "x"

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(tempfile, "mkstemp", read_only)  # a read-only mount: the write check's probe fails
    for argv in (["sweep", "digits_ae", "--workdir", str(tmp_path / "ro"), "--seeds", "2", "--no-progress"],
                 ["sweep", str(tmp_path / "ro"), "--collect"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "cannot write to the workdir" in err[0] and "Read-only file system" in err[0], err
    assert os.listdir(tmp_path / "ro") == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through a directory's mode bits")
def test_a_search_or_collect_in_a_read_only_workdir_is_one_line(tmp_path, capsys):
    from aejax.cli import main

    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "sweep.json").write_text("{}")
    os.chmod(tmp_path / "ro", 0o555)
    try:
        for argv in (["sweep", "digits_ae", "--workdir", str(tmp_path / "ro"), *LR_SPACE, "--scheduler", "halving"],
                     ["sweep", str(tmp_path / "ro"), "--collect"]):
            assert main(argv) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and "cannot write to the workdir" in err[0], err
    finally:
        os.chmod(tmp_path / "ro", 0o755)
