"""Dataset sources: scikit-learn digits (embedded, the no-network default) and Fashion-MNIST.

Every source returns a `Dataset` of fixed-seed train/validation/test splits with pixels
as float32 in [0, 1], images shaped [N, H, W, C], and integer labels kept. Sequence sources
(`aejax.data.sequences`) give float32 series shaped [N, T, C].
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable

import numpy as np

from aejax.data.idx import read_idx
from aejax.errors import ConfigError, DataError, DatasetNotFoundError


@dataclasses.dataclass(frozen=True)
class Split:
    """One split: images `x` [N, H, W, C] float32 in [0, 1] (or sequences [N, T, C]) and labels `y` [N] int32."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A named dataset with fixed train/validation/test splits."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    normal_class: int | None = None  # set by `restrict_to_class`: the one class the run trains on
    scaling: tuple[np.ndarray, np.ndarray] | None = None  # tabular: per-feature (mean, std); sequences: per channel
    source: str | None = None  # `arrays`: the file path(s), or "in-memory arrays"
    source_hash: str | None = None  # `arrays`: SHA-256 of the file bytes (or of the in-memory arrays)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])


def split_train_val(x: np.ndarray, y: np.ndarray, *, val_size: int, seed: int) -> tuple[Split, Split]:
    """Splits (x, y) into train and validation with a permutation fixed by `seed`."""
    if not 0 < val_size < len(x):
        raise ConfigError(f"validation size must be in (0, {len(x)}), got {val_size}; change data.val_size.")
    order = np.random.default_rng(seed).permutation(len(x))
    val_idx, train_idx = np.sort(order[:val_size]), np.sort(order[val_size:])
    return Split(x[train_idx], y[train_idx]), Split(x[val_idx], y[val_idx])


def load_digits(*, val_size: int = 180, test_size: int = 360, split_seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 images, shipped inside scikit-learn)."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[..., None]
    y = bunch.target.astype(np.int32)
    if not 0 < test_size < len(x) - 1:
        raise ConfigError(f"test size must be in (0, {len(x) - 1}), got {test_size}; change data.test_size.")
    order = np.random.default_rng(split_seed + 1).permutation(len(x))
    test_idx, rest_idx = np.sort(order[:test_size]), np.sort(order[test_size:])
    train, val = split_train_val(x[rest_idx], y[rest_idx], val_size=val_size, seed=split_seed)
    return Dataset("digits", train, val, Split(x[test_idx], y[test_idx]), num_classes=10)


FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# SHA-256 of the *decompressed* IDX payloads: gzip re-packing (as Debian's package does)
# changes the compressed bytes but never these.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def user_cache_dir() -> Path:
    """aejax's cache directory: $XDG_CACHE_HOME/aejax or ~/.cache/aejax."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aejax"


def fashion_mnist_search_path(data_dir: str | None = None) -> list[Path]:
    """The directories searched for Fashion-MNIST's IDX files, in order: `data_dir` alone when given."""
    places = []
    if data_dir:
        places.append(Path(data_dir))
    elif os.environ.get("AEJAX_DATA_DIR"):
        places.append(Path(os.environ["AEJAX_DATA_DIR"]))
    if not data_dir:
        places += [user_cache_dir() / "fashion-mnist", Path(SYSTEM_FASHION_MNIST_DIR)]
    # Each place may hold the files directly or in a fashion-mnist/ subfolder.
    expanded = []
    for p in places:
        expanded += [p, p / "fashion-mnist"] if p.name != "fashion-mnist" else [p]
    return list(dict.fromkeys(expanded))


def find_fashion_mnist(data_dir: str | None = None) -> Path:
    """Returns the first searched directory holding all four Fashion-MNIST files."""
    searched = fashion_mnist_search_path(data_dir)
    for place in searched:
        if all((place / f).is_file() for f in FASHION_MNIST_FILES.values()):
            return place
    if data_dir:
        raise DatasetNotFoundError(
            f"Fashion-MNIST's four IDX files ({', '.join(FASHION_MNIST_FILES.values())}) are not in the given "
            f"directory {data_dir} (nor its fashion-mnist/ subfolder); fix --data-dir / data.dir, or leave it unset "
            "to search AEJAX_DATA_DIR, the user cache and /usr/share/datasets/fashion-mnist.")
    raise DatasetNotFoundError(
        "Fashion-MNIST was not found in " + ", ".join(str(p) for p in searched)
        + "; install it with `apt-get install dataset-fashion-mnist`, point --data-dir or AEJAX_DATA_DIR"
        " at its IDX files, or run `aejax download fashion_mnist` to fetch them into the cache."
    )


