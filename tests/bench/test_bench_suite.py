"""The bench pieces of issue 19: HLO counts, the plain scan beside aejax's bare scan, torch on JAX's device."""

import statistics

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.bench import hlo_counts, load_plain_scan, reference_config
from aejax.bench import suite as suite_module
from aejax.bench.suite import Suite, SuiteOptions


def _text(fn, *args, **kwargs):
    return jax.jit(fn, **kwargs).lower(*args).compile().as_text()


def test_hlo_counts_count_fusions_and_the_ops_a_masking_step_should_not_have():
    x = jnp.arange(12.0).reshape(3, 4)
    plain = hlo_counts(_text(lambda x: jnp.sin(x) * 2 + 1, x))
    assert plain["fusion"] >= 1 and plain["kernels"] >= plain["fusion"]
    assert plain["sort"] == plain["gather"] == plain["scatter"] == 0
    assert hlo_counts(_text(lambda x: jnp.sort(x, axis=1), x))["sort"] == 1
    scatter = hlo_counts(_text(lambda x, i: x.at[i].add(1.0), x, jnp.array([0, 2])))
    assert scatter["scatter"] >= 1


def test_hlo_counts_of_a_loop_body_count_one_iteration():
    def scan(x):
        return jax.lax.scan(lambda c, _: (jnp.tanh(c) * 2.0, c.sum()), x, None, length=7)

    x = jnp.ones((5, 5))
    body = hlo_counts(_text(scan, x), loop_body=True)
    whole = hlo_counts(_text(scan, x))
    assert 1 <= body["fusion"] <= whole["fusion"]


def test_plain_scan_is_a_standalone_flax_optax_program_that_trains():
    plain = load_plain_scan()
    assert plain is not None
    source = open(plain.__file__, encoding="utf-8").read()
    assert "import aejax" not in source and "from aejax" not in source  # written by hand, no aejax inside
    x = np.random.default_rng(0).uniform(size=(64, 16)).astype(np.float32)
    idx = plain.epoch_indices(len(x), 16, 40)
    out = plain.plain_steps_per_s(x, idx, repeats=1, hidden=32, code=4)
    assert out["steps_per_s"] > 0 and out["steps"] == 40 and out["step_fusions"] > 0
    train, _, state = plain.make_plain_scan(x, hidden=32, code=4)
    _, losses = train(state, idx)
    assert float(losses[-1]) < float(losses[0])


@pytest.fixture(scope="module")
def quick_suite():
    return Suite(SuiteOptions(only=("loop", "torch"), quick=True, repeats=1, loop_epochs=2), log=lambda line: None)


def test_plain_section_times_both_scans_and_counts_their_fusions(quick_suite):
    out = quick_suite.plain(32)
    assert out["model_widths"] == "64-512-32" and out["batch_size"] == 32
    assert out["bare_scan_steps_per_s"] > 0 and out["plain_scan_steps_per_s"] > 0
    bare, plain = out["bare_scan_steps_per_s_repeats"], out["plain_scan_steps_per_s_repeats"]
    assert out["turns"] == len(bare) == len(plain) == 5  # five alternating turns per repeat
    assert out["bare_over_plain"] == pytest.approx(statistics.median(b / p for b, p in zip(bare, plain)))
    assert set(out["fusions"]) == {"aejax_step", "plain_step", "aejax_scan_body", "plain_scan_body"}
    assert all(isinstance(n, int) and n > 0 for n in out["fusions"].values())
    assert "fusion instructions" in out["fusions_counted"]


def test_torch_reference_runs_on_jax_device_and_says_why_a_compile_was_not_timed(quick_suite, monkeypatch):
    pytest.importorskip("torch")
    real = suite_module.TorchReference

    def no_compiler(*args, compiled=False, **kwargs):  # stands for a machine where torch.compile fails
        if compiled:
            raise RuntimeError("no C++ compiler")
        return real(*args, **kwargs)

    monkeypatch.setattr(suite_module, "TorchReference", no_compiler)
    out = quick_suite.torch()
    assert out["torch_device_name"] == out["jax_device"] == jax.devices()[0].device_kind
    assert out["torch_on_jax_device"] and out["torch_device"] == ("cpu" if jax.default_backend() == "cpu" else "cuda")
    assert out["torch_steps_per_s"] > 0 and out["bare_scan_over_torch"] > 0
    assert "torch_compile_steps_per_s" not in out and "no C++ compiler" in out["torch_compile_skipped"]
    md = suite_module.markdown({"machine": {"device": "cpu", "backend": "cpu", "device_count": 1, "cpu_model": "x",
                                            "cpu_cores": 2, "jax": "0", "flax": "0", "optax": "0", "torch": "0"},
                                "dataset": "digits", "repeats": 1, "load_average_before": None,
                                "load_average_after": None, "matmul_peak_flops_per_s": 1e9, "total_s": 1.0,
                                "torch": out})
    assert "| PyTorch eager, 1 thread(s) | cpu (torch) |" in md and "torch.compile failed" in md


def test_reference_config_is_the_model_the_plain_scan_mirrors():
    config = reference_config("digits")
    assert tuple(config.model.hidden) == (512,) and config.model.code_size == 32
    assert config.model.activation == "sigmoid" and config.optim.name == "adam"
    assert float(config.hp.learning_rate) == 1e-3 and config.train.batch_size == 128
