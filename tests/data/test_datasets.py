import hashlib
import gzip
import shutil

import numpy as np
import pytest

from aejax.data import datasets, load_dataset, write_idx
from aejax.errors import ConfigError, DataError, DatasetNotFoundError


def test_digits_splits_are_fixed_disjoint_and_scaled():
    a = load_dataset("digits")
    b = load_dataset("digits")
    assert a.input_shape == (8, 8, 1)
    assert (len(a.train), len(a.val), len(a.test)) == (1797 - 360 - 180, 180, 360)
    for split in ("train", "val", "test"):
        x = getattr(a, split).x
        assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
        np.testing.assert_array_equal(x, getattr(b, split).x)
    rows = lambda s: {r.tobytes() for r in s.x.reshape(len(s), -1)}
    # digits has a few exact duplicate images; the splits must not share examples beyond those
    assert len(rows(a.train) & rows(a.test)) <= 5
    assert set(np.unique(a.train.y)) == set(range(10))


def _write_fake_fashion(directory, n_train=30, n_test=10):
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(directory / name, array)
    return arrays


def test_fashion_mnist_reader_on_written_files(tmp_path):
    arrays = _write_fake_fashion(tmp_path / "fm")
    ds = load_dataset("fashion_mnist", dir=str(tmp_path / "fm"), val_size=5)
    assert ds.source == str((tmp_path / "fm").resolve())  # the files read: summary.json's data/source
    assert ds.input_shape == (28, 28, 1)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (25, 5, 10)
    np.testing.assert_allclose(ds.test.x[..., 0], arrays["t10k-images-idx3-ubyte.gz"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.test.y, arrays["t10k-labels-idx1-ubyte.gz"])


def test_missing_fashion_mnist_names_places_and_remedy(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_MNIST_DIR", str(tmp_path / "system"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("AEJAX_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion_mnist")
    message = str(err.value)
    for place in ("cache", "system"):
        assert str(tmp_path / place) in message
    assert "apt-get install dataset-fashion-mnist" in message and "aejax download" in message
    _write_fake_fashion(tmp_path / "system")  # found there, but a given directory is the only place searched
    with pytest.raises(DatasetNotFoundError, match=f"are not in the given directory {tmp_path / 'given'}"):
        load_dataset("fashion_mnist", dir=str(tmp_path / "given"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="fix --data-dir / data.dir"):
        load_dataset("fashion_mnist", dir=str(tmp_path / "empty"))


def test_env_dir_is_searched(tmp_path, monkeypatch):
    _write_fake_fashion(tmp_path / "env" / "fashion-mnist")
    monkeypatch.setenv("AEJAX_DATA_DIR", str(tmp_path / "env"))
    assert datasets.find_fashion_mnist() == tmp_path / "env" / "fashion-mnist"


def test_download_verifies_checksums(tmp_path, monkeypatch):
    source = tmp_path / "source"
    _write_fake_fashion(source)
    sums = {}
    for name in datasets.FASHION_MNIST_FILES.values():
        with gzip.open(source / name, "rb") as f:
            sums[name] = hashlib.sha256(f.read()).hexdigest()
    monkeypatch.setattr(datasets, "FASHION_MNIST_SHA256", sums)
    fetch = lambda url, dst: shutil.copy(source / url.rsplit("/", 1)[1], dst)
    target = datasets.download_fashion_mnist(tmp_path / "cache", base_url="file:///", fetch=fetch)
    assert sorted(p.name for p in target.iterdir()) == sorted(sums)
    # a corrupted download is rejected and leaves no file behind
    sums["t10k-labels-idx1-ubyte.gz"] = "0" * 64
    (target / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="checksum"):
        datasets.download_fashion_mnist(tmp_path / "cache", base_url="file:///", fetch=fetch)
    assert not (target / "t10k-labels-idx1-ubyte.gz").exists()


def test_unknown_dataset():
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")


@pytest.mark.parametrize("x, message", [
    (np.zeros((4, 8), np.float32), "shape \\[N, H, W, C\\] \\(images\\) or \\[N, T, C\\]"),  # rank 3 is a sequence
    (np.zeros((4, 8, 8, 1), np.uint8), "floating point"),
    (np.full((4, 8, 8, 1), np.nan, np.float32), "NaN"),
])
def test_check_images_rejects_bad_arrays(x, message):
    with pytest.raises(DataError, match=message):
        datasets.check_images(x)


def test_check_images_unit_range():
    with pytest.raises(DataError, match="Bernoulli likelihood needs values in \\[0, 1\\]"):
        datasets.check_images(np.full((2, 2, 2, 1), 1.5, np.float32), unit_range=True)