def _payload_sha256(path: Path) -> str:
    with gzip.open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def download_fashion_mnist(target_dir: str | os.PathLike | None = None, *, base_url: str = FASHION_MNIST_URL,
                           fetch: Callable[[str, str], None] | None = None) -> Path:
    """Downloads Fashion-MNIST into `target_dir` (default: the user cache), verifying checksums.

    Only called when a user asks (`aejax download fashion_mnist`). A file whose checksum
    does not match is deleted and reported.
    """
    target = Path(target_dir) if target_dir else user_cache_dir() / "fashion-mnist"
    target.mkdir(parents=True, exist_ok=True)
    fetch = fetch or (lambda url, dst: urllib.request.urlretrieve(url, dst))
    for name in FASHION_MNIST_FILES.values():
        final = target / name
        if final.is_file() and _payload_sha256(final) == FASHION_MNIST_SHA256[name]:
            continue
        with tempfile.NamedTemporaryFile(dir=target, delete=False, suffix=".part") as tmp:
            tmp_path = Path(tmp.name)
        try:
            fetch(base_url + name, str(tmp_path))
            digest = _payload_sha256(tmp_path)
            if digest != FASHION_MNIST_SHA256[name]:
                raise DataError(f"{name} downloaded from {base_url} has checksum {digest}, expected "
                                f"{FASHION_MNIST_SHA256[name]}; the download is damaged, so try again.")
            shutil.move(str(tmp_path), final)
        finally:
            tmp_path.unlink(missing_ok=True)
    return target


def load_fashion_mnist(*, dir: str = "", val_size: int = 5000, split_seed: int = 0) -> Dataset:  # noqa: A002
    """Fashion-MNIST (Xiao et al. 2017) from its IDX files: 55k train, 5k validation, 10k test.

    `dir` (`data.dir`, `--data-dir`): the directory holding the four IDX files; when given, only it (and
    its fashion-mnist/ subfolder) is searched, else `fashion_mnist_search_path()`. The Dataset's `source`
    names the directory the files were read from.
    """
    place = find_fashion_mnist(dir or None)
    arrays = {k: read_idx(place / f) for k, f in FASHION_MNIST_FILES.items()}
    to_unit = lambda a: (a.astype(np.float32) / 255.0)[..., None]
    train, val = split_train_val(to_unit(arrays["train_images"]), arrays["train_labels"].astype(np.int32),
                                 val_size=val_size, seed=split_seed)
    test = Split(to_unit(arrays["test_images"]), arrays["test_labels"].astype(np.int32))
    return Dataset("fashion_mnist", train, val, test, num_classes=10, source=str(place.resolve()))


# Standardized tabular features z are stored as 0.5 + z / TABULAR_SPREAD: the decoders' sigmoid output
# then covers |z| < 4 (typical values); z-scores further out stay out of reach, as an anomaly should.
TABULAR_SPREAD = 8.0


def _standardize(train: Split, val: Split, test: Split) -> tuple[tuple[Split, Split, Split], tuple]:
    """Standardizes every split with the mean and std of `train` only; returns the splits and (mean, std)."""
    flat = train.x.reshape(len(train.x), -1).astype(np.float64)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    scale = lambda s: Split((0.5 + ((s.x.reshape(len(s.x), -1) - mean) / std) / TABULAR_SPREAD)
                            .astype(np.float32).reshape(s.x.shape), s.y)
    return (scale(train), scale(val), scale(test)), (mean, std)


def _tabular(name: str, features: np.ndarray, labels: np.ndarray, num_classes: int, *, val_size: int,
             test_size: int, split_seed: int) -> Dataset:
    """Fixed-seed stratified test split, then train/validation; features [N, D, 1, 1], standardized on train."""
    from sklearn.model_selection import train_test_split

    x = features.astype(np.float64)[:, :, None, None]
    y = labels.astype(np.int32)
    if not 0 < test_size < len(x) - 1:
        raise ConfigError(f"test size must be in (0, {len(x) - 1}), got {test_size}; change data.test_size.")
    rest, test_idx = train_test_split(np.arange(len(x)), test_size=test_size, stratify=y, random_state=split_seed + 1)
    rest, test_idx = np.sort(rest), np.sort(test_idx)
    train, val = split_train_val(x[rest], y[rest], val_size=val_size, seed=split_seed)
    (train, val, test), scaling = _standardize(train, val, Split(x[test_idx], y[test_idx]))
    return Dataset(name, train, val, test, num_classes=num_classes, scaling=scaling)


