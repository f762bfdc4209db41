"""Sweep results that say what trained: PBT's last hp, start and lineage; metric directions; sorted tables with
stopped members marked; figures of every member; MLflow's parent and children."""

import csv
import json

import pytest

from aejax.errors import ConfigError
from aejax.sweep.results import (HIGHER, LOWER, best_run, collect_results, direction, metric_figures, ordered,
                                 parse_select, pbt_history)

POINTS = {"r0": 0.01, "r1": 0.02, "r2": 0.005, "r3": 0.001}
RUNS = {"r0": ("done", 6, 0.010), "r1": ("done", 6, 0.030), "r2": ("stopped", 2, 0.020), "r3": ("done", 6, 0.005),
        "r4": ("failed", None, None)}
# PBT: at epoch 2 r3 takes r0's state and 1.2 x its learning rate; at epoch 4 r0 takes r3's and 0.8 x
DECISIONS = {"2": {"parents": {"r3": "r0"}, "hp": {"r3": {"hp.learning_rate": 0.01 * 1.2}}},
             "4": {"parents": {"r0": "r3"}, "hp": {"r0": {"hp.learning_rate": 0.01 * 1.2 * 0.8}}}}


def _sweep(root, decisions=None, runs=RUNS):
    points = {**POINTS, "r4": 0.04}
    (root / "runs").mkdir(parents=True)
    (root / "sweep.json").write_text(json.dumps({"experiment": "digits_ae", "overrides": {},
                                                 "swept": ["hp.learning_rate"],
                                                 "runs": [{"run_id": i, "point": {"hp.learning_rate": points[i]}}
                                                          for i in runs]}))
    for run_id, (status, epochs, val) in runs.items():
        (root / "runs" / run_id).mkdir()
        if status == "failed":
            (root / "runs" / run_id / "failed.json").write_text(json.dumps({"error": "non-finite"}))
        else:
            (root / "runs" / run_id / "summary.json").write_text(json.dumps(
                {"status": status, "epochs": epochs, "val/mse": val, "test/mse": val * 1.1, "wall_time_s": 1.0}))
            records = [{"epoch": e, "step": 10 * e, "val/mse": val * (1 + 1 / e)} for e in range(1, epochs + 1)]
            (root / "runs" / run_id / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if decisions is not None:
        (root / "search.json").write_text(json.dumps({"options": {}, "decisions": decisions}))
    return root


def _csv(root):
    with open(root / "results.csv", encoding="utf-8") as f:
        return {r["run_id"]: r for r in csv.DictReader(f)}


# -- PBT: what trained ---------------------------------------------------------------------------------

def test_pbt_results_hold_each_members_last_hp_its_start_and_its_lineage(tmp_path):
    root = _sweep(tmp_path / "s", DECISIONS, runs={k: v for k, v in RUNS.items() if k != "r4"})
    out = collect_results(str(root))
    rows = _csv(root)
    # replayed by hand: each member's learning rate after every recorded decision
    assert {i: float(r["hp.learning_rate"]) for i, r in rows.items()} == {
        "r0": 0.01 * 1.2 * 0.8, "r1": 0.02, "r2": 0.005, "r3": 0.01 * 1.2}
    assert {i: float(r["start:hp.learning_rate"]) for i, r in rows.items()} == POINTS
    assert {i: r["lineage"] for i, r in rows.items()} == {"r0": "e4:r3x0.8", "r1": "", "r2": "", "r3": "e2:r0x1.2"}
    assert {i: r["parent"] for i, r in rows.items()} == {"r0": "r3", "r1": "", "r2": "", "r3": "r0"}
    assert out["best"]["run_id"] == "r3" and out["best"]["hp.learning_rate"] == pytest.approx(0.012)


def test_recorded_factors_and_resampled_values_show_in_the_lineage():
    decisions = {2: {"parents": {"b": "a"}, "hp": {"b": {"hp.lr": 0.03, "hp.beta": 2.0}},
                     "factors": {"b": {"hp.beta": 0.5}}}}
    history = pbt_history(decisions, ["a", "b"], [{"hp.lr": 0.01, "hp.beta": 4.0}, {"hp.lr": 0.02, "hp.beta": 1.0}])
    assert history["b"] == {"hp.lr": 0.03, "hp.beta": 2.0, "start:hp.lr": 0.02, "start:hp.beta": 1.0,
                            "lineage": "e2:ax0.5,=0.03"}  # keys sorted: beta multiplied, lr resampled
    assert history["a"]["lineage"] == "" and history["a"]["hp.lr"] == 0.01


def test_the_best_by_line_names_the_hp_the_best_member_ended_with(tmp_path, capsys):
    from aejax.cli import main

    root = _sweep(tmp_path / "s", DECISIONS, runs={k: v for k, v in RUNS.items() if k != "r4"})
    assert main(["sweep", str(root), "--collect"]) == 0
    best = [line for line in capsys.readouterr().out.splitlines() if "best by" in line]
    assert best and "r3 (val/mse = 0.005; at its last epoch hp.learning_rate=0.012 (started at 0.001))" in best[0]


# -- metric directions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("select, lower", [
    ("val/mse", True), ("val/loss", True), ("val/recon", True), ("val/kl", True), ("val/nll", True),
    ("test/eer", True), ("val/disc_loss", True), ("val/input_mse", True),
    ("val/elbo", False), ("test/auroc", False), ("test/psnr", False), ("test/ssim", False),
    ("test/accuracy", False), ("test/rank1", False), ("val/ELBO", False),
    ("val/elbo:min", True), ("val/mse:max", False), ("val/active_dims:max", False), ("val/l0:min", True),
])
def test_metrics_declare_their_direction_and_min_max_override_it(select, lower):
    assert parse_select(select) == (select.partition(":")[0], lower)


