"""scripts/reproduce.py: rows are formatted from the outputs' JSON and replace exactly their README row."""

import importlib.util
import json
import os
import sys

import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("reproduce", os.path.join(REPO, "scripts", "reproduce.py"))
reproduce = importlib.util.module_from_spec(spec)
sys.modules["reproduce"] = reproduce  # dataclasses look their module up
spec.loader.exec_module(reproduce)

README = """# x

## Results

| experiment | result | command | hardware, time |
|---|---|---|---|
| digits, MLP AE, code 16 | test MSE 0.9 (old) | `old` | CPU, 1 s |
| something else | kept as is | `x` | H100 |

![figure](f.png)

## Next
"""


def write(root, path, payload):
    os.makedirs(os.path.dirname(root / path), exist_ok=True)
    (root / path).write_text(json.dumps(payload))


def test_no_run_rewrites_the_row_from_the_outputs(tmp_path):
    write(tmp_path, "runs/digits_ae/summary.json", {"test/mse": 0.0054852})
    write(tmp_path, "runs/digits_ae/eval_reconstruction.json", {"test/mse": 0.0054852, "test/pca16_mse": 0.0112646})
    (tmp_path / reproduce.TIMINGS).write_text(json.dumps({"digits_ae": {"seconds": 12.4, "load": 0.5, "device": "CPU (2 cores)"}}))
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert reproduce.main(["--only", "digits_ae", "--no-run", "--root", str(tmp_path), "--readme", str(readme)]) == 0
    lines = readme.read_text().split("\n")
    assert lines[6] == ("| digits, MLP AE, code 16 | test MSE 0.00549 (PCA-16: 0.01126) | `aejax train digits_ae` "
                        "then `aejax eval runs/digits_ae --task reconstruction` | CPU (2 cores), 12 s |")
    assert lines[7] == "| something else | kept as is | `x` | H100 |"  # rows not run stay
    assert readme.read_text().replace(lines[6], "") == README.replace(README.split("\n")[6], "")


def test_a_failing_command_leaves_its_row_and_says_so(tmp_path, monkeypatch, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    failing = reproduce.Entry("digits_ae", "digits, MLP AE, code 16", ("python -c 'raise SystemExit(3)'",),
                              lambda root: "never", ())
    monkeypatch.setattr(reproduce, "ENTRIES", (failing,))
    assert reproduce.main(["--only", "digits_ae", "--root", str(tmp_path), "--readme", str(readme)]) == 1
    assert readme.read_text() == README
    assert "exited with 3; its README row is left as it was" in capsys.readouterr().err


def test_a_row_missing_from_the_table_is_appended_at_its_end():
    new = reproduce.rewrite_results_table(README, {"a new row": "| a new row | 1 | `c` | CPU |"})
    lines = new.split("\n")
    assert lines[8] == "| a new row | 1 | `c` | CPU |" and lines[9] == ""
    assert lines[6].startswith("| digits, MLP AE")


def test_every_entry_names_its_outputs_and_reads_json_only_from_them():
    for entry in reproduce.ENTRIES:
        assert entry.commands and entry.label
        with pytest.raises(FileNotFoundError):  # formats from files the commands write, nothing built in
            entry.result(reproduce.Path("/nonexistent"))


def test_unknown_entry_is_a_clear_error(capsys):
    assert reproduce.main(["--only", "digits_vea"]) == 2
    assert "unknown entries ['digits_vea']" in capsys.readouterr().err