def load_breast_cancer(*, val_size: int = 40, test_size: int = 170, split_seed: int = 0) -> Dataset:
    """scikit-learn's Wisconsin breast cancer features (569 x 30), relabelled 0 = benign, 1 = malignant.

    Features are [N, 30, 1, 1], standardized with the training split's mean and std (see
    TABULAR_SPREAD). With data.normal_class=0 the malignant tumours are the anomalies.
    """
    from sklearn.datasets import load_breast_cancer as sk_load

    bunch = sk_load()
    return _tabular("breast_cancer", bunch.data, 1 - bunch.target, 2, val_size=val_size, test_size=test_size,
                    split_seed=split_seed)


def load_wine(*, val_size: int = 18, test_size: int = 60, split_seed: int = 0) -> Dataset:
    """scikit-learn's wine recognition features (178 x 13, three cultivars), [N, 13, 1, 1], standardized on train."""
    from sklearn.datasets import load_wine as sk_load

    bunch = sk_load()
    return _tabular("wine", bunch.data, bunch.target, 3, val_size=val_size, test_size=test_size,
                    split_seed=split_seed)


def standardize_series(train: Split, val: Split, test: Split) -> tuple[tuple[Split, Split, Split], tuple]:
    """Standardizes sequences [N, T, C] per channel with the training split's mean and std (over N and T).

    Values z are stored as 0.5 + z / TABULAR_SPREAD, like tabular features, so that every kind's
    sigmoid output covers |z| < 4; returns the splits and (mean [C], std [C]).
    """
    flat = train.x.reshape(-1, train.x.shape[-1]).astype(np.float64)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    scale = lambda s: Split((0.5 + ((s.x - mean) / std) / TABULAR_SPREAD).astype(np.float32), s.y)
    return (scale(train), scale(val), scale(test)), (mean, std)


def series_values(x_NxTxC: np.ndarray, scaling: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Undoes `standardize_series`: stored values back in the series' own units."""
    mean, std = scaling
    return (np.asarray(x_NxTxC, np.float64) - 0.5) * TABULAR_SPREAD * std + mean


def restrict_to_class(dataset: Dataset, normal_class: int) -> Dataset:
    """The one-class protocol: train and validation keep only `normal_class`; the test split is whole.

    The returned Dataset records `normal_class` (evaluation treats the other classes as anomalies).
    A standardized tabular dataset is re-standardized on the restricted training split, since a
    one-class detector never sees the anomalies' statistics.
    """
    c = int(normal_class)
    if not 0 <= c < dataset.num_classes:
        raise ConfigError(f"data.normal_class={normal_class} is out of range for {dataset.name}, which has "
                          f"{dataset.num_classes} classes (0..{dataset.num_classes - 1}); use -1 for all classes.")
    keep = lambda s: Split(s.x[s.y == c], s.y[s.y == c])
    train, val, test = keep(dataset.train), keep(dataset.val), dataset.test
    if len(train) == 0 or len(val) == 0:
        raise ConfigError(f"class {c} of {dataset.name} has {len(train)} training and {len(val)} validation "
                          "examples; a one-class run needs both.")
    scaling = dataset.scaling
    if scaling is not None and train.x.ndim == 3:  # sequences: per-channel statistics
        raw = lambda s: Split(series_values(s.x, scaling), s.y)
        (train, val, test), scaling = standardize_series(raw(train), raw(val), raw(test))
    elif scaling is not None:
        mean, std = scaling
        raw = lambda s: Split((((s.x.reshape(len(s.x), -1) - 0.5) * TABULAR_SPREAD) * std + mean)
                              .reshape(s.x.shape), s.y)
        (train, val, test), scaling = _standardize(raw(train), raw(val), raw(test))
    return dataclasses.replace(dataset, train=train, val=val, test=test, normal_class=c, scaling=scaling)


def check_images(x: np.ndarray, *, what: str = "data", unit_range: bool = False) -> None:
    """Raises DataError unless `x` is a float array of finite values, images [N, H, W, C] or sequences [N, T, C].

    With `unit_range`, values must also lie in [0, 1] (what a Bernoulli likelihood needs).
    """
    if callable(getattr(x, "chunks", None)):  # memory-mapped rows (aejax.data.lazy.Rows): a chunk at a time
        for part in x.chunks():
            check_images(part, what=what, unit_range=unit_range)
        return
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise DataError(f"{what} must have shape [N, H, W, C] (images) or [N, T, C] (sequences), got shape "
                        f"{x.shape}; add a trailing channel axis for grayscale images or single-channel series.")
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{what} must be floating point, got dtype {x.dtype}; scale pixels to [0, 1] floats.")
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise DataError(f"{what} contain {bad} NaN or infinite values; clean or drop those examples.")
    if unit_range and (x.min() < 0.0 or x.max() > 1.0):
        raise DataError(f"{what} lie in [{x.min():.4g}, {x.max():.4g}] but a Bernoulli likelihood needs "
                        "values in [0, 1]; rescale the data or use the 'mse' or 'gaussian' likelihood.")
