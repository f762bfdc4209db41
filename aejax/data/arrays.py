"""Your own data: `.npy`/`.npz` files or in-memory arrays as a `Dataset`.

Images are `[N, H, W, C]`, float in [0, 1] or uint8 (scaled by 1/255). Features are `[N, D]`;
they become `[N, D, 1, 1]`, standardized with the training split's mean and std like the
tabular sources (see `TABULAR_SPREAD`). Sequences are `[N, T, C]` of any real values; they are
standardized per channel with the training split's mean and std, like the built-in sequence
sources (`aejax.data.datasets.standardize_series`). Labels are optional (`[N]` non-negative integers;
without them every example has label 0 and the dataset one class).

Files (`data.name=arrays`, `data.path=...`):

- `x.npy`: the examples; `x.npy,y.npy`: examples and labels in two files.
- `data.npz` with key `x` (and optionally `y`), or predefined splits with keys `x_train`, `x_test`
  and optionally `x_val` (each with `y_*` when labelled); without `x_val` the validation split is
  carved from `x_train` with `data.val_size`.

Without predefined splits the test and validation splits are drawn with a permutation fixed by
`data.split_seed` (sizes `data.test_size`, `data.val_size`), as for digits. The Dataset records
where the arrays came from (`source`) and a SHA-256 of the file bytes or array contents
(`source_hash`), so a run can say which data it was trained on.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from aejax.data.datasets import (
    Dataset,
    Split,
    _standardize,
    check_images,
    split_train_val,
    standardize_series,
)
from aejax.errors import ConfigError, DataError, DatasetNotFoundError

SPLITS = ("train", "val", "test")


def _sha256_files(paths: list[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _sha256_arrays(arrays: list[np.ndarray | None]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _read(path: str, what: str) -> np.ndarray | dict[str, np.ndarray]:
    if not os.path.isfile(path):
        raise DatasetNotFoundError(f"{what} file {path!r} does not exist (looked relative to {os.getcwd()!r}); "
                                   "set data.path to an existing .npy or .npz file.")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one line
        raise DataError(f"could not read {path!r} as a .npy or .npz file ({type(e).__name__}: {e}); "
                        "save the arrays with numpy.save or numpy.savez.") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            return {k: loaded[k] for k in loaded.files}
    return loaded


def _labels(y, n: int, what: str) -> np.ndarray:
    """Checks labels against the examples' count; None becomes zeros."""
    if y is None:
        return np.zeros(n, np.int32)
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{what} labels must have shape [N], got shape {y.shape}; pass one integer class per example.")
    if len(y) != n:
        raise DataError(f"{what} has {n} examples but {len(y)} labels; give exactly one label per example.")
    integral = np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_) or (
        np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)))
    if not integral:
        raise DataError(f"{what} labels must be integer class indices, got dtype {y.dtype}; "
                            "map the classes to 0, 1, 2, ...")
    if len(y) and y.min() < 0:
        raise DataError(f"{what} labels must be non-negative class indices, got {y.min()}; map the classes to 0, 1, 2, ...")
    return y.astype(np.int32)


LAYOUTS = {2: "features", 3: "sequences", 4: "images"}  # by the rank of the examples array


