"""Nothing recompiles per epoch: fit, a resume and an evaluation compile each program once.

JAX's compile log (`jax_log_compiles`) names every XLA compilation; a program that a resume over
3 more epochs (restore, epochs, validation, checkpoints, final evaluation) compiles more than once
may not compile more often than in the 2-epoch fit it continues, run before it in the same
process. (A program compiled once only on the resume path, such as an eager op of the restore
that earlier tests in the process did not warm, is not a per-epoch compile.) A program rebuilt or re-specialised every epoch (a Python int epoch as a
static argument, a jit built inside the loop) compiles once per epoch and fails this.
"""

import collections
import contextlib
import logging
import re

import jax
import pytest
from conftest import digits_config

from aejax.evaluate import load_run
from aejax.train.fit import fit
from aejax.train.step import make_eval_fn

COMPILED = re.compile(r"Finished XLA compilation of (\S+)")


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.counts = collections.Counter()

    def emit(self, record):
        match = COMPILED.search(record.getMessage())
        if match:
            self.counts[match.group(1)] += 1


@contextlib.contextmanager
def compile_counts():
    """Yields a Counter of compilations per program name, filled while the block runs."""
    handler, logger = _Collect(), logging.getLogger("jax")
    previous_level, previous_flag = logger.level, jax.config.jax_log_compiles
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    jax.config.update("jax_log_compiles", True)
    try:
        yield handler.counts
    finally:
        jax.config.update("jax_log_compiles", previous_flag)
        logger.setLevel(previous_level)
        logger.removeHandler(handler)


def _config(epochs):
    return digits_config(**{"train.epochs": epochs, "train.checkpoint_every": 2, "train.tensorboard": False})


@pytest.fixture(scope="module")
def counts(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrace")
    with compile_counts() as two:
        fit(_config(2), str(root / "resumed"))  # compiles everything once (module-level caches included)
    with compile_counts() as resumed:
        summary = fit(_config(5), str(root / "resumed"), extend=True)  # restores epoch 2, trains 3, 4, 5
    loaded = load_run(str(root / "resumed"))
    evaluate = make_eval_fn(loaded.model, batch_size=64)
    val = loaded.dataset.val
    with compile_counts() as first_eval:
        evaluate(loaded.params, val.x, val.y, loaded.hp, jax.random.key(0))
    other_params = jax.tree_util.tree_map(lambda p: p * 0.5, loaded.params)
    with compile_counts() as second_eval:
        evaluate(other_params, val.x, val.y, loaded.hp, jax.random.key(1))
    return {"two": two, "resumed": resumed, "first_eval": first_eval, "second_eval": second_eval,
            "steps": summary["steps"]}


def test_the_compile_log_is_read(counts):
    assert any("epoch" in name for name in counts["resumed"]), counts["resumed"]  # the counter sees the epoch program
    assert counts["first_eval"], "the first evaluation compiles its programs"


def test_a_resume_over_more_epochs_compiles_nothing_more(counts):
    assert counts["steps"] == 5 * 19
    more = {name: (n, counts["two"][name]) for name, n in counts["resumed"].items()
            if n > max(counts["two"][name], 1)}
    assert not more, f"a resume over 3 epochs compiled more often than 2 fresh epochs (resume, fresh): {more}"


def test_evaluating_new_parameters_compiles_nothing(counts):
    assert not counts["second_eval"], f"the second evaluation recompiled: {dict(counts['second_eval'])}"
