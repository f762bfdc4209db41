"""Your own data: `.npy`/`.npz` files and in-memory arrays as datasets (aejax.data.arrays)."""

import hashlib
import json

import numpy as np
import pytest
from conftest import digits_config

from aejax.data import arrays_dataset, load_dataset
from aejax.errors import AejaxError, DataError


def _images(n=240, seed=0):
    """Small 8x8 grayscale images in [0, 1] (uint8 pixels) with two classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    base = np.zeros((2, 8, 8, 1), np.float32)
    base[0, :, 2:4], base[1, 2:4, :] = 1.0, 1.0
    x = np.clip(base[y] + 0.2 * rng.random((n, 8, 8, 1)), 0, 1)
    return (x * 255).astype(np.uint8), y.astype(np.int64)


@pytest.fixture
def npy_files(tmp_path):
    x, y = _images()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    return tmp_path / "x.npy", tmp_path / "y.npy"


def _one_line(err):
    message = str(err.value)
    assert "\n" not in message and message.endswith(".")
    return message


def test_npy_files_load_with_labels_splits_and_hash(npy_files):
    x_path, y_path = npy_files
    d = load_dataset("arrays", path=f"{x_path},{y_path}", val_size=20, test_size=40, split_seed=0)
    assert (len(d.train), len(d.val), len(d.test)) == (180, 20, 40)
    assert d.input_shape == (8, 8, 1) and d.train.x.dtype == np.float32 and d.num_classes == 2
    assert 0.0 <= d.train.x.min() and d.train.x.max() <= 1.0
    expected = hashlib.sha256(x_path.read_bytes() + y_path.read_bytes()).hexdigest()
    assert d.source_hash == expected and str(x_path) in d.source
    again = load_dataset("arrays", path=f"{x_path},{y_path}", val_size=20, test_size=40, split_seed=0)
    np.testing.assert_array_equal(again.test.x, d.test.x)  # fixed-seed splits


def test_npz_predefined_splits_and_features(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "f.npz", x_train=rng.normal(3.0, 2.0, (50, 5)), y_train=np.arange(50) % 3,
             x_test=rng.normal(3.0, 2.0, (20, 5)), y_test=np.arange(20) % 3)
    d = load_dataset("arrays", path=str(tmp_path / "f.npz"), val_size=10, test_size=99, split_seed=0)
    assert (len(d.train), len(d.val), len(d.test)) == (40, 10, 20)  # val carved from x_train; test as given
    assert d.input_shape == (5, 1, 1) and d.num_classes == 3 and d.scaling is not None
    # standardized on train like the tabular sources: 0.5 + z / 8 has mean 0.5 on the training split
    np.testing.assert_allclose(d.train.x.mean(axis=0), 0.5, atol=1e-6)


def test_in_memory_arrays_train_and_are_recorded(tmp_path):
    from aejax.train import fit

    x, y = _images()
    d = arrays_dataset(x.astype(np.float32) / 255, y, val_size=20, test_size=40)
    assert d.source == "in-memory arrays" and len(d.source_hash) == 64
    summary = fit(digits_config(**{"train.epochs": 1, "train.batch_size": 32, "model.hidden": (32,),
                                   "model.code_size": 4}), str(tmp_path / "wd"), dataset=d)
    assert np.isfinite(summary["test/mse"])


def test_npy_trains_sweeps_and_evaluates_end_to_end(tmp_path, npy_files):
    from aejax.evaluate import evaluate_workdir
    from aejax.sweep import run_sweep
    from aejax.train import fit

    x_path, y_path = npy_files
    data = {"data.name": "arrays", "data.path": f"{x_path},{y_path}", "data.val_size": 20, "data.test_size": 40,
            "train.batch_size": 32, "model.hidden": (32,), "model.code_size": 4}
    wd = str(tmp_path / "run")
    summary = fit(digits_config(**data, **{"train.epochs": 2}), wd)
    assert np.isfinite(summary["test/mse"])
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["data"]["name"] == "arrays" and saved["data"]["path"] == f"{x_path},{y_path}"
    results = evaluate_workdir(wd, "reconstruction")
    assert np.isfinite(results["test/mse"])

    sweep = run_sweep("digits_ae", str(tmp_path / "sweep"), seeds=2, progress=False,
                      overrides={**data, "train.epochs": 1, "train.progress": False, "train.figures": False,
                                 "train.tensorboard": False})
    assert len(sweep["rows"]) == 2 and all(np.isfinite(r["test/mse"]) for r in sweep["rows"])


def test_wrong_rank_is_one_clear_line(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((30, 8, 8, 1, 1), np.float32))
    with pytest.raises(DataError) as err:
        load_dataset("arrays", path=str(tmp_path / "x.npy"), val_size=5, test_size=5)
    message = _one_line(err)
    assert "(30, 8, 8, 1, 1)" in message and "[N, H, W, C]" in message and "[N, T, C]" in message
    with pytest.raises(DataError) as err:  # a flat [N] array: neither features nor sequences
        arrays_dataset(np.zeros(30), val_size=5, test_size=5)
    assert "(30,)" in _one_line(err) and "channel axis" in str(err.value)


def _series(n=60, steps=12, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    return (3.0 + 2.0 * rng.standard_normal((n, steps, channels))).astype(np.float32), rng.integers(0, 3, n)


def test_sequences_load_from_npy_with_the_same_splits_and_hash(tmp_path):
    x, y = _series()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    d = load_dataset("arrays", path=f"{tmp_path / 'x.npy'},{tmp_path / 'y.npy'}", val_size=6, test_size=12)
    assert d.input_shape == (12, 2) and (len(d.train), len(d.val), len(d.test)) == (42, 6, 12)
    assert d.num_classes == 3 and d.train.x.dtype == np.float32
    assert d.source_hash == hashlib.sha256((tmp_path / "x.npy").read_bytes() + (tmp_path / "y.npy").read_bytes()
                                           ).hexdigest()
    # standardized per channel with the training split's statistics (values need not lie in [0, 1])
    mean, std = d.scaling
    assert mean.shape == (2,) and np.allclose(mean, 3.0, atol=0.3) and np.allclose(std, 2.0, atol=0.3)
    np.testing.assert_allclose(d.train.x.reshape(-1, 2).mean(0), 0.5, atol=1e-5)
    # the same split as an in-memory array of the same values
    same = arrays_dataset(x, y, val_size=6, test_size=12)
    np.testing.assert_array_equal(same.test.y, d.test.y)
    np.testing.assert_allclose(same.test.x, d.test.x)


def test_sequence_npz_splits_nans_and_label_counts_are_one_clear_line(tmp_path):
    x, y = _series()
    np.savez(tmp_path / "s.npz", x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    d = load_dataset("arrays", path=str(tmp_path / "s.npz"), val_size=8, test_size=5)
    assert (len(d.train), len(d.val), len(d.test)) == (32, 8, 20) and d.input_shape == (12, 2)
    bad = x.copy()
    bad[5, 3, 1] = np.nan
    with pytest.raises(DataError) as err:
        arrays_dataset(bad, y, val_size=6, test_size=12)
    assert "1 NaN" in _one_line(err)
    with pytest.raises(DataError) as err:
        arrays_dataset(x, y[:-1], val_size=6, test_size=12)
    assert "60 examples but 59 labels" in _one_line(err)
    np.savez(tmp_path / "mixed.npz", x_train=x[:40], x_test=x[40:, :, :1])
    with pytest.raises(DataError) as err:
        load_dataset("arrays", path=str(tmp_path / "mixed.npz"), val_size=8, test_size=5)
    assert "different shapes" in _one_line(err)


def test_nans_are_one_clear_line(tmp_path):
    x = np.full((30, 4), 0.5)
    x[3, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(DataError) as err:
        load_dataset("arrays", path=str(tmp_path / "x.npy"), val_size=5, test_size=5)
    assert "1 NaN" in _one_line(err)


def test_mismatched_labels_are_one_clear_line(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((30, 4)), y=np.zeros(29, np.int64))
    with pytest.raises(DataError) as err:
        load_dataset("arrays", path=str(tmp_path / "d.npz"), val_size=5, test_size=5)
    assert "30 examples but 29 labels" in _one_line(err)
    with pytest.raises(DataError) as err:  # the same check for in-memory arrays
        arrays_dataset(np.zeros((30, 4)), np.zeros(31), val_size=5, test_size=5)
    assert "30 examples but 31 labels" in _one_line(err)


def test_float_images_outside_unit_range_and_missing_path(tmp_path):
    with pytest.raises(DataError) as err:
        arrays_dataset(np.full((30, 4, 4, 1), 2.0, np.float32), val_size=5, test_size=5)
    assert "[0, 1]" in _one_line(err)
    with pytest.raises(AejaxError) as err:
        load_dataset("arrays", path=str(tmp_path / "missing.npy"), val_size=5, test_size=5)
    assert "does not exist" in _one_line(err)
    with pytest.raises(AejaxError) as err:
        load_dataset("arrays", path="", val_size=5, test_size=5)
    assert "data.path" in _one_line(err)
