"""Evaluating an unfinished run: the scored epoch is said, a one-line warning, stale report sections marked."""

import json
import os
import shutil

from aejax.evaluate import evaluate_workdir
from aejax.evaluate.report import mark_stale, mark_stale_sections, scored_epoch, write_report
from aejax.api import fit as api_fit
from aejax.train import fit

from conftest import digits_config


def _stop_after(workdir, epoch):
    """The workdir as a run stopped after `epoch` leaves it: later checkpoints and summary.json gone."""
    for name in os.listdir(workdir / "checkpoints"):
        if name.isdigit() and int(name) > epoch:
            shutil.rmtree(workdir / "checkpoints" / name)
    os.remove(workdir / "summary.json")


def test_an_unfinished_run_is_scored_with_its_epoch_a_warning_and_later_stale_sections(tmp_path, capfd):
    workdir = tmp_path / "run"
    config = digits_config(**{"train.epochs": 4})
    fit(config, str(workdir))
    _stop_after(workdir, 2)
    capfd.readouterr()

    early = evaluate_workdir(str(workdir), "reconstruction")
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"aejax: warning: {workdir} is not a finished run"), err
    assert "epoch 2 of 4, unfinished" in err[0]
    assert early["run/epoch"] == 2 and early["run/train_epochs"] == 4 and early["run/finished"] is False
    assert json.loads((workdir / "eval_reconstruction.json").read_text())["run/epoch"] == 2
    evaluate_workdir(str(workdir), "denoising", max_examples=40, levels={"gaussian": [0.2]})
    capfd.readouterr()
    text = (workdir / "report.md").read_text()
    assert "scored at epoch 2 of 4, unfinished" in text and "Stale" not in text
    assert "| run/epoch |" not in text  # said once, on the Run line

    api_fit(config, str(workdir))  # resumes and finishes; marks what it outdated
    text = (workdir / "report.md").read_text()
    assert text.count("> **Stale:** scored the checkpoint of epoch 2, but the run's newest checkpoint is epoch 4") == 2

    late = evaluate_workdir(str(workdir), "reconstruction")
    assert capfd.readouterr().err == ""  # finished: no warning
    assert late["run/epoch"] == 4 and late["run/finished"] is True
    text = (workdir / "report.md").read_text()
    sections = text.split("<!-- /task -->")
    reconstruction = next(s for s in sections if "## reconstruction" in s)
    denoising = next(s for s in sections if "## denoising" in s)
    assert "Stale" not in reconstruction and "scored at epoch 4 of 4, finished" in reconstruction
    assert text.count("Stale") == 1 and "epoch 2, but the run's newest checkpoint is epoch 4" in denoising


def test_an_extended_run_with_an_old_summary_is_unfinished(tmp_path, capfd):
    """summary.json from the first length does not make a run finished once train.epochs grows."""
    workdir = tmp_path / "run"
    fit(digits_config(**{"train.epochs": 1}), str(workdir))
    config = json.loads((workdir / "config.json").read_text())
    config["train"]["epochs"] = 3  # as `aejax train --extend` records before it trains on
    (workdir / "config.json").write_text(json.dumps(config))
    capfd.readouterr()
    results = evaluate_workdir(str(workdir), "reconstruction")
    assert results["run/finished"] is False and results["run/epoch"] == 1
    assert "epoch 1 of 3, unfinished (training stopped or still running at epoch 1)" in capfd.readouterr().err


def _section(task, epoch, stale_mark=""):
    return (f"<!-- task:{task} -->\n## {task}\n\n{stale_mark}<!-- scored-epoch:{epoch} -->\nCommand: `aejax eval w "
            f"--task {task}`\n\n| metric | value |\n|---|---|\n| test/mse | 0.1 |\n<!-- /task -->\n")


def test_stale_marks_follow_the_scored_epoch_and_older_reports_are_read_from_their_run_line():
    text = "# notes kept by hand\n\n" + _section("a", 3) + "\n" + _section("b", 5)
    marked = mark_stale_sections(text, 5)
    assert marked.startswith("# notes kept by hand\n\n")
    assert marked.count("Stale") == 1 and "## a\n\n> **Stale:** scored the checkpoint of epoch 3" in marked
    assert mark_stale_sections(marked, 5) == marked  # idempotent: one mark, not two
    assert mark_stale_sections(marked, 3).count("Stale") == 1 and "epoch 5, but" in mark_stale_sections(marked, 3)
    assert "Stale" not in mark_stale_sections(text, 3).split("## b")[0]
    old = "<!-- task:a -->\n## a\n\nCommand: `x`\n\nRun: `w` (epoch 7, model kind `undercomplete`)\n\n<!-- /task -->\n"
    assert scored_epoch(old) == 7 and "Stale" in mark_stale_sections(old, 9)
    assert mark_stale_sections("<!-- task:a -->\n## a\n\nno epoch\n<!-- /task -->\n", 9).count("Stale") == 0


def test_write_report_records_the_epoch_and_marks_the_others(tmp_path):
    write_report(str(tmp_path), "a", {"test/mse": 0.2}, command="aejax eval w --task a", epoch=2)
    write_report(str(tmp_path), "b", {"test/mse": 0.1}, command="aejax eval w --task b", epoch=4)
    text = (tmp_path / "report.md").read_text()
    assert "<!-- scored-epoch:2 -->" in text and "<!-- scored-epoch:4 -->" in text
    assert text.count("Stale") == 1 and text.index("Stale") < text.index("## b")
    write_report(str(tmp_path), "a", {"test/mse": 0.2}, command="aejax eval w --task a", epoch=4)
    assert "Stale" not in (tmp_path / "report.md").read_text()
    assert not mark_stale(str(tmp_path), 4) and not mark_stale(str(tmp_path / "none"), 4)


def test_after_training_the_newest_checkpoint_decides_what_is_stale(tmp_path):
    """A stopped resume moves the newest checkpoint too: refresh_after_training reads it from the step directories."""
    from aejax.evaluate.report import newest_checkpoint_epoch, refresh_after_training

    assert newest_checkpoint_epoch(str(tmp_path)) is None and not refresh_after_training(str(tmp_path))
    write_report(str(tmp_path), "a", {"test/mse": 0.2}, command="aejax eval w --task a", epoch=2)
    for name in ("2", "5", "tmp.orbax-checkpoint-tmp-7"):
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
    assert newest_checkpoint_epoch(str(tmp_path)) == 5
    assert refresh_after_training(str(tmp_path))
    assert "scored the checkpoint of epoch 2, but the run's newest checkpoint is epoch 5" in \
        (tmp_path / "report.md").read_text()
