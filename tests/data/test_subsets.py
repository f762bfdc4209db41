"""Index tables of the options that choose rows (aejax.data.subsets): folds, one class, nested sizes."""

import numpy as np
import pytest

from aejax.data.subsets import choose_rows, selects_rows
from aejax.errors import ConfigError

Y_TRAIN = np.arange(1000) % 10
Y_VAL = np.arange(200) % 10


def test_no_option_chooses_no_rows():
    assert choose_rows(Y_TRAIN, Y_VAL, 10) is None and not selects_rows()


def test_folds_partition_the_training_split_and_validate_on_their_own_fold():
    tables = [choose_rows(Y_TRAIN, Y_VAL, 10, folds=5, fold=k) for k in range(5)]
    vals = [t.val for t in tables]
    assert all(t.val_from == "train" for t in tables)
    assert sorted(np.concatenate(vals).tolist()) == list(range(1000))  # the folds cover the split, disjoint
    for t in tables:
        assert not set(t.train.tolist()) & set(t.val.tolist())
        assert len(t.train) + len(t.val) == 1000
    assert not np.array_equal(vals[0], vals[1])


def test_one_class_keeps_that_class_in_training_and_validation():
    rows = choose_rows(Y_TRAIN, Y_VAL, 10, normal_class=3)
    assert (Y_TRAIN[rows.train] == 3).all() and len(rows.train) == 100
    assert rows.val_from == "val" and (Y_VAL[rows.val] == 3).all() and len(rows.val) == 20
    both = choose_rows(Y_TRAIN, Y_VAL, 10, normal_class=3, folds=4, fold=1)  # a fold of one class
    assert (Y_TRAIN[both.train] == 3).all() and (Y_TRAIN[both.val] == 3).all()


def test_training_sizes_are_nested():
    small, large = (choose_rows(Y_TRAIN, Y_VAL, 10, train_examples=n) for n in (100, 200))
    assert len(small.train) == 100 and len(large.train) == 200
    assert set(small.train.tolist()) <= set(large.train.tolist())
    assert len(set(small.train.tolist())) == 100 and not np.array_equal(small.train, np.arange(100))  # drawn
    folded = [choose_rows(Y_TRAIN, Y_VAL, 10, folds=5, fold=2, train_examples=n).train for n in (100, 300)]
    assert set(folded[0].tolist()) <= set(folded[1].tolist())


@pytest.mark.parametrize("options, message", [
    ({"folds": 1}, "data.folds must be 0"),
    ({"folds": 1001}, r"\[2, 1000\]"),
    ({"folds": 5, "fold": 5}, r"data.fold must lie in \[0, data.folds\)"),
    ({"fold": 2}, "set data.folds=K"),
    ({"train_examples": 1001}, "more than the 1000 training examples"),
    ({"train_examples": -1}, "train_examples must be >= 0"),
    ({"normal_class": 10}, "out of range"),
])
def test_impossible_values_are_refused_in_one_line(options, message):
    with pytest.raises(ConfigError, match=message) as err:
        choose_rows(Y_TRAIN, Y_VAL, 10, **options)
    assert "\n" not in str(err.value)
