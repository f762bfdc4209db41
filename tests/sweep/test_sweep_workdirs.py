"""A sweep's workdir: the results cover every run in it; a re-run may add points but not change the shared
settings (refused before anything is written); bad sweeps are one line; failed members a distinct exit."""

import json

import pytest

from aejax.cli import main
from aejax.errors import ConfigError
from aejax.sweep import run_sweep

QUIET = {"train.epochs": 1, "train.figures": False, "train.tensorboard": False}


def test_adding_points_keeps_every_run_in_the_table_and_other_settings_are_refused(tmp_path):
    workdir = str(tmp_path / "sweep")
    first = run_sweep("digits_ae", workdir, overrides=QUIET, grid=["hp.learning_rate=1e-3,3e-3"], progress=False)
    assert [r["run_id"] for r in first["rows"]] == ["learning_rate=0.001", "learning_rate=0.003"]
    more = run_sweep("digits_ae", workdir, overrides=QUIET, grid=["hp.learning_rate=3e-3,1e-2"], progress=False)
    assert more["ran"] == 1 and more["skipped"] == 1  # 3e-3 was there already
    assert [r["run_id"] for r in more["rows"]] == ["learning_rate=0.001", "learning_rate=0.003", "learning_rate=0.01"]
    assert all(r["status"] == "done" for r in more["rows"])
    before = (tmp_path / "sweep" / "sweep.json").read_text()
    with pytest.raises(ConfigError, match="a re-run may only add points"):
        run_sweep("digits_ae", workdir, overrides={**QUIET, "train.epochs": 2}, grid=["hp.learning_rate=1e-3"],
                  progress=False)
    assert (tmp_path / "sweep" / "sweep.json").read_text() == before  # nothing was written
    shown = run_sweep("digits_ae", workdir, overrides={**QUIET, "train.progress": True}, grid=["hp.learning_rate=1e-3"],
                      progress=False)  # a display-only setting is not a shared setting
    assert shown["ran"] == 0 and len(shown["rows"]) == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"grid": ["seed=0,1"], "seeds": 2}, "the seed is both swept"),
    ({"seeds": 2, "select": "val/msee"}, "--select 'val/msee' names no metric these runs report; did you mean 'val/mse'"),
    ({"seeds": 0}, "--seeds must be a positive count"),
])
def test_bad_sweeps_are_one_clear_error_before_anything_is_written(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        run_sweep("digits_ae", str(tmp_path / "sweep"), overrides=QUIET, progress=False, **kwargs)
    assert not (tmp_path / "sweep" / "sweep.json").exists()


def test_a_failed_member_gives_its_own_exit_status(tmp_path, capsys):
    code = main(["sweep", "digits_ae", "--workdir", str(tmp_path / "sweep"), "--grid", "hp.learning_rate=1e-3,1e38",
                 "--no-progress", *[a for k, v in QUIET.items() for a in ("--set", f"{k}={v}")]])
    out = capsys.readouterr()
    assert code == 4, out.err
    assert "aejax: run learning_rate=1e+38 failed (see " in out.out
    failure = json.loads((tmp_path / "sweep" / "runs" / "learning_rate=1e+38" / "failed.json").read_text())
    assert "non-finite" in failure["error"] and failure["step"] >= 1
