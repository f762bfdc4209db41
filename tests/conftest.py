"""Shared test helpers: small configs on scikit-learn digits."""

import os
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
# Most tests are compile-bound, and many compile the same programs (the digits runs), in this process and in the
# command-line subprocesses it starts (they inherit these variables): JAX's persistent compilation cache, for
# every program, cuts the suite's CPU time by about a fifth. A cached executable is the one XLA would compile.
# One directory per xdist worker: JAX writes an entry in place, and a worker reading another's half-written
# entry would print a warning into a test that counts stderr lines.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    tempfile.gettempdir(), f"aejax-tests-jax-cache-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pytest  # noqa: E402

from aejax.config import get_experiment_config  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def digits_config(**overrides):
    """The quick-start experiment, shortened: 3 epochs, no progress bar, no figures."""
    base = {"train.epochs": 3, "train.progress": False, "train.figures": False, "train.tensorboard": False,
            "train.checkpoint_every": 1}
    base.update(overrides)
    return get_experiment_config(os.path.join(REPO, "experiments", "digits_ae.py"), base)


@pytest.fixture
def small_config():
    return digits_config


def assert_fails_naming(call, texts, error=None):
    """`call()` raises `error` (DataError by default) whose message holds every string in `texts`."""
    from aejax.errors import DataError

    with pytest.raises(error or DataError) as info:
        call()
    for text in texts:
        assert text in str(info.value), (text, str(info.value))
