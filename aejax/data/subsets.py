"""Which examples of one loaded dataset a run sees: index tables for one-class runs, folds and nested sizes.

A run's data options `data.normal_class`, `data.folds`, `data.fold` and `data.train_examples` choose rows of
the dataset; they do not change its arrays. `choose_rows` turns them into index tables (`Rows`) over the
one loaded dataset, so that runs differing only in these options share the arrays (and, in a population,
one copy of them on the device). `view` materializes a run's own Dataset from them (evaluation, baselines,
anything that needs a standalone dataset).

- `data.folds` K >= 2 and `data.fold` k in [0, K): the training split is cut into K near-equal folds of a
  permutation drawn from `SPLIT_SEED` (the same folds for every run seed); the run trains on the rows not
  in fold k and validates on fold k. The test split is unchanged.
- `data.normal_class` C >= 0: the training and validation rows keep class C only (the test split stays whole).
- `data.train_examples` N > 0: the first N of the candidate training rows in a second fixed permutation of
  the training split, so a larger N contains every row of a smaller one (nested subsets, drawn once).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from aejax.errors import ConfigError

SPLIT_SEED = 20261207  # fixed: folds and nested subsets do not depend on the run's seed
SUBSET_KEYS = ("normal_class", "folds", "fold", "train_examples")  # data.* options that only choose rows


@dataclasses.dataclass(frozen=True)
class Rows:
    """A run's rows: `train` indices into the training split, `val` indices into the split `val_from`
    ("train" for a fold, "val" otherwise), both sorted int32."""

    train: np.ndarray
    val: np.ndarray
    val_from: str = "val"


def selects_rows(*, normal_class: int = -1, folds: int = 0, fold: int = 0, train_examples: int = 0) -> bool:
    """True when the options choose a subset of the rows (else the run sees the whole splits)."""
    return normal_class >= 0 or folds != 0 or fold != 0 or train_examples != 0


def fold_tables(num_train: int, folds: int) -> list[np.ndarray]:
    """The K folds of a training split of `num_train` rows: sorted index arrays of a fixed permutation."""
    order = np.random.default_rng(SPLIT_SEED).permutation(num_train)
    return [np.sort(part).astype(np.int32) for part in np.array_split(order, folds)]


def nested_order(num_train: int) -> np.ndarray:
    """The fixed order in which `data.train_examples` takes training rows (rank of each row)."""
    order = np.random.default_rng(SPLIT_SEED + 1).permutation(num_train)
    rank = np.empty(num_train, np.int64)
    rank[order] = np.arange(num_train)
    return rank


def check_row_options(num_train: int, num_classes: int, *, normal_class: int = -1, folds: int = 0, fold: int = 0,
                      train_examples: int = 0) -> None:
    """The one-line refusals of impossible values (before anything is chosen, compiled or written)."""
    if folds < 0 or folds == 1 or folds > num_train:
        raise ConfigError(f"data.folds must be 0 (no cross-validation) or in [2, {num_train}] (the training split's "
                          f"size), got {folds}.")
    if (folds == 0 and fold != 0) or (folds and not 0 <= fold < folds):
        raise ConfigError(f"data.fold must lie in [0, data.folds) = [0, {folds}), got {fold}"
                          + ("; set data.folds=K to cross-validate." if folds == 0 else "."))
    if train_examples < 0:
        raise ConfigError(f"data.train_examples must be >= 0 (0: every training example), got {train_examples}.")
    if not -1 <= normal_class < num_classes:
        raise ConfigError(f"data.normal_class={normal_class} is out of range for a dataset of {num_classes} classes "
                          f"(0..{num_classes - 1}); use -1 for all classes.")


def choose_rows(train_y: np.ndarray, val_y: np.ndarray, num_classes: int, *, normal_class: int = -1,
                folds: int = 0, fold: int = 0, train_examples: int = 0) -> Rows | None:
    """The run's index tables (None when the options choose no subset). Raises ConfigError, in one line, for
    values that cannot be: see `check_row_options`, a class with no training or validation rows, more
    training examples than there are."""
    options = dict(normal_class=normal_class, folds=folds, fold=fold, train_examples=train_examples)
    if not selects_rows(**options):
        return None
    train_y, val_y = np.asarray(train_y), np.asarray(val_y)
    check_row_options(len(train_y), num_classes, **options)
    if folds:
        parts = fold_tables(len(train_y), folds)
        val, val_from = parts[fold], "train"
        train = np.sort(np.concatenate([p for i, p in enumerate(parts) if i != fold]))
    else:
        train, val, val_from = np.arange(len(train_y)), np.arange(len(val_y)), "val"
    if normal_class >= 0:
        train = train[train_y[train] == normal_class]
        val = val[(train_y if val_from == "train" else val_y)[val] == normal_class]
        if len(train) == 0 or len(val) == 0:
            raise ConfigError(f"class {normal_class} has {len(train)} training and {len(val)} validation examples "
                              "here; a one-class run needs both.")
    if train_examples:
        if train_examples > len(train):
            raise ConfigError(f"data.train_examples={train_examples} is more than the {len(train)} training examples "
                              "these options leave; use at most that many (0: all).")
        rank = nested_order(len(train_y))
        train = np.sort(train[np.argsort(rank[train], kind="stable")[:train_examples]])
    return Rows(train.astype(np.int32), val.astype(np.int32), val_from)


def view(dataset, rows: Rows | None, *, normal_class: int = -1):
    """The run's own Dataset: its training and validation rows, the whole test split (`normal_class`
    recorded for the anomaly task when >= 0)."""
    if rows is None:
        return dataset
    split = type(dataset.train)
    take = lambda s, idx: split(s.x[idx], s.y[idx])
    val_source = dataset.train if rows.val_from == "train" else dataset.val
    return dataclasses.replace(dataset, train=take(dataset.train, rows.train), val=take(val_source, rows.val),
                               normal_class=normal_class if normal_class >= 0 else dataset.normal_class)


__all__ = ["Rows", "SPLIT_SEED", "SUBSET_KEYS", "check_row_options", "choose_rows", "fold_tables", "nested_order",
           "selects_rows", "view"]
