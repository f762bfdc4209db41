"""report.md: one section per task, replaced on re-run, figures inline, long tables summarized."""

import re

from aejax.evaluate.report import eval_command, write_report
from aejax.train.metrics import read_metrics

LEVELS = {"gaussian": (0.1, 0.2, 0.3), "masking": (0.1, 0.25, 0.5), "salt_and_pepper": (0.05, 0.1, 0.2)}


def _denoising_results(workdir, shift=0.0):
    grid = [{"corruption": c, "level": v, "psnr": 30.0 - 10 * v + shift, "ssim": 0.9, "input_psnr": 20.0 - 10 * v,
             "input_ssim": 0.5} for c, levels in LEVELS.items() for v in levels]
    results = {"test/psnr": 28.0 + shift, "test/input_psnr": 18.0, "corruption": "gaussian", "level": 0.2}
    results.update({f"test/{r['corruption']}@{r['level']:g}/psnr": r["psnr"] for r in grid})
    results["grid"] = grid
    results["figures"] = [str(workdir / "figures" / "denoising.png"), str(workdir / "figures" / "denoising_grid.png")]
    return results


def _write(workdir, task, results, **options):
    return write_report(str(workdir), task, results, command=eval_command(str(workdir), task, options))


def test_rerunning_a_task_replaces_its_section(tmp_path):
    _write(tmp_path, "reconstruction", {"test/mse": 0.01, "figures": []})
    _write(tmp_path, "denoising", _denoising_results(tmp_path))
    _write(tmp_path, "denoising", _denoising_results(tmp_path, shift=1.5), max_examples=100)
    text = (tmp_path / "report.md").read_text()
    assert text.count("<!-- task:denoising -->") == 1 and text.count("## denoising") == 1
    assert text.count("<!-- /task -->") == 2 and text.count("## reconstruction") == 1
    assert "| test/psnr | 29.5 |" in text and "| test/psnr | 28 |" not in text  # the new run's numbers
    assert f"`aejax eval {tmp_path} --task denoising --option max_examples=100`" in text
    assert text.index("## reconstruction") < text.index("## denoising")  # order kept


def test_figures_appear_inline_relative_to_the_workdir(tmp_path):
    _write(tmp_path, "denoising", _denoising_results(tmp_path))
    text = (tmp_path / "report.md").read_text()
    assert "![denoising: denoising](figures/denoising.png)" in text
    assert "](figures/denoising_grid.png)" in text and str(tmp_path) + "/figures" not in text


def test_denoising_grid_is_a_corruption_by_level_table(tmp_path):
    _write(tmp_path, "denoising", _denoising_results(tmp_path))
    text = (tmp_path / "report.md").read_text()
    assert "@" not in text  # the 9 per-level metric rows are summarized, not listed
    rows = [line for line in text.splitlines() if re.match(r"\| (gaussian|masking|salt_and_pepper) \|", line)]
    assert [r.split(" | ")[0] for r in rows] == ["| gaussian", "| masking", "| salt_and_pepper"]  # one row each
    assert rows[0] == "| gaussian | 0.1: 29.00 / 19.00 | 0.2: 28.00 / 18.00 | 0.3: 27.00 / 17.00 |"


def test_shared_levels_become_the_column_headers(tmp_path):
    grid = [{"corruption": c, "level": v, "psnr": 25.0, "input_psnr": 20.0} for c in ("gaussian", "masking")
            for v in (0.1, 0.5)]
    _write(tmp_path, "denoising", {"test/psnr": 25.0, "grid": grid, "figures": []})
    text = (tmp_path / "report.md").read_text()
    assert "| corruption | 0.1 | 0.5 |" in text and "| masking | 25.00 / 20.00 | 25.00 / 20.00 |" in text


def test_the_command_line_parses_back_to_the_options():
    import shlex

    from aejax.config import parse_overrides

    options = {"levels": {"masking": (0.5,), "gaussian": [0.1, 0.2]}, "corruption": "gaussian", "max_examples": 100}
    words = shlex.split(eval_command("runs/my run", "denoising", options))
    assert words[:5] == ["aejax", "eval", "runs/my run", "--task", "denoising"]
    assert parse_overrides(words[6::2]) == options


def test_warmup_phases_are_converted_to_epochs_and_drawn(tmp_path, monkeypatch):
    import json

    import matplotlib.axes

    from aejax.viz import figures

    records = [{"epoch": e, "step": 10 * e, "train/loss": 1.0 + e, "val/loss": 1.0, "val/mse": 0.1} for e in (1, 2, 3, 4)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    phases = figures.schedule_phases(records, kl_warmup_steps=25, lr_warmup_steps=5)
    assert phases == [(figures.KL_WARMUP_LABEL, 0.0, 2.5), (figures.LR_WARMUP_LABEL, 0.0, 0.5)]
    assert "KL warm-up: the loss rises as the KL weight grows" == figures.KL_WARMUP_LABEL
    assert figures.schedule_phases(records) == []
    assert figures.schedule_phases(records, kl_warmup_steps=500)[0][2] == 4.0  # clipped to the run's end
    spans = []
    original = matplotlib.axes.Axes.axvspan
    monkeypatch.setattr(matplotlib.axes.Axes, "axvspan",
                        lambda self, a, b, **kw: spans.append((a, b, kw.get("label"))) or original(self, a, b, **kw))
    path = figures.training_curves(read_metrics(tmp_path / "metrics.jsonl"), str(tmp_path / "curves.png"),
                                   kl_warmup_steps=25)
    assert (tmp_path / "curves.png").stat().st_size > 0 and path.endswith("curves.png")
    assert (0.0, 2.5, figures.KL_WARMUP_LABEL) in spans  # shaded and labelled in the legend


def test_a_task_that_does_not_list_its_figure_still_shows_eval_task_png(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "eval_reconstruction.png").write_bytes(b"png")
    _write(tmp_path, "reconstruction", {"test/mse": 0.01})
    assert "](figures/eval_reconstruction.png)" in (tmp_path / "report.md").read_text()
