"""Shared test helpers: small configs on scikit-learn digits."""

import os
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
# Most tests are compile-bound, and many compile the same programs (the digits runs), in both xdist workers and
# in the command-line subprocesses they start (which inherit these variables): JAX's persistent compilation
# cache, for every program, cuts the suite's CPU time by about a fifth. A cached executable is the one XLA
# would compile. JAX writes an entry in place: a process that reads another's half-written entry warns and
# compiles; the warning is silenced so that it cannot become a line in a test that counts stderr lines.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "aejax-tests-jax-cache"))
os.environ["PYTHONWARNINGS"] = ",".join(
    w for w in (os.environ.get("PYTHONWARNINGS"), "ignore:Error reading persistent compilation cache entry") if w)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import warnings  # noqa: E402

import pytest  # noqa: E402

warnings.filterwarnings("ignore", message="Error reading persistent compilation cache entry")

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