@pytest.mark.parametrize("select", ["val/active_dims", "val/l0", "val/kl_weight", "val/dead_fraction"])
def test_a_metric_without_a_known_direction_needs_min_or_max_in_one_line(select):
    with pytest.raises(ConfigError, match=rf"aejax does not know whether higher or lower {select} is better; "
                                          rf"add :min or :max \(--select {select}:min\)") as info:
        parse_select(select)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="METRIC:min / METRIC:max"):
        parse_select(select + ":up")


def test_the_direction_table_has_no_term_on_both_sides():
    assert not HIGHER & LOWER and direction("val/elbo") is False and direction("val/mse") is True


def test_the_best_run_is_chosen_among_finished_runs_only_by_the_metrics_direction():
    rows = [{"run_id": "a", "status": "done", "val/elbo": -90.0, "val/mse": 0.02},
            {"run_id": "b", "status": "done", "val/elbo": -80.0, "val/mse": 0.03},
            {"run_id": "c", "status": "stopped", "val/elbo": -10.0, "val/mse": 0.001},
            {"run_id": "d", "status": "failed"}]
    assert best_run(rows, "val/elbo")["run_id"] == "b"  # higher is better, without :max
    assert best_run(rows, "val/mse")["run_id"] == "a"  # the stopped c is better, but it did not finish
    assert best_run(rows, "val/elbo:min")["run_id"] == "a"


# -- the tables ----------------------------------------------------------------------------------------

def test_results_md_is_sorted_status_first_then_best_first_and_marks_stopped_test_metrics(tmp_path):
    root = _sweep(tmp_path / "s")
    out = collect_results(str(root))
    lines = (root / "results.md").read_text().splitlines()
    table = [line for line in lines[2:] if line.startswith("| r")]
    assert [line.split(" | ")[0][2:] for line in table] == ["r3", "r0", "r1", "r2", "r4"]
    header = lines[0].strip("| ").split(" | ")
    stopped = dict(zip(header, table[3].strip("| ").split(" | ")))
    done = dict(zip(header, table[0].strip("| ").split(" | ")))
    assert stopped["test/mse"] == "0.022*" and stopped["val/mse"] == "0.02" and done["test/mse"] == "0.0055"
    assert any(line.startswith("\\* measured when the search stopped the member") for line in lines)
    rows = _csv(root)
    assert list(rows) == list(RUNS)  # the csv keeps sweep.json's order
    assert [rows[i]["test_at_epoch"] for i in ("r2", "r0", "r4")] == ["2", "6", ""]
    assert [r["run_id"] for r in ordered(out["rows"], "val/mse:max")][:3] == ["r1", "r0", "r3"]


