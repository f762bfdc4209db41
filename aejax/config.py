"""Experiment files and overrides.

An experiment file defines `get_config()` returning a locked `ml_collections.ConfigDict`
and optionally `sweep()` returning a list of override dicts. Overrides use dotted keys
(`model.code_size=64`); an unknown key is a ConfigError with a "did you mean".
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Mapping

import ml_collections

from aejax.errors import ConfigError, ExperimentNotFoundError


def experiment_dirs() -> list[Path]:
    """Where experiment names are looked up: ./experiments and the source tree's experiments/."""
    dirs = [Path.cwd() / "experiments", Path(__file__).resolve().parent.parent / "experiments"]
    if os.environ.get("AEJAX_EXPERIMENTS_DIR"):
        dirs.insert(0, Path(os.environ["AEJAX_EXPERIMENTS_DIR"]))
    return list(dict.fromkeys(dirs))


def resolve_experiment(name_or_path: str) -> Path:
    """Turns an experiment path or name (`digits_ae`) into the path of its file."""
    path = Path(name_or_path)
    if path.is_file():
        return path.resolve()
    stem = path.name[:-3] if path.name.endswith(".py") else path.name
    for d in experiment_dirs():
        candidate = d / f"{stem}.py"
        if candidate.is_file():
            return candidate.resolve()
    known = sorted({p.stem for d in experiment_dirs() if d.is_dir() for p in d.glob("*.py")
                    if not p.stem.startswith("_")})
    close = difflib.get_close_matches(stem, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ExperimentNotFoundError(
        f"no experiment {name_or_path!r}: it is not a file and no {stem}.py is in "
        + ", ".join(str(d) for d in experiment_dirs()) + f" (known: {', '.join(known) or 'none'}).{hint}")


def load_experiment(name_or_path: str):
    """Imports an experiment file and returns the module (with get_config, maybe sweep)."""
    path = resolve_experiment(name_or_path)
    spec = importlib.util.spec_from_file_location(f"aejax_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "get_config", None)):
        raise ExperimentNotFoundError(f"{path} has no get_config() function; every experiment file must define one.")
    return module


def _flat_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in config.items():
        full = f"{prefix}{k}"
        keys.append(full)
        if isinstance(v, ml_collections.ConfigDict):
            keys += _flat_keys(v, full + ".")
    return keys


def parse_value(text: str) -> Any:
    """Parses a command-line value: a Python literal if it is one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(config: ml_collections.ConfigDict, overrides: Mapping[str, Any]) -> ml_collections.ConfigDict:
    """Returns a copy of `config` with dotted-key overrides applied; unknown keys are errors."""
    config = ml_collections.ConfigDict(config.to_dict(), type_safe=True)
    known = _flat_keys(config)
    for key, value in overrides.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}."
            raise ConfigError(f"unknown config key {key!r}{hint}")
        node, *rest = key.rsplit(".", 1)[::-1]
        parent = config
        if rest:
            for part in rest[0].split("."):
                parent = parent[part]
        old = parent[node]
        if isinstance(old, tuple) and isinstance(value, list):
            value = tuple(value)
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        try:
            parent[node] = value
        except (TypeError, ValueError) as err:
            raise ConfigError(f"config key {key!r} holds {type(old).__name__} values, got {value!r}; "
                              f"give a {type(old).__name__}.") from err
    config.lock()
    return config


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turns ["a.b=1", "c=x"] into {"a.b": 1, "c": "x"}."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE; write e.g. --set model.code_size=32.")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(value.strip())
    return out


def get_experiment_config(name_or_path: str, overrides: Mapping[str, Any] | None = None) -> ml_collections.ConfigDict:
    """Loads an experiment's config and applies overrides."""
    module = load_experiment(name_or_path)
    config = module.get_config()
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"{name_or_path}: get_config() must return an ml_collections.ConfigDict.")
    return apply_overrides(config, overrides or {})


def config_to_json(config: ml_collections.ConfigDict) -> str:
    return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str)


def base_config() -> ml_collections.ConfigDict:
    """The fields every experiment shares, with defaults; experiments start from this."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = ml_collections.ConfigDict({"name": "digits", "dir": "", "val_size": 180, "test_size": 360,
                                        "split_seed": 0})
    c.model = ml_collections.ConfigDict({"kind": "undercomplete", "net": "mlp", "code_size": 16,
                                         "hidden": (128, 64), "channels": (32, 64), "activation": "gelu",
                                         "likelihood": "mse"})
    c.hp = ml_collections.ConfigDict({"learning_rate": 1e-3})
    c.optim = ml_collections.ConfigDict({"name": "adam", "schedule": "cosine", "warmup_steps": 0,
                                         "final_fraction": 0.0, "grad_clip": 0.0, "weight_decay": 0.0,
                                         "momentum": 0.0})
    c.train = ml_collections.ConfigDict({"epochs": 20, "batch_size": 128, "eval_batch_size": 1000,
                                         "checkpoint_every": 5, "keep_checkpoints": 3, "skip_nonfinite": False,
                                         "tensorboard": True, "figures": True, "progress": True})
    return c
