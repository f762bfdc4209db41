"""Interpolation maths and the generation task (figures, code moments, conditional-sample accuracy)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aejax.config import get_experiment_config
from aejax.errors import ConfigError
from aejax.evaluate import load_run
from aejax.evaluate.generation import (code_moments, generation_task, linear_interpolation,
                                       spherical_interpolation)


def test_linear_and_spherical_interpolation():
    z0, z1 = jnp.array([3.0, 0.0]), jnp.array([0.0, 3.0])
    lin, sl = linear_interpolation(z0, z1, 5), spherical_interpolation(z0, z1, 5)
    for path in (lin, sl):
        assert path.shape == (5, 2)
        assert np.allclose(path[0], z0) and np.allclose(path[-1], z1, atol=1e-6)
    assert np.allclose(jnp.linalg.norm(sl, axis=1), 3.0, atol=1e-5)  # slerp keeps the norm on a great circle
    assert np.allclose(sl[2], 3.0 * np.array([np.sqrt(0.5), np.sqrt(0.5)]), atol=1e-5)
    assert np.linalg.norm(lin[2]) < 3.0 - 0.5  # linear paths cut through the low-norm middle
    # parallel endpoints fall back to the linear path (no 0/0)
    assert np.allclose(spherical_interpolation(z0, 2 * z0, 3), linear_interpolation(z0, 2 * z0, 3))


def test_code_moments_of_prior_samples_are_small():
    z = np.asarray(jax.random.normal(jax.random.key(0), (20000, 3)))
    m = code_moments(z, np.zeros(3), np.eye(3))
    assert m["code_mean_max_abs_err"] < 0.05 and m["code_cov_max_abs_err"] < 0.05


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory):
    from aejax.train import fit

    workdir = str(tmp_path_factory.mktemp("digits_cvae"))
    config = get_experiment_config("digits_vae", {"model.kind": "cvae", "train.epochs": 40, "train.progress": False,
                                                  "train.tensorboard": False, "train.figures": False})
    fit(config, workdir)
    return load_run(workdir)


def _pieces(run):
    """The task's positional arguments from a loaded run, and its seed and figure directory."""
    return run.model, run.params, run.dataset, run.hp


def _where(run):
    return {"seed": run.seed, "out_dir": os.path.join(run.workdir, "figures")}


def test_generation_task_on_a_conditional_vae(cvae_run):
    res = generation_task(*_pieces(cvae_run), **_where(cvae_run), num_pairs=2, steps=5, per_class=30,
                          classifier_examples=1000)
    for name in ("samples.png", "interpolation.png", "code_map.png"):
        assert os.path.isfile(os.path.join(cvae_run.workdir, "figures", name))
    assert len(res["conditional_sample_accuracy_per_class"]) == 10
    assert res["test/classifier_accuracy_on_real"] > 0.9
    # chance is 0.1; a CVAE trained for 40 epochs on digits makes most samples of the requested class
    assert res["test/conditional_sample_accuracy"] > 0.6, res
    assert res["test/code_cov_max_abs_err"] < 1.0
    again = generation_task(*_pieces(cvae_run), **_where(cvae_run), num_pairs=0, per_class=30,
                            classifier_examples=1000)
    assert again["test/conditional_sample_accuracy"] == res["test/conditional_sample_accuracy"]  # same seed
    with pytest.raises(ConfigError):
        generation_task(*_pieces(cvae_run), **_where(cvae_run), steps=0)
