"""docs/tuning.md's Optuna example, run as written (4 epochs, 4 trials through AEJAX_DOCS_EPOCHS/TRIALS): the
planted bad trial is pruned at its first report after the pruner's warm-up, its run stopped with its checkpoint."""

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

pytest.importorskip("optuna")


def test_the_tuning_page_example_runs_and_prunes_the_planted_trial(tmp_path):
    text = open(os.path.join(REPO, "docs", "tuning.md"), encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=600,
                         env={**os.environ, "PYTHONPATH": REPO, "AEJAX_DOCS_EPOCHS": "4", "AEJAX_DOCS_TRIALS": "4"})
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if not line.startswith("aejax:")]
    trials = [line.split() for line in lines if line[:1].isdigit()]
    assert [t[1] for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE"], out.stdout
    assert trials[2] == ["2", "PRUNED", "10", "2"]  # n_warmup_steps=2: the report at epoch 2 is the first judged
    assert all(t[3] == "4" for i, t in enumerate(trials) if i != 2)
    run = tmp_path / "runs" / "digits_optuna" / "trial_2"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["epochs"] == 2
    assert (run / "checkpoints" / "2").is_dir()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert lines[-1].startswith("best ") and lines[-1].split()[1] != "2"
    # the hook's decisions save no checkpoint (save_at_decisions=False): a finished trial has its last one only
    assert os.listdir(tmp_path / "runs" / "digits_optuna" / "trial_0" / "checkpoints") == ["4"]
