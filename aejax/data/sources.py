"""The dataset sources by name, what options each takes, and `load_dataset`.

A source is a function whose keyword-only parameters, each with its default, are its options:
the `data.*` keys a config may set for it (`source_options`). Sources live in their own
modules (`datasets`: digits, fashion_mnist, breast_cancer, wine; `faces`: olivetti_faces; `arrays` and `lazy`: your
files; `colour`; `audio`; `sequences`), none of which imports this registry back.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable

from aejax.data import audio, colour, datasets, faces, lazy, sequences
from aejax.data.arrays import load_arrays
from aejax.data.datasets import Dataset, check_images
from aejax.errors import ConfigError, check_known


def load_arrays_source(*, path: str = "", val_size: int = 180, test_size: int = 360, split_seed: int = 0,
                       mmap: bool = False) -> Dataset:
    """`data.name=arrays`: your `.npy`/`.npz` files (`aejax.data.arrays`), memory-mapped with `mmap`
    (`aejax.data.lazy`: a training split larger than host RAM)."""
    load = lazy.load_arrays_mmap if mmap else load_arrays
    return load(path=path, val_size=val_size, test_size=test_size, split_seed=split_seed)


SOURCES: dict[str, Callable[..., Dataset]] = {
    "digits": datasets.load_digits,
    "fashion_mnist": datasets.load_fashion_mnist,
    "breast_cancer": datasets.load_breast_cancer,
    "wine": datasets.load_wine,
    "olivetti_faces": faces.load_olivetti_faces,
    "arrays": load_arrays_source,
    "mnist1d": sequences.load_mnist1d,
    "synthetic_series": sequences.load_synthetic_series,
    "series_anomalies": sequences.load_series_anomalies,
    "colour_patches": colour.load_colour_patches,
    "synthetic_audio": audio.load_synthetic_audio,
}


def _source(name: str) -> Callable[..., Dataset]:
    if name not in SOURCES:
        close = difflib.get_close_matches(str(name), list(SOURCES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; choose one of {sorted(SOURCES)}."
        raise ConfigError(f"unknown dataset {name!r}{hint}")
    return SOURCES[name]


def source_options(name: str) -> dict[str, Any]:
    """The options source `name` takes, with their defaults (its keyword-only parameters)."""
    return {p.name: p.default for p in inspect.signature(_source(name)).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def option_owner(option: str, name: str) -> str | None:
    """The sentence naming the sources that take `option` (dataset `name` does not), or None when none does."""
    owners = [source for source in SOURCES if option in source_options(source)]
    if not owners:
        return None
    return f"data.{option} is an option of dataset {'/'.join(owners)}; this run's dataset is {name}."


def load_dataset(name: str, **options: Any) -> Dataset:
    """Loads dataset `name` (see `SOURCES`) with its options, then validates its arrays."""
    check_known(options, source_options(name), prefix="data.", why=lambda option: option_owner(option, name))
    dataset = _source(name)(**options)
    for split_name in ("train", "val", "test"):
        check_images(getattr(dataset, split_name).x, what=f"{dataset.name} {split_name} images")
    return dataset


__all__ = ["SOURCES", "load_dataset", "option_owner", "source_options"]
