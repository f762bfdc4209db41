"""The Olivetti faces source: layout, the enrolment/probe protocol, augmentation, checksums, bad inputs."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from aejax.data import faces, load_dataset
from aejax.errors import ConfigError, DataError, DatasetNotFoundError

SHARED = faces.shared_data_dir() / faces.OLIVETTI_FILE
pytestmark = pytest.mark.skipif(not SHARED.is_file(), reason=f"the shared Olivetti copy is not at {SHARED}")


@pytest.fixture(scope="module")
def raw():
    """The file's uint8 faces as stored: [4096, 400], column i is face i, column-major."""
    return scipy.io.loadmat(str(SHARED))["faces"]


@pytest.fixture(scope="module")
def data():
    return load_dataset("olivetti_faces")


def test_faces_are_upright_scaled_and_labelled_by_person(data):
    assert data.input_shape == (64, 64, 1) and data.num_classes == 40
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == np.float32 and split.x.min() >= 0.0 and split.x.max() <= 1.0
    mean = np.concatenate([data.train.x, data.val.x, data.test.x]).mean(axis=0)[..., 0]
    # An upright face is mirror-symmetric left-right, not top-bottom (a transposed one is the other way round) ...
    assert np.abs(mean - mean[:, ::-1]).mean() < 0.5 * np.abs(mean - mean[::-1, :]).mean()
    # ... and its eyes (the darkest band of the face's middle columns) lie in the upper half (not upside down).
    rows = mean[8:56, 16:48].mean(axis=1)
    assert 8 + int(np.argmin(rows)) < 32
    # Labels: face i is person i // 10, so each person has 4 training, 1 validation and 5 probe faces.
    for split, count in ((data.train, 4), (data.val, 1), (data.test, 5)):
        np.testing.assert_array_equal(np.bincount(split.y, minlength=40), np.full(40, count))


