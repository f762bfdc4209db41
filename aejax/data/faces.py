"""The Olivetti faces (AT&T "The Database of Faces") and the fixed enrolment/probe protocol.

400 grey-scale 64x64 faces of 40 people, 10 each, from the MATLAB file Sam Roweis published (the file
scikit-learn's `fetch_olivetti_faces` downloads). The file holds one variable, `faces`: uint8 [4096, 400],
column i is face i stored column-major; the person of face i is i // 10.

The protocol (fixed, so results compare): per person, faces 0-4 are enrolled and faces 5-9 are probes
(the test split, 200 images). Validation comes out of the enrolled faces only: `val_per_person` of each
person's five enrolled faces, drawn with `split_seed`; the rest are the training split. Labels are the
person. `augment` adds shifted (and possibly mirrored) copies of the *training* faces only, drawn
deterministically from `split_seed`; validation and probe faces are never touched.

References: F. Samaria and A. Harter, "Parameterisation of a stochastic model for human face
identification", 2nd IEEE Workshop on Applications of Computer Vision, 1994.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable

import numpy as np

from aejax.data.datasets import Dataset, Split, user_cache_dir
from aejax.errors import ConfigError, DataError, DatasetNotFoundError

OLIVETTI_FILE = "olivettifaces.mat"
OLIVETTI_URL = "https://ndownloader.figshare.com/files/5976027"  # scikit-learn's source for the same file
# The file's SHA-256: the shared copy's, and the one scikit-learn records for its download (the bytes differ
# between the two MATLAB files; the pixels are what matter, see OLIVETTI_PIXELS_SHA256).
OLIVETTI_SHA256 = (
    "b1988d02c72fe5b8ee82b5ef3bb7982eafc74f1e1ff0ae0ade35061ad0af534d",
    "b612fb967f2dc77c9c62d3e1266e0c73d5fca46a4b8906c18e454d41af987794",
)
# SHA-256 of the decoded upright uint8 faces [400, 64, 64] (C order): any file that decodes to these is good.
OLIVETTI_PIXELS_SHA256 = "a3f75007cc103363b61a63e06bec8ea4846407682ef6e7c9ae1eb9c1bd0e8a00"
PEOPLE, FACES_PER_PERSON, ENROLLED_PER_PERSON, SIDE = 40, 10, 5, 64
_HOW_TO_GET = ("run `aejax download olivetti_faces` to fetch it into the cache, or point --data-dir (data.dir) "
               "or AEJAX_DATA_DIR at a folder holding olivettifaces.mat")


def shared_data_dir() -> Path:
    """The shared data folder beside the repository (`../shared/data/olivetti` from its root)."""
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "olivetti"


def olivetti_search_path(data_dir: str | None = None) -> list[Path]:
    """The folders searched for olivettifaces.mat, in order (each also with an olivetti/ subfolder):
    `data_dir` alone when given; else AEJAX_DATA_DIR, the user cache, the shared folder beside the repository
    aejax runs from, then beside the working directory (a clone installed with `pip install .`, whose package
    lives in site-packages, run from the clone's root)."""
    if data_dir:
        places = [Path(data_dir)]
    else:
        places = [Path(os.environ["AEJAX_DATA_DIR"])] if os.environ.get("AEJAX_DATA_DIR") else []
        places += [user_cache_dir() / "olivetti", shared_data_dir(),
                   Path.cwd().resolve().parent / "shared" / "data" / "olivetti"]
    expanded = []
    for p in places:
        expanded += [p] if p.name == "olivetti" else [p, p / "olivetti"]
    return list(dict.fromkeys(expanded))


def find_olivetti(data_dir: str | None = None) -> Path:
    """The first searched olivettifaces.mat; DatasetNotFoundError naming the places and how to get it."""
    searched = olivetti_search_path(data_dir)
    for place in searched:
        if (place / OLIVETTI_FILE).is_file():
            return place / OLIVETTI_FILE
    where = (f"the given directory {data_dir} (nor its olivetti/ subfolder)" if data_dir
             else ", ".join(map(str, searched)))
    raise DatasetNotFoundError(f"the Olivetti faces ({OLIVETTI_FILE}) are not in {where}; {_HOW_TO_GET}.")


def decode_olivetti(path: str | os.PathLike) -> np.ndarray:
    """Upright uint8 faces [400, 64, 64] from the MATLAB file, checked (DataError when damaged).

    The file is good when its SHA-256 is one of OLIVETTI_SHA256 or its decoded pixels hash to
    OLIVETTI_PIXELS_SHA256.
    """
    from scipy.io import loadmat

    path = Path(path)
    damaged = f"{path} is damaged or not the Olivetti faces file"
    try:
        faces = loadmat(str(path))["faces"]
    except Exception as err:  # noqa: BLE001 - scipy raises several kinds for a bad file; all mean "damaged"
        raise DataError(f"{damaged} ({type(err).__name__}); delete it and {_HOW_TO_GET}.") from None
    if faces.shape != (SIDE * SIDE, PEOPLE * FACES_PER_PERSON) or faces.dtype != np.uint8:
        raise DataError(f"{damaged}: its faces are {faces.dtype} {faces.shape}, expected uint8 (4096, 400); "
                        f"delete it and {_HOW_TO_GET}.")
    # Column i is face i, column-major: reshape the rows as [W, H] and swap to upright [H, W].
    x = np.ascontiguousarray(faces.T.reshape(-1, SIDE, SIDE).transpose(0, 2, 1))
    file_hash = hashlib.sha256(path.read_bytes()).hexdigest()
    if file_hash not in OLIVETTI_SHA256 and hashlib.sha256(x.tobytes()).hexdigest() != OLIVETTI_PIXELS_SHA256:
        raise DataError(f"{damaged}: checksum {file_hash} is not a known one and its pixels differ; "
                        f"delete it and {_HOW_TO_GET}.")
    return x


def download_olivetti(target_dir: str | os.PathLike | None = None, *, url: str = OLIVETTI_URL,
                      fetch: Callable[[str, str], None] | None = None) -> Path:
    """Downloads olivettifaces.mat into `target_dir` (default: the user cache's olivetti/), checked.

    Only called when a user asks (`aejax download olivetti_faces`). A good file already there is kept;
    a download that fails the check is deleted and reported (DataError). Returns the file's path.
    """
    target = Path(target_dir) if target_dir else user_cache_dir() / "olivetti"
    target.mkdir(parents=True, exist_ok=True)
    final = target / OLIVETTI_FILE
    if final.is_file():
        try:
            decode_olivetti(final)
            return final
        except DataError:
            pass  # damaged: fetch it again
    fetch = fetch or (lambda src, dst: urllib.request.urlretrieve(src, dst))
    with tempfile.NamedTemporaryFile(dir=target, delete=False, suffix=".part") as tmp:
        tmp_path = Path(tmp.name)
    try:
        try:
            fetch(url, str(tmp_path))
        except OSError as err:  # no network, a refused connection, an HTTP error (urllib's are OSErrors)
            raise DataError(f"could not download {OLIVETTI_FILE} from {url} ({err}); check the network, or put the "
                            "file in a folder and pass it with --data-dir.") from None
        try:
            decode_olivetti(tmp_path)
        except DataError:
            digest = hashlib.sha256(tmp_path.read_bytes()).hexdigest()
            raise DataError(f"{OLIVETTI_FILE} downloaded from {url} has checksum {digest}, expected one of "
                            f"{', '.join(OLIVETTI_SHA256)}; the download is damaged, so try again.") from None
        shutil.move(str(tmp_path), final)
    finally:
        tmp_path.unlink(missing_ok=True)
    return final


def protocol_indices(*, val_per_person: int = 1, split_seed: int = 0) -> dict[str, np.ndarray]:
    """Face indices (0..399) of the three splits: per person, `val_per_person` of the enrolled faces 0-4
    (drawn with `split_seed`) are validation, the other enrolled faces training; faces 5-9 are the test probes."""
    if not 1 <= val_per_person < ENROLLED_PER_PERSON:
        raise ConfigError(f"data.val_per_person must be in 1..{ENROLLED_PER_PERSON - 1} (of each person's "
                          f"{ENROLLED_PER_PERSON} enrolled faces), got {val_per_person}.")
    rng = np.random.default_rng(split_seed)
    train, val = [], []
    for person in range(PEOPLE):
        enrolled = person * FACES_PER_PERSON + rng.permutation(ENROLLED_PER_PERSON)
        val += sorted(enrolled[:val_per_person])
        train += sorted(enrolled[val_per_person:])
    test = [i for i in range(PEOPLE * FACES_PER_PERSON) if i % FACES_PER_PERSON >= ENROLLED_PER_PERSON]
    return {"train": np.asarray(train), "val": np.asarray(val), "test": np.asarray(test)}


def augment_faces(x_NxHxWxC: np.ndarray, copies: int, *, max_shift: int, flip: bool, seed: int) -> np.ndarray:
    """`copies` altered copies of every image, [copies * N, H, W, C] (copy-major): each shifted by up to
    `max_shift` pixels in each direction (edge pixels repeated) and, with `flip`, mirrored left-right with
    probability 1/2. Deterministic in `seed`."""
    rng = np.random.default_rng([seed, 17])
    n, h, w = x_NxHxWxC.shape[:3]
    s = max_shift
    padded = np.pad(x_NxHxWxC, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")
    out = []
    for _ in range(copies):
        dy, dx = rng.integers(-s, s + 1, size=(2, n))
        mirror = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
        for i in range(n):
            img = padded[i, s + dy[i]:s + dy[i] + h, s + dx[i]:s + dx[i] + w]
            out.append(img[:, ::-1] if mirror[i] else img)
    return np.stack(out).reshape(copies * n, *x_NxHxWxC.shape[1:]) if out else x_NxHxWxC[:0]


def load_olivetti_faces(*, dir: str = "", val_per_person: int = 1, augment: int = 0,  # noqa: A002
                        max_shift: int = 2, flip: bool = True, split_seed: int = 0) -> Dataset:
    """The Olivetti faces under the fixed protocol: enrolled faces 0-4 of each person train (less
    `val_per_person` for validation), probes 5-9 test; [N, 64, 64, 1] in [0, 1] (uint8 / 255), labels = person.

    `dir` (`data.dir`, `--data-dir`): the folder holding olivettifaces.mat (only it is searched when
    given); `augment`: shifted/mirrored copies per training face (0: none), up to `max_shift` pixels,
    mirrored when `flip`; drawn from `split_seed`.
    """
    if augment < 0 or max_shift < 0:
        raise ConfigError(f"data.augment and data.max_shift must be >= 0, got {augment} and {max_shift}.")
    path = find_olivetti(dir or None)
    x = (decode_olivetti(path).astype(np.float32) / 255.0)[..., None]
    y = (np.arange(len(x)) // FACES_PER_PERSON).astype(np.int32)
    idx = protocol_indices(val_per_person=val_per_person, split_seed=split_seed)
    split = lambda name: Split(x[idx[name]], y[idx[name]])
    train = split("train")
    if augment:
        extra = augment_faces(train.x, augment, max_shift=max_shift, flip=flip, seed=split_seed)
        train = Split(np.concatenate([train.x, extra]), np.concatenate([train.y, np.tile(train.y, augment)]))
    return Dataset("olivetti_faces", train, split("val"), split("test"), num_classes=PEOPLE,
                   source=str(path.resolve()))
