import json
import os
import shutil

import jax
import numpy as np

from aejax.evaluate import load_run
from aejax.train import fit
from aejax.train.metrics import read_metrics

from conftest import digits_config


def _params(workdir):
    return jax.tree_util.tree_leaves(load_run(workdir).params)


def test_same_seed_gives_identical_metrics_and_outputs(tmp_path):
    fit(digits_config(), str(tmp_path / "a"))
    fit(digits_config(), str(tmp_path / "b"))
    a = (tmp_path / "a" / "metrics.jsonl").read_text()
    assert a == (tmp_path / "b" / "metrics.jsonl").read_text()  # bitwise: every digit of every value
    assert len(a.splitlines()) == 3
    for x, y in zip(_params(tmp_path / "a"), _params(tmp_path / "b")):
        np.testing.assert_array_equal(x, y)
    fit(digits_config(seed=1), str(tmp_path / "c"))
    assert (tmp_path / "c" / "metrics.jsonl").read_text() != a


def test_outputs_and_summary(tmp_path):
    """aejax.fit is the training loop's fit with the figures handed in (train does not import viz)."""
    import aejax

    summary = aejax.fit(digits_config(**{"train.figures": True, "train.tensorboard": True}), str(tmp_path))
    for name in ("config.json", "metrics.jsonl", "summary.json", "figures/reconstructions.png", "figures/curves.png"):
        assert (tmp_path / name).exists(), name
    assert any(f.startswith("events") for f in os.listdir(tmp_path / "tensorboard"))
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["test/mse"] == summary["test/mse"] and on_disk["steps"] == 3 * (1257 // 64)
    assert {"test/mse", "val/mse", "train/mse", "wall_time_s"} <= set(on_disk)
    assert on_disk["status"] == "done" and on_disk["epochs"] == 3 and on_disk["device"] == "cpu: cpu"
    assert on_disk["deterministic"] is True  # XLA's deterministic GPU ops, set by `import aejax`
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[-1]["train/loss"] < records[0]["train/loss"]


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    fit(digits_config(**{"train.epochs": 4}), str(tmp_path / "full"))
    # "interrupted" after 2 epochs: the same workdir continued to 4 epochs
    fit(digits_config(**{"train.epochs": 4, "train.checkpoint_every": 2}), str(tmp_path / "cut"))
    # emulate a kill after epoch 2: keep only what existed then (checkpoint 2, two metrics lines + a torn one)
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(tmp_path / "cut", resumed_dir)
    shutil.rmtree(resumed_dir / "checkpoints" / "4")
    lines = (resumed_dir / "metrics.jsonl").read_text().splitlines(keepends=True)
    (resumed_dir / "metrics.jsonl").write_text("".join(lines[:3]) + lines[3][:10])
    summary = fit(digits_config(**{"train.epochs": 4}), str(resumed_dir))
    assert summary["steps"] == 4 * 19
    for x, y in zip(_params(tmp_path / "full"), _params(resumed_dir)):
        np.testing.assert_array_equal(x, y)
    assert (resumed_dir / "metrics.jsonl").read_text() == (tmp_path / "full" / "metrics.jsonl").read_text()