def test_vs_figures_show_every_member_stopped_ones_at_the_epoch_they_reached(tmp_path, monkeypatch):
    import matplotlib.axes

    drawn = []
    real_plot, real_errorbar = matplotlib.axes.Axes.plot, matplotlib.axes.Axes.errorbar
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", lambda self, *a, **k: (drawn.append(("stopped", a[0])),
                                                                              real_plot(self, *a, **k))[1])
    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", lambda self, x, y, **k: (drawn.append(("done", x)),
                                                                                   real_errorbar(self, x, y, **k))[1])
    rows = [{"run_id": i, "status": s, "hp.lr": lr, "val/mse": v} for i, s, lr, v in
            [("a", "done", 0.01, 0.1), ("b", "stopped", 0.02, 0.2), ("c", "stopped", 0.03, 0.3),
             ("d", "failed", 0.5, None)]]
    paths = metric_figures(rows, ["hp.lr"], str(tmp_path))
    assert paths == [str(tmp_path / "figures" / "vs_hp_lr.png")]
    assert ("done", [0.01]) in drawn and ("stopped", (0.02, 0.03)) in drawn
    drawn.clear()  # a halving search's figure when no member finished yet: every stopped one still shows
    assert metric_figures([r for r in rows if r["status"] == "stopped"], ["hp.lr"], str(tmp_path / "b"))
    assert drawn == [("stopped", (0.02, 0.03))]


# -- MLflow: the parent holds the search, the children their status -----------------------------------

def test_mlflow_parent_holds_the_search_options_and_best_metrics_and_children_their_status(tmp_path):
    pytest.importorskip("mlflow")
    from aejax.train.tracking import MlflowRun, start_search_run

    root = _sweep(tmp_path / "s", runs={k: v for k, v in RUNS.items() if k != "r4"})
    uri = str(tmp_path / "mlruns")
    parent = start_search_run(str(root), uri=uri, experiment="t", sweep_experiment="digits_ae",
                              options={"scheduler": "halving", "eta": 3,
                                       "space": {"hp.learning_rate": "loguniform(0.001, 0.1)"}})
    for run_id in POINTS:
        MlflowRun.start(str(root / "runs" / run_id), uri=uri, experiment="t", params={}, parent=parent).finish()
    parent.finish()
    collect_results(str(root))
    run = parent.client.get_run(parent.run_id)
    assert run.data.params["search.scheduler"] == "halving" and run.data.params["search.eta"] == "3"
    assert run.data.params["search.space.hp.learning_rate"] == "loguniform(0.001, 0.1)"
    assert run.data.metrics["best/val/mse"] == pytest.approx(0.005) and run.data.tags["aejax.best_run"] == "r3"
    assert run.data.metrics["runs/done"] == 3 and run.data.metrics["runs/stopped"] == 1
    children = {i: MlflowRun.reopen(str(root / "runs" / i)) for i in POINTS}
    assert {i: c.client.get_run(c.run_id).data.tags["aejax.status"] for i, c in children.items()} == {
        "r0": "done", "r1": "done", "r2": "stopped", "r3": "done"}


def test_tensorboard_hparams_hold_each_members_last_hp_and_its_start(tmp_path, monkeypatch):
    import tensorboardX

    logged = {}
    add = tensorboardX.SummaryWriter.add_hparams
    monkeypatch.setattr(tensorboardX.SummaryWriter, "add_hparams", lambda self, hparams, metrics, name=None, **k: (
        logged.__setitem__(name, hparams), add(self, hparams, metrics, name=name, **k))[1])
    root = _sweep(tmp_path / "s", DECISIONS, runs={k: v for k, v in RUNS.items() if k != "r4"})
    collect_results(str(root))
    assert logged["r0"]["hp.learning_rate"] == pytest.approx(0.0096)
    assert logged["r0"]["start:hp.learning_rate"] == 0.01 and logged["r2"]["status"] == "stopped"
