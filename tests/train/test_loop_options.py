"""The loop options that cut fit's overhead (validation every N epochs, several epochs per device call,
metrics fetched one call later) change when the host looks, never what is trained: bitwise the same
parameters and the same numbers as the default loop; and they mean the same for a population."""

import json

import jax
import numpy as np
import pytest
from conftest import digits_config

from aejax.errors import ConfigError
from aejax.train import fit
from aejax.train.loop import Cadence
from aejax.train.setup import setup_run

BASE = {"model.kind": "vae", "train.epochs": 4, "model.hidden": (32,)}  # keys matter: a VAE samples
SPARSE = {"train.eval_every": 2, "train.checkpoint_every": 4}  # validation after epochs 2 and 4 only


def _records(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _assert_same_params(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a["params"]), jax.tree_util.tree_leaves(b["params"]), strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    """The loop that looks at every epoch as it ends: validation each epoch, one epoch per call, metrics fetched
    before the next call is dispatched."""
    workdir = tmp_path_factory.mktemp("default")
    return workdir, fit(digits_config(**BASE, **{"train.async_metrics": False}), str(workdir))


def _check_against_default(default, workdir, summary):
    """Same params and final numbers; each epoch's train/* as the default's, val/* only after epochs 2 and 4."""
    base_dir, base = default
    _assert_same_params(base, summary)
    assert {k: v for k, v in summary.items() if "/" in k and not k.startswith("perf/")} == \
        {k: v for k, v in base.items() if "/" in k and not k.startswith("perf/")}
    ours, theirs = _records(workdir), _records(base_dir)
    assert [r["epoch"] for r in ours] == [1, 2, 3, 4]
    for epoch, (a, b) in enumerate(zip(ours, theirs), start=1):
        expected = {k: v for k, v in b.items() if not k.startswith("val/") or epoch % 2 == 0}
        assert a == expected


def test_eval_every_validates_every_n_epochs_and_the_last(default, tmp_path):
    summary = fit(digits_config(**BASE, **SPARSE), str(tmp_path))
    _check_against_default(default, tmp_path, summary)


def test_epochs_per_call_scans_several_epochs_in_one_call(default, tmp_path):
    summary = fit(digits_config(**BASE, **SPARSE, **{"train.epochs_per_call": 2}), str(tmp_path))
    _check_against_default(default, tmp_path, summary)


def test_async_metrics_fetches_a_call_later_with_the_same_numbers_and_is_the_default(default, tmp_path):
    config = digits_config(**BASE, **SPARSE)
    assert config.train.async_metrics is True
    summary = fit(config, str(tmp_path))
    _check_against_default(default, tmp_path, summary)


def test_the_loop_chooses_longer_calls_that_validate_inside_and_change_no_number(tmp_path, monkeypatch):
    """train.epochs_per_call=0 (the default): after two one-epoch calls the loop runs as many epochs per call as fill
    `CALL_SECONDS` (here: at most 3) in one program that validates inside; bitwise the one-epoch loop's run."""
    import aejax.train.loop as loop

    options = {**BASE, "train.epochs": 9, "train.async_metrics": False, "train.checkpoint_every": 100}
    one_by_one = fit(digits_config(**options, **{"train.epochs_per_call": 1}), str(tmp_path / "one"))
    calls = []
    feed = loop.DeviceEpochs.__call__
    monkeypatch.setattr(loop.DeviceEpochs, "__call__", lambda self, state, epochs, due: (
        calls.append((len(epochs), list(due))) or feed(self, state, epochs, due)))
    monkeypatch.setattr(loop, "CALL_SECONDS", 1e6)
    monkeypatch.setattr(loop, "MAX_EPOCHS_PER_CALL", 3)
    monkeypatch.setattr(loop, "COMPILE_PAYBACK", 0.0)
    chosen = fit(digits_config(**options), str(tmp_path / "chosen"))
    assert calls == [(1, [True]), (1, [True]), (3, [True] * 3), (3, [True] * 3), (1, [True])]
    _assert_same_params(one_by_one, chosen)
    assert _records(tmp_path / "chosen") == _records(tmp_path / "one")
    assert {k: v for k, v in chosen.items() if "/" in k and not k.startswith("perf/")} == \
        {k: v for k, v in one_by_one.items() if "/" in k and not k.startswith("perf/")}


def test_cadence_is_every_n_epochs_a_share_of_the_run_or_wall_clock_and_always_the_last():
    every3 = Cadence.of("train.eval_every", 3, total_epochs=10)
    assert [e for e in range(1, 11) if every3.due(e, last=e == 10)] == [3, 6, 9, 10]
    assert [every3.next_end(e) for e in (0, 2, 3, 8)] == [3, 3, 6, 9]
    assert Cadence.of("train.eval_every", "25%", total_epochs=10) == Cadence(epochs=3)  # ceil(2.5)
    clock = Cadence.of("train.checkpoint_every", "2 minutes", total_epochs=10)
    assert clock == Cadence(seconds=120.0) and clock.next_end(4) is None
    assert not clock.due(4, last=False, seconds_since=119.0)
    assert clock.due(4, last=False, seconds_since=120.0) and clock.due(10, last=True)


def test_the_last_epoch_is_validated_when_eval_every_does_not_divide_the_epochs(tmp_path):
    fit(digits_config(**{"train.epochs": 4, "train.eval_every": 3}), str(tmp_path))
    assert [r["epoch"] for r in _records(tmp_path) if "val/mse" in r] == [3, 4]


@pytest.mark.parametrize("override, message", [
    ({"train.eval_every": 0}, "must be a positive duration"), ({"train.epochs_per_call": -1}, "must be >= 0"),
    ({"train.checkpoint_every": "5 parsecs"}, "is not a duration"),
    ({"train.eval_every": "5 minutes"}, "in seconds is not accepted here")])
def test_bad_loop_options_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        setup_run(digits_config(**override))


# -- the same options for a population (a sweep group is the same loop with a run axis) --------------------

POPULATION = {"train.epochs": 6, "train.eval_every": 3, "train.epochs_per_call": 3, "train.progress": False,
              "train.figures": False, "train.tensorboard": False}


@pytest.mark.parametrize("feed", [{}, {"data.on_device": False, "data.stream_chunk_steps": 4}])
def test_a_population_honours_the_loop_options_and_its_members_end_where_they_end_alone(tmp_path, feed):
    from aejax.sweep import run_sweep

    options = {**POPULATION, **feed}
    out = run_sweep("digits_ae", str(tmp_path / "sweep"), overrides=options, seeds=2, progress=False)
    assert out["ran"] == 2 and out["groups"] == 1 and out["failed"] == 0
    alone = fit(digits_config(**{**options, "seed": 1}), str(tmp_path / "alone"))
    member = tmp_path / "sweep" / "runs" / "seed=1"
    assert [r["epoch"] for r in _records(member) if "val/mse" in r] == [3, 6]
    assert [r["epoch"] for r in _records(member)] == [1, 2, 3, 4, 5, 6]
    swept = json.loads((member / "summary.json").read_text())
    assert abs(swept["test/mse"] - alone["test/mse"]) <= 1e-5 * alone["test/mse"]
    for a, b in zip(_records(member), _records(tmp_path / "alone")):  # every epoch's numbers, to float tolerance
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-5), k


def test_the_steady_rate_leaves_out_the_first_call(tmp_path, monkeypatch):
    """perf/steps_per_s is the rate of the calls after the first (whose first run warms up, as the bare scan's
    first epoch does): three one-epoch calls hand the summary the times of the last two."""
    import aejax.train.loop as loop

    handed = []
    write_summary = loop.write_summary
    monkeypatch.setattr(loop, "write_summary", lambda *a, epoch_times, **k: (
        handed.append(list(epoch_times)) or write_summary(*a, epoch_times=epoch_times, **k)))
    summary = fit(digits_config(**{"train.epochs": 3, "train.epochs_per_call": 1}), str(tmp_path))
    assert len(handed) == 1 and len(handed[0]) == 2
    assert summary["perf/steps_per_s"] == pytest.approx(19 * 2 / sum(handed[0]))
