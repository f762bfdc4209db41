"""Nothing recompiles per epoch: fit, a resume and an evaluation compile each program once.

Every step the library builds (`make_train_step`) is wrapped here in `chex.assert_max_traces(n=1)`:
a fit, or a resume, that traces its step a second time (an epoch program built again, or
re-specialised per epoch) fails at that trace. JAX's compile log (`jax_log_compiles`) names every
XLA compilation; a program that a resume over 3 more epochs (restore, epochs, validation,
checkpoints, final evaluation) compiles more than once may not compile more often than in the
2-epoch fit it continues, run before it in the same process. (A program compiled once only on the
resume path, such as an eager op of the restore that earlier tests in the process did not warm, is
not a per-epoch compile.) A program rebuilt or re-specialised every epoch (a Python int epoch as a
static argument, a jit built inside the loop) traces and compiles once per epoch and fails both.
"""

import collections
import contextlib
import logging
import re
import sys

import chex
import jax
import jax.numpy as jnp
import pytest
from conftest import digits_config

import aejax.train.step as step_module
from aejax.evaluate import load_run
from aejax.train.fit import fit
from aejax.train.step import epoch_body, make_eval_fn

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


@contextlib.contextmanager
def steps_traced_at_most_once():
    """`make_train_step`, wherever aejax imported it, returns its step wrapped in
    `chex.assert_max_traces(n=1)`: a second trace raises AssertionError ("traced > 1 times")."""
    original = step_module.make_train_step

    def make_step_traced_once(*args, **kwargs):
        return chex.assert_max_traces(original(*args, **kwargs), n=1)

    users = [module for name, module in list(sys.modules.items())
             if name.startswith("aejax") and getattr(module, "make_train_step", None) is original]
    chex.clear_trace_counter()
    with pytest.MonkeyPatch.context() as patch:
        for module in users:
            patch.setattr(module, "make_train_step", make_step_traced_once)
        yield
    chex.clear_trace_counter()


def _fit_tracing_once(config, workdir, **kwargs):
    """fit, with the counter of step traces started afresh (a new run traces its step once)."""
    chex.clear_trace_counter()
    try:
        return fit(config, workdir, **kwargs), None
    except AssertionError as error:  # chex: the step was traced again
        return None, str(error)


def _config(epochs):
    return digits_config(**{"train.epochs": epochs, "train.checkpoint_every": 2, "train.tensorboard": False})


@pytest.fixture(scope="module")
def counts(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrace")
    with steps_traced_at_most_once():
        with compile_counts() as two:
            # compiles everything once (module-level caches included)
            _, fresh_retraced = _fit_tracing_once(_config(2), str(root / "resumed"))
        with compile_counts() as resumed:
            # restores epoch 2, trains 3, 4, 5
            summary, resume_retraced = _fit_tracing_once(_config(5), str(root / "resumed"), extend=True)
    retraced = {"fit": fresh_retraced, "resume": resume_retraced}
    if fresh_retraced or resume_retraced:  # a fit stopped at its second trace: nothing more to count
        return {"two": two, "resumed": resumed, "first_eval": {}, "second_eval": {}, "steps": None,
                "retraced": retraced}
    loaded = load_run(str(root / "resumed"))
    evaluate = make_eval_fn(loaded.model, batch_size=64)
    val = loaded.dataset.val
    with compile_counts() as first_eval:
        evaluate(loaded.params, val.x, val.y, loaded.hp, jax.random.key(0))
    other_params = jax.tree_util.tree_map(lambda p: p * 0.5, loaded.params)
    with compile_counts() as second_eval:
        evaluate(other_params, val.x, val.y, loaded.hp, jax.random.key(1))
    return {"two": two, "resumed": resumed, "first_eval": first_eval, "second_eval": second_eval,
            "steps": summary["steps"], "retraced": retraced}


def test_a_fit_and_a_resume_trace_the_train_step_once_each(counts):
    """The fixture's two fits ran with every train step under chex.assert_max_traces(n=1)."""
    assert counts["retraced"] == {"fit": None, "resume": None}, counts["retraced"]
    assert counts["steps"] == 5 * 19


def _counting_step(state, batch, key, hp):
    del key
    loss = jnp.mean(batch["x"]) * hp["scale"]
    return {**state, "step": state["step"] + 1}, {"loss": loss}, jnp.isfinite(loss)


def test_the_epoch_program_traces_its_step_once_per_shape():
    """`epoch_body` jitted over epochs given as Python ints and as arrays, and new hp values: one trace;
    a new batch shape (another split size) is a new program, traced once more."""
    chex.clear_trace_counter()
    step = chex.assert_max_traces(_counting_step, n=2)
    epoch = jax.jit(epoch_body(step, num_examples=40, batch_size=8), donate_argnums=(0,))
    x, y = jnp.ones((40, 2, 2, 1)), jnp.zeros(40, jnp.int32)
    state = {"step": jnp.zeros((), jnp.int32)}
    keys = (jax.random.key(0), jax.random.key(1))
    for e in range(4):  # Python ints: an epoch number made static would retrace here
        state, _ = epoch(state, x, y, {"scale": jnp.float32(e)}, *keys, e)
    assert int(state["step"]) == 4 * 5
    other = jax.jit(epoch_body(step, num_examples=24, batch_size=8), donate_argnums=(0,))
    for e in range(3):
        state, _ = other(state, x[:24], y[:24], {"scale": jnp.float32(1.0)}, *keys, e)
    with pytest.raises(AssertionError, match="traced > 2 times"):
        jax.jit(epoch_body(step, num_examples=16, batch_size=8), donate_argnums=(0,))(
            state, x[:16], y[:16], {"scale": jnp.float32(1.0)}, *keys, 0)
    chex.clear_trace_counter()


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