def test_pixels_are_the_files_faces_at_their_protocol_places(data, raw):
    idx = faces.protocol_indices()
    stored = raw.T.reshape(400, 64, 64).transpose(0, 2, 1)  # the README's upright layout
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        np.testing.assert_array_equal(np.round(split.x[..., 0] * 255).astype(np.uint8), stored[idx[name]])
        np.testing.assert_array_equal(split.y, idx[name] // 10)


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("val_per_person", [1, 2])
def test_protocol_enrols_faces_0_to_4_and_probes_5_to_9(seed, val_per_person):
    idx = faces.protocol_indices(val_per_person=val_per_person, split_seed=seed)
    train, val, test = (set(idx[k].tolist()) for k in ("train", "val", "test"))
    assert test == {i for i in range(400) if i % 10 >= 5} and len(idx["test"]) == 200
    assert train | val == {i for i in range(400) if i % 10 < 5}  # every enrolled face, no probe
    assert not train & val and not (train | val) & test
    assert np.all(np.bincount(idx["val"] // 10, minlength=40) == val_per_person)


def test_no_probe_reaches_training_or_validation_even_augmented(raw):
    data = load_dataset("olivetti_faces", augment=3, split_seed=2)
    probes = {r.tobytes() for r in data.test.x.reshape(200, -1)}
    assert len(data.train) == 160 * 4 and len(data.val) == 40
    assert not probes & {r.tobytes() for r in data.train.x.reshape(len(data.train), -1)}
    assert not probes & {r.tobytes() for r in data.val.x.reshape(40, -1)}
    # Augmented copies are shifts or mirrors of training faces, with the training faces' person labels.
    np.testing.assert_array_equal(data.train.y, np.tile(data.train.y[:160], 4))
    plain = load_dataset("olivetti_faces", split_seed=2)
    np.testing.assert_array_equal(data.train.x[:160], plain.train.x)
    np.testing.assert_array_equal(data.val.x, plain.val.x)
    np.testing.assert_array_equal(data.test.x, plain.test.x)
    again = load_dataset("olivetti_faces", augment=3, split_seed=2)
    np.testing.assert_array_equal(data.train.x, again.train.x)  # deterministic in the split seed


def test_augment_shifts_and_mirrors():
    x = np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6, 1)
    out = faces.augment_faces(x, 5, max_shift=1, flip=True, seed=0)
    assert out.shape == (10, 6, 6, 1)
    for k, img in enumerate(out):
        src = x[k % 2, :, :, 0]
        padded = np.pad(src, 1, mode="edge")
        candidates = [c for dy in range(3) for dx in range(3) for c in
                      (padded[dy:dy + 6, dx:dx + 6], padded[dy:dy + 6, dx:dx + 6][:, ::-1])]
        assert any(np.array_equal(img[..., 0], c) for c in candidates)
    np.testing.assert_array_equal(faces.augment_faces(x, 3, max_shift=0, flip=False, seed=0), np.tile(x, (3, 1, 1, 1)))


def test_one_person_run_keeps_that_persons_enrolled_faces_and_every_probe():
    from aejax.data import restrict_to_class

    one = restrict_to_class(load_dataset("olivetti_faces", augment=1), 7)
    assert set(one.train.y) == {7} and set(one.val.y) == {7} and len(one.train) == 8 and len(one.val) == 1
    assert len(one.test) == 200 and one.normal_class == 7


def _good_copy(path, raw):
    """A MATLAB file of the same faces whose bytes differ from both recorded checksums."""
    scipy.io.savemat(str(path), {"faces": raw, "note": np.array([1.0])})
    assert hashlib.sha256(path.read_bytes()).hexdigest() not in faces.OLIVETTI_SHA256
    return path


def test_checksum_accepts_known_files_or_the_same_pixels_and_rejects_damage(tmp_path, raw):
    assert hashlib.sha256(SHARED.read_bytes()).hexdigest() in faces.OLIVETTI_SHA256
    faces.decode_olivetti(SHARED)
    x = faces.decode_olivetti(_good_copy(tmp_path / "same.mat", raw))  # other bytes, same pixels: good
    assert x.shape == (400, 64, 64)
    changed = raw.copy()
    changed[100, 3] ^= 1  # one grey level of one face
    scipy.io.savemat(str(tmp_path / "changed.mat"), {"faces": changed})
    with pytest.raises(DataError, match="checksum"):
        faces.decode_olivetti(tmp_path / "changed.mat")
    (tmp_path / "garbage.mat").write_bytes(SHARED.read_bytes()[:5000])  # truncated
    with pytest.raises(DataError, match="damaged"):
        faces.decode_olivetti(tmp_path / "garbage.mat")
    scipy.io.savemat(str(tmp_path / "shape.mat"), {"faces": raw[:, :300]})
    with pytest.raises(DataError, match="4096, 400"):
        faces.decode_olivetti(tmp_path / "shape.mat")


def test_download_keeps_a_checked_file_and_deletes_a_damaged_one(tmp_path, raw):
    good = _good_copy(tmp_path / "served_good.mat", raw)
    bad = tmp_path / "served_bad.mat"
    bad.write_bytes(b"<html>not found</html>")
    calls = []

    def serve(source):
        def fetch(url, dst):
            calls.append(url)
            with open(dst, "wb") as f:
                f.write(source.read_bytes())
        return fetch

    target = tmp_path / "cache"
    with pytest.raises(DataError, match="download is damaged"):
        faces.download_olivetti(target, fetch=serve(bad))
    assert not (target / faces.OLIVETTI_FILE).exists() and not list(target.glob("*.part"))
    path = faces.download_olivetti(target, fetch=serve(good))
    assert path == target / faces.OLIVETTI_FILE and calls == [faces.OLIVETTI_URL] * 2
    faces.download_olivetti(target, fetch=serve(bad))  # a good file already there is kept, nothing fetched
    assert len(calls) == 2


def test_download_without_network_is_one_clear_error(tmp_path):
    def offline(url, dst):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    with pytest.raises(DataError, match="could not download olivettifaces.mat") as err:
        faces.download_olivetti(tmp_path, fetch=offline)
    assert "\n" not in str(err.value) and not list(tmp_path.iterdir())


def test_search_order_and_missing_file_message(tmp_path, monkeypatch):
    monkeypatch.setenv("AEJAX_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    places = faces.olivetti_search_path()
    assert places[:4] == [tmp_path / "env", tmp_path / "env" / "olivetti", tmp_path / "cache" / "aejax" / "olivetti",
                          faces.shared_data_dir()]
    assert faces.find_olivetti() == SHARED  # found in the shared folder beside the repository
    empty = tmp_path / "empty"
    empty.mkdir()
    assert faces.olivetti_search_path(str(empty)) == [empty, empty / "olivetti"]  # --data-dir alone
    # installed with `pip install .` (the package in site-packages) and run from a clone's root: the shared
    # folder beside the working directory
    monkeypatch.setattr(faces, "shared_data_dir", lambda: tmp_path / "site-packages" / "shared" / "data" / "olivetti")
    beside = tmp_path / "shared" / "data" / "olivetti"
    beside.mkdir(parents=True)
    (beside / faces.OLIVETTI_FILE).write_bytes(SHARED.read_bytes())
    monkeypatch.chdir(empty)
    assert faces.find_olivetti() == beside / faces.OLIVETTI_FILE
    with pytest.raises(DatasetNotFoundError, match="aejax download olivetti_faces") as err:
        load_dataset("olivetti_faces", dir=str(empty))
    assert str(empty) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="val_per_person"):
        load_dataset("olivetti_faces", val_per_person=5)


@pytest.mark.parametrize("case", ["missing", "damaged"])
def test_command_line_bad_data_dir_is_one_line_exit_2(tmp_path, capsys, case, raw):
    from aejax.cli import main

    folder = tmp_path / "data"
    folder.mkdir()
    if case == "damaged":
        (folder / faces.OLIVETTI_FILE).write_bytes(SHARED.read_bytes()[:2000])
    experiment = str(Path(__file__).resolve().parents[2] / "experiments" / "olivetti_ae.py")
    code = main(["train", experiment, "--data-dir", str(folder), "--workdir", str(tmp_path / "w")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert str(folder) in err and "aejax download olivetti_faces" in err
