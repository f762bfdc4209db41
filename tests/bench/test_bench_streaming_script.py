"""scripts/bench_streaming.py builds the loop's two feeds itself: it must keep running as the feeds change."""

import os
import subprocess
import sys

from conftest import REPO


def test_the_streaming_benchmark_runs_and_both_feeds_train_the_same_parameters():
    out = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "bench_streaming.py"), "--experiment",
                          "digits_ae", "--repeats", "1"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| device |" in out.stdout and "| host |" in out.stdout
    assert "same parameters bitwise after 2 epochs: True" in out.stdout
