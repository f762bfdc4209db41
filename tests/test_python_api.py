"""docs/python.md's code, run as written (fewer epochs through AEJAX_DOCS_EPOCHS)."""

import os
import re
import subprocess
import sys

from conftest import REPO


def test_the_python_api_page_runs_as_written(tmp_path):
    text = open(os.path.join(REPO, "docs", "python.md"), encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 6
    script = tmp_path / "page.py"
    script.write_text("\n".join(blocks))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=600,
                         env={**os.environ, "AEJAX_DOCS_EPOCHS": "2"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[1].startswith("(5, 8)") and lines[2] == "(16, 8, 8, 1)"
    assert "in-memory arrays" in lines[4]
    assert (tmp_path / "runs" / "api_vae" / "eval_likelihood.json").exists()
    assert (tmp_path / "sweeps" / "api" / "results.csv").exists()
