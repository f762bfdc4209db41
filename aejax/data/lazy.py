"""Memory-mapped `.npy` sources: a training split larger than host RAM, read a chunk at a time.

`data.name=arrays` with `data.mmap=True` opens the examples with `np.load(mmap_mode="r")`: the
operating system pages rows in as they are read and drops them under memory pressure, so the
file may be larger than RAM. A split is then `Rows`: the memmap, the split's sorted row numbers
and the conversion to float32 (uint8 pixels / 255, float images as they are). Slicing or
gathering a `Rows` reads just those rows; nothing copies the whole split. The checks (NaN scan,
the [0, 1] range of float images) run chunk by chunk. The training split stays memory-mapped
(training then streams it from the host, see `aejax.train.feed`); the validation and test
splits (`data.val_size`, `data.test_size` rows) are read into memory.

The splits, the conversion and the source hash are those of the in-memory `data.name=arrays`
path (`aejax.data.arrays`), so both give the same examples in the same order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from aejax.data.arrays import _labels, _random_splits, _sha256_files
from aejax.data.datasets import Dataset, Split
from aejax.errors import ConfigError, DataError, DatasetNotFoundError

CHUNK_BYTES = 64 << 20  # rows read per chunk when scanning a file: about 64 MiB of float32


class Rows:
    """Examples [N, ...] as rows of a memory-mapped array, converted to float32 when read.

    Args:
      source: the memmap (uint8 pixels, or float images in [0, 1]).
      index: the split's row numbers in `source`, sorted ([N] int64).
    Indexing (`rows[3]`, `rows[:10]`, `rows[idx]`) returns float32 ndarrays of those rows only.
    `np.asarray(rows)` reads the whole split: only for code that needs it all in memory.
    """

    def __init__(self, source: np.ndarray, index: np.ndarray):
        self.source = source
        self.index = np.asarray(index, np.int64)
        self.shape = (len(self.index), *source.shape[1:])
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, idx) -> np.ndarray:
        """The float32 rows at positions `idx` of the split (read in file order, returned in `idx` order)."""
        idx = np.asarray(idx, np.int64).reshape(-1)
        rows = self.index[idx]
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), *self.shape[1:]), np.float32)
        out[order] = _to_float32(self.source[rows[order]])
        return out

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return _to_float32(self.source[self.index[key]])
        return _to_float32(self.source[self.index[key]]) if isinstance(key, slice) else self.take(key)

    def __array__(self, dtype=None, copy=None):
        del copy
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def chunks(self, rows_per_chunk: int | None = None) -> Iterator[np.ndarray]:
        """The split as consecutive float32 chunks (about `CHUNK_BYTES` each unless `rows_per_chunk`)."""
        step = rows_per_chunk or _rows_per_chunk(self.shape)
        for start in range(0, len(self), step):
            yield self[start:start + step]


def _to_float32(x: np.ndarray) -> np.ndarray:
    """uint8 pixels scaled by 1/255, float images cast: the conversion of `aejax.data.arrays`."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return x.astype(np.float32)


def _rows_per_chunk(shape) -> int:
    return max(1, CHUNK_BYTES // (4 * max(1, int(np.prod(shape[1:], dtype=np.int64)))))


def _open(path: str, what: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise DatasetNotFoundError(f"{what} file {path!r} does not exist (looked relative to {os.getcwd()!r}); "
                                   "set data.path to an existing .npy file.")
    if not path.endswith(".npy"):
        raise ConfigError(f"data.mmap=True memory-maps .npy files, but {path!r} is not one; save the examples "
                          "with numpy.save as .npy (labels in a second .npy), or set data.mmap=False.")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one line
        raise DataError(f"could not memory-map {path!r} as a .npy file ({type(e).__name__}: {e}); "
                        "save the arrays with numpy.save.") from None


def check_rows(x: np.ndarray, what: str) -> None:
    """Shape and dtype of a memory-mapped array of images, then NaNs and the [0, 1] range chunk by chunk."""
    if x.ndim != 4:
        hint = (" features [N, D] are standardized over the whole split in memory: set data.mmap=False."
                if x.ndim == 2 else " give images as [N, H, W, C] (x[..., None] for grayscale).")
        raise DataError(f"{what} must be images [N, H, W, C] to be memory-mapped, got shape {x.shape};" + hint)
    if len(x) == 0:
        raise DataError(f"{what} has no examples; give at least one example per split.")
    if x.dtype == np.uint8:
        return  # every uint8 value scales into [0, 1]
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{what} images must be float in [0, 1] or uint8 in [0, 255], got dtype {x.dtype}; "
                        "convert to uint8 or scale to [0, 1] floats.")
    step = _rows_per_chunk(x.shape)
    low, high, bad = np.inf, -np.inf, 0
    for start in range(0, len(x), step):
        part = np.asarray(x[start:start + step], np.float64)
        finite = np.isfinite(part)
        bad += int(part.size - np.count_nonzero(finite))
        if finite.any():
            low, high = min(low, float(part[finite].min())), max(high, float(part[finite].max()))
    if bad:
        raise DataError(f"{what} contains {bad} NaN or infinite values; clean or drop those examples.")
    if low < 0.0 or high > 1.0:
        raise DataError(f"{what} images lie in [{low:.4g}, {high:.4g}] but float images must lie in [0, 1]; "
                        "divide by their maximum (or pass uint8 pixels).")


def load_arrays_mmap(*, path: str, val_size: int = 180, test_size: int = 360, split_seed: int = 0) -> Dataset:
    """`data.name=arrays` with `data.mmap=True`: `x.npy` or `x.npy,y.npy`, the examples memory-mapped.

    Returns a Dataset whose training split's `x` is `Rows` (nothing read yet beyond the checks)
    and whose validation and test splits are in memory; the same splits, values and source
    hash as `aejax.data.arrays.load_arrays` on the same files.
    """
    files = [p.strip() for p in str(path).split(",") if p.strip()]
    if not files:
        raise ConfigError("data.name=arrays needs data.path: set data.path=FILE.npy or FILE.npy,LABELS.npy.")
    if len(files) > 2:
        raise ConfigError(f"data.path={path!r} names {len(files)} files; give the examples' .npy and optionally "
                          "the labels' .npy.")
    x = _open(files[0], "data.path")
    check_rows(x, "arrays examples")
    y_given = np.asarray(_open(files[1], "labels")) if len(files) == 2 else None
    y = _labels(y_given, len(x), "arrays examples")
    splits = _random_splits(np.arange(len(x)), y, val_size=val_size, test_size=test_size, split_seed=split_seed)
    train_idx, train_y = splits["train"]
    in_memory = {s: Split(Rows(x, splits[s][0])[:], splits[s][1]) for s in ("val", "test")}
    num_classes = int(y.max()) + 1 if y_given is not None else 1
    return Dataset("arrays", Split(Rows(x, train_idx), train_y), in_memory["val"], in_memory["test"],
                   num_classes=num_classes, source=",".join(os.path.abspath(f) for f in files),
                   source_hash=_sha256_files(files))


__all__ = ["Rows", "check_rows", "load_arrays_mmap"]