def _examples(x, what: str) -> tuple[np.ndarray, str]:
    """Checks one array of examples; returns it as float32 (images) or float64 (features, sequences) and its layout."""
    x = np.asarray(x)
    if x.ndim not in LAYOUTS:
        raise DataError(f"{what} must have shape [N, H, W, C] (images), [N, T, C] (sequences) or [N, D] (features), "
                        f"got shape {x.shape}; reshape it to one of these (a single-channel series or grayscale "
                        "image needs a trailing channel axis, x[..., None]).")
    layout = LAYOUTS[x.ndim]
    if len(x) == 0:
        raise DataError(f"{what} has no examples; give at least one example per split.")
    if x.dtype == np.uint8:
        if layout != "images":
            return x.astype(np.float64), layout
        return x.astype(np.float32) / np.float32(255.0), layout
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_):
        raise DataError(f"{what} must hold numbers, got dtype {x.dtype}; convert it to float32.")
    xf = x.astype(np.float64)
    if not np.all(np.isfinite(xf)):
        bad = int(xf.size - np.count_nonzero(np.isfinite(xf)))
        raise DataError(f"{what} contains {bad} NaN or infinite values; clean or drop those examples.")
    if layout != "images":
        return xf, layout
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{what} images must be float in [0, 1] or uint8 in [0, 255], got dtype {x.dtype}; "
                        "convert to uint8 or scale to [0, 1] floats.")
    if xf.min() < 0.0 or xf.max() > 1.0:
        raise DataError(f"{what} images lie in [{xf.min():.4g}, {xf.max():.4g}] but float images must lie in "
                        "[0, 1]; divide by their maximum (or pass uint8 pixels), or give them as [N, D] features.")
    return xf.astype(np.float32), layout


def _finish(name: str, splits: dict[str, tuple[np.ndarray, np.ndarray]], layout: str, labelled: bool,
            source: str, source_hash: str) -> Dataset:
    train, val, test = (Split(*splits[s]) for s in SPLITS)
    scaling = None
    if layout == "features":
        (train, val, test), scaling = _standardize(
            *(Split(s.x[:, :, None, None], s.y) for s in (train, val, test)))
    elif layout == "sequences":
        (train, val, test), scaling = standardize_series(train, val, test)
    num_classes = int(max(int(s.y.max()) for s in (train, val, test) if len(s)) + 1) if labelled else 1
    dataset = Dataset(name, train, val, test, num_classes=num_classes, scaling=scaling,
                      source=source, source_hash=source_hash)
    for s in SPLITS:
        check_images(getattr(dataset, s).x, what=f"{name} {s} images")
    return dataset


def _random_splits(x: np.ndarray, y: np.ndarray, *, val_size: int, test_size: int,
                   split_seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fixed-seed test split (seed split_seed + 1), then train/validation (seed split_seed), as for digits."""
    if not 0 < test_size < len(x) - 1:
        raise ConfigError(f"data.test_size must be in (0, {len(x) - 1}) for these {len(x)} examples, "
                          f"got {test_size}; change data.test_size.")
    order = np.random.default_rng(split_seed + 1).permutation(len(x))
    test_idx, rest_idx = np.sort(order[:test_size]), np.sort(order[test_size:])
    train, val = split_train_val(x[rest_idx], y[rest_idx], val_size=val_size, seed=split_seed)
    return {"train": (train.x, train.y), "val": (val.x, val.y), "test": (x[test_idx], y[test_idx])}


def _build(name: str, xs: dict[str, np.ndarray], ys: dict[str, np.ndarray | None], *, val_size: int,
           test_size: int, split_seed: int, source: str, source_hash: str) -> Dataset:
    """xs/ys keyed by "all" (split here) or by "train"/"test" (and optionally "val")."""
    labelled = any(v is not None for v in ys.values())
    if labelled and any(ys.get(k) is None for k in xs):
        missing = sorted(k for k in xs if ys.get(k) is None)
        raise DataError(f"{name}: labels are given for some splits but not for {missing}; "
                        "give labels for every split or for none.")
    checked = {}
    for k, x in xs.items():
        what = f"{name} examples" if k == "all" else f"{name} x_{k}"
        cx, layout = _examples(x, what)
        checked[k] = (cx, _labels(ys.get(k), len(cx), what), layout)
    kinds = {layout for _, _, layout in checked.values()}
    shapes = {c[0].shape[1:] for c in checked.values()}
    if len(kinds) > 1 or len(shapes) > 1:
        raise DataError(f"{name}: the splits' examples have different shapes {sorted(map(str, shapes))}; "
                        "every split must have the same per-example shape.")
    layout = kinds.pop()
    if "all" in checked:
        x, y, _ = checked["all"]
        splits = _random_splits(x, y, val_size=val_size, test_size=test_size, split_seed=split_seed)
    else:
        splits = {k: (x, y) for k, (x, y, _) in checked.items()}
        if "val" not in splits:
            train, val = split_train_val(*splits["train"], val_size=val_size, seed=split_seed)
            splits["train"], splits["val"] = (train.x, train.y), (val.x, val.y)
    return _finish(name, splits, layout, labelled, source, source_hash)


def arrays_dataset(x, y=None, *, val_size: int, test_size: int, split_seed: int = 0,
                   name: str = "arrays") -> Dataset:
    """A Dataset from in-memory arrays (the same checks and splits as `data.name=arrays`).

    Args:
      x: images [N, H, W, C] (float in [0, 1], or uint8), sequences [N, T, C] or features [N, D].
      y: optional labels [N] (non-negative integers).
      val_size, test_size: split sizes, drawn with a permutation fixed by `split_seed`.
      name: the Dataset's name.

    Returns:
      A Dataset with `source="in-memory arrays"` and `source_hash` the SHA-256 of the arrays'
      dtype, shape and bytes. Pass it as `fit(config, workdir, dataset=...)`.
    """
    return _build(name, {"all": x}, {"all": y}, val_size=val_size, test_size=test_size, split_seed=split_seed,
                  source="in-memory arrays", source_hash=_sha256_arrays([np.asarray(x), None if y is None else np.asarray(y)]))


def load_arrays(*, path: str = "", val_size: int = 180, test_size: int = 360, split_seed: int = 0) -> Dataset:
    """`data.name=arrays`: examples (and labels) from `.npy`/`.npz` files named by `data.path`.

    `path` is `x.npy`, `x.npy,y.npy` (labels in a second file), or `data.npz` with keys `x`
    (and `y`), or `x_train`/`x_test` (and `x_val`, `y_*`) for predefined splits. (`data.mmap=True`
    memory-maps `.npy` examples instead: `aejax.data.lazy.load_arrays_mmap`.)
    """
    if not path:
        raise ConfigError("data.name=arrays needs data.path: set data.path=FILE.npy, FILE.npy,LABELS.npy "
                          "or FILE.npz (keys x and y, or x_train, x_val, x_test with y_*).")
    files = [p.strip() for p in str(path).split(",") if p.strip()]
    if len(files) > 2:
        raise ConfigError(f"data.path={path!r} names {len(files)} files; give one (examples, or an .npz) "
                          "or two (examples,labels).")
    first = _read(files[0], "data.path")
    labels = _read(files[1], "labels") if len(files) == 2 else None
    if isinstance(labels, dict):
        raise ConfigError(f"the labels file {files[1]!r} is an .npz archive; save the labels with numpy.save as .npy.")
    if isinstance(first, dict):
        if labels is not None:
            raise ConfigError(f"{files[0]!r} is an .npz archive; put the labels in it under key 'y' "
                              "(or 'y_train', ...) instead of a second file.")
        if any(f"x_{s}" in first for s in SPLITS):
            missing = [f"x_{s}" for s in ("train", "test") if f"x_{s}" not in first]
            if missing:
                raise DataError(f"{files[0]!r} has predefined splits but no {' or '.join(missing)} "
                                f"(keys: {sorted(first)}); give x_train and x_test (x_val is optional).")
            xs = {s: first[f"x_{s}"] for s in SPLITS if f"x_{s}" in first}
            ys = {s: first.get(f"y_{s}") for s in xs}
        elif "x" in first:
            xs, ys = {"all": first["x"]}, {"all": first.get("y")}
        else:
            raise DataError(f"{files[0]!r} has keys {sorted(first)} but neither 'x' nor 'x_train'/'x_test'; "
                            "save the examples under key 'x' (labels under 'y').")
    else:
        xs, ys = {"all": first}, {"all": labels}
    return _build("arrays", xs, ys, val_size=val_size, test_size=test_size, split_seed=split_seed,
                  source=",".join(os.path.abspath(f) for f in files), source_hash=_sha256_files(files))


__all__ = ["arrays_dataset", "load_arrays"]
