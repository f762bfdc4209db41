"""Experiment files, configs that know their defaults, and overrides.

An experiment file defines `get_config()` (or `get_config(variant)`) returning an
`ml_collections.ConfigDict` that starts from `base_config(kind=..., net=...)` and sets only
what it changes, and optionally `sweep()` returning a list of override dicts.
`resolve_config` completes it: every option of the chosen kind, net and optimizer and every
hyperparameter of the kind gets its default unless set, so `--set` accepts all of them,
and a key that no kind, net or section knows is a ConfigError with a "did you mean".
Overrides use dotted keys (`model.code_size=64`); `NAME:VARIANT` picks a variant.
This is the one module that reads configs; `aejax.train.setup.setup_run` unpacks them.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import inspect
import json
import os
from pathlib import Path
from typing import Any, Mapping

import ml_collections

from aejax.errors import ConfigError, ExperimentNotFoundError
from aejax.models import KINDS, kind_hp_defaults, kind_options
from aejax.nets import net_options


def experiment_dirs() -> list[Path]:
    """Where experiment names are looked up: $AEJAX_EXPERIMENTS_DIR, ./experiments, the source tree's
    experiments/, and the copy a normal (non-editable) install puts in <prefix>/share/aejax/experiments."""
    import sys

    dirs = [Path.cwd() / "experiments", Path(__file__).resolve().parent.parent / "experiments",
            Path(sys.prefix) / "share" / "aejax" / "experiments"]
    if os.environ.get("AEJAX_EXPERIMENTS_DIR"):
        dirs.insert(0, Path(os.environ["AEJAX_EXPERIMENTS_DIR"]))
    return list(dict.fromkeys(dirs))


def split_variant(name_or_path: str) -> tuple[str, str | None]:
    """`fmnist_vae:beta4` -> ("fmnist_vae", "beta4"); a name without a variant -> (name, None)."""
    if ":" in name_or_path and not Path(name_or_path).exists():
        name, variant = name_or_path.rsplit(":", 1)
        return name, variant
    return name_or_path, None


def resolve_experiment(name_or_path: str) -> Path:
    """Turns an experiment path or name (`digits_ae`, `fmnist_vae:beta4`) into the path of its file."""
    name_or_path = split_variant(name_or_path)[0]
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


def list_experiments() -> list[tuple[str, Path]]:
    """(name, path) of every experiment file in `experiment_dirs()`, the first of each name."""
    found: dict[str, Path] = {}
    for d in experiment_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.py")):
                if not p.stem.startswith("_"):
                    found.setdefault(p.stem, p)
    return sorted(found.items())


def load_experiment(name_or_path: str):
    """Imports an experiment file and returns the module (with get_config, maybe sweep); a variant is ignored."""
    path = resolve_experiment(name_or_path)
    spec = importlib.util.spec_from_file_location(f"aejax_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "get_config", None)):
        raise ExperimentNotFoundError(f"{path} has no get_config() function; every experiment file must define one.")
    return module


def parse_value(text: str) -> Any:
    """Parses a command-line value: a Python literal if it is one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


# -- the sections every config has, with their defaults ------------------------------------------

DATA_DEFAULTS = {"name": "digits", "dir": "", "val_size": 180, "test_size": 360, "split_seed": 0,
                 "normal_class": -1, "path": "",
                 "patch_size": 32, "patch_stride": 8,  # colour_patches
                 "sample_rate": 8000, "frame_length": 256, "train_size": 4000}  # synthetic_audio
OPTIM_DEFAULTS = {"name": "adam", "schedule": "cosine", "warmup_steps": 0, "final_fraction": 0.0, "grad_clip": 0.0,
                  "weight_decay": 0.0, "momentum": 0.0, "b1": 0.9, "b2": 0.999, "eps": 1e-8}
TRAIN_DEFAULTS = {"epochs": 20, "batch_size": 128, "eval_batch_size": 1000, "checkpoint_every": 5,
                  "keep_checkpoints": 3, "skip_nonfinite": False, "tensorboard": True, "figures": True,
                  "progress": True, "data_parallel": False,
                  "mlflow": False, "mlflow_uri": "", "mlflow_experiment": "aejax"}
# Sequence sources (aejax.data.sequences): series length and channel count, 0 = the source's default.
DATA_DEFAULTS.update({"length": 0, "channels": 0})
MODEL_DEFAULTS = {"kind": "undercomplete", "code_size": 16}
HP_DEFAULTS = {"learning_rate": 1e-3}
# How the training split reaches the device (aejax.train.feed, aejax.data.lazy) and how often the loop
# returns to the host (aejax.train.fit); none of them changes what a run computes.
DATA_DEFAULTS.update({"on_device": True, "device_bytes_limit": 0, "stream_chunk_steps": 0, "mmap": False})
TRAIN_DEFAULTS.update({"eval_every": 1, "epochs_per_call": 1, "async_metrics": False})


def base_config(kind: str = "undercomplete", net: str = "mlp") -> ml_collections.ConfigDict:
    """The start of every experiment: shared sections with defaults, model `kind` on net `net`.

    The kind's own options and hyperparameters are filled in by `resolve_config` (after
    overrides, so that changing `model.kind` or `model.sparsity` picks that choice's
    defaults); set in the experiment file only what differs from them.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; choose one of {sorted(KINDS)}.")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data = ml_collections.ConfigDict(dict(DATA_DEFAULTS))
    c.model = ml_collections.ConfigDict({**MODEL_DEFAULTS, **net_options(), "kind": kind, "net": net})
    c.hp = ml_collections.ConfigDict(dict(HP_DEFAULTS))
    c.optim = ml_collections.ConfigDict(dict(OPTIM_DEFAULTS))
    c.train = ml_collections.ConfigDict(dict(TRAIN_DEFAULTS))
    return c


def with_variant(config: ml_collections.ConfigDict, variant: str | None,
                 variants: Mapping[str, Mapping[str, Any]]) -> ml_collections.ConfigDict:
    """Applies the dotted-key changes of `variants[variant]` to an experiment's config (big_vision's
    `get_config(arg)` style); None or "" is the experiment as written."""
    if not variant:
        return config
    if variant not in variants:
        close = difflib.get_close_matches(variant, list(variants), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise ConfigError(f"unknown variant {variant!r}; this experiment has {sorted(k for k in variants if k)}{hint}")
    for key, value in variants[variant].items():
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[leaf] = value
    return config


def _all_known(section: str) -> set[str]:
    """Keys of `section` that some kind or net understands (dropped, not rejected, when another is chosen)."""
    if section == "model":
        return set(MODEL_DEFAULTS) | set(net_options()) | {k for kind in KINDS for k in kind_options(kind)}
    return set(HP_DEFAULTS) | {k for kind in KINDS for k in kind_hp_defaults(kind, {})}


def _suggest(key: str, known) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}."


def _conform(values: dict, schema: Mapping[str, Any], section: str, droppable: set[str]) -> dict:
    """`values` restricted to `schema`'s keys, missing ones at their defaults; keys that another
    kind or net understands are dropped, keys nobody understands are an error."""
    for key in values:
        if key not in schema and key not in droppable:
            raise ConfigError(f"unknown config key {section + '.' + key!r}" + _suggest(f"{section}.{key}", [f"{section}.{k}" for k in schema]))
    return {k: values.get(k, default) for k, default in schema.items()}


def _coerce(key: str, old: Any, value: Any) -> Any:
    """The override `value` in the type of the default `old`, or a ConfigError saying which type."""
    if isinstance(old, tuple) and isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if old is not None and type(value) is not type(old):
        article = "an" if type(old).__name__[0] in "aeiou" else "a"
        raise ConfigError(f"config key {key!r} holds {type(old).__name__} values, got {value!r}; "
                          f"give {article} {type(old).__name__}.")
    return value


def _apply(section: str, values: dict, overrides: dict) -> None:
    """Applies (and removes from `overrides`) every `section.key` override; unknown keys are errors."""
    for key in [k for k in overrides if k.split(".", 1)[0] == section and "." in k]:
        name = key.split(".", 1)[1]
        if name not in values:
            raise ConfigError(f"unknown config key {key!r}" + _suggest(key, [f"{section}.{k}" for k in values]))
        values[name] = _coerce(key, values[name], overrides.pop(key))


def resolve_config(config: ml_collections.ConfigDict,
                   overrides: Mapping[str, Any] | None = None) -> ml_collections.ConfigDict:
    """The complete, locked config: `config` with `overrides` applied and every default filled in.

    Order: model.kind and model.net first, then the model section (the kind's and the net's
    options), then hp (the kind's hyperparameters for those options), then the other sections.
    """
    tree = config.to_dict()
    overrides = dict(overrides or {})
    sections = {"data": DATA_DEFAULTS, "optim": OPTIM_DEFAULTS, "train": TRAIN_DEFAULTS}
    for key in tree:
        if key not in {"seed", "model", "hp", *sections}:
            raise ConfigError(f"unknown config section {key!r}" + _suggest(key, ["seed", "model", "hp", *sections]))

    model = dict(tree.get("model", {}))
    for key in ("model.kind", "model.net"):
        if key in overrides:
            model[key.split(".")[1]] = _coerce(key, "", overrides.pop(key))
    kind = model.get("kind", MODEL_DEFAULTS["kind"])
    if kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; choose one of {sorted(KINDS)}.")
    model_schema = {**MODEL_DEFAULTS, **net_options(), **kind_options(kind)}
    model = _conform(model, model_schema, "model", _all_known("model"))
    _apply("model", model, overrides)

    kind_model_options = {k: v for k, v in model.items() if k in kind_options(kind)}
    hp_schema = {**HP_DEFAULTS, **kind_hp_defaults(kind, kind_model_options)}
    hp = _conform(dict(tree.get("hp", {})), hp_schema, "hp", _all_known("hp"))
    _apply("hp", hp, overrides)

    resolved = {"seed": tree.get("seed", 0), "model": model, "hp": hp}
    for name, defaults in sections.items():
        resolved[name] = _conform(dict(tree.get(name, {})), defaults, name, set())
        _apply(name, resolved[name], overrides)
    if "seed" in overrides:
        resolved["seed"] = _coerce("seed", 0, overrides.pop("seed"))
    if overrides:
        key = next(iter(overrides))
        known = ["seed"] + [f"{s}.{k}" for s in resolved if isinstance(resolved[s], dict) for k in resolved[s]]
        raise ConfigError(f"unknown config key {key!r}" + _suggest(key, known))
    out = ml_collections.ConfigDict(resolved, type_safe=True)
    out.lock()
    return out


def apply_overrides(config: ml_collections.ConfigDict, overrides: Mapping[str, Any]) -> ml_collections.ConfigDict:
    """`resolve_config(config, overrides)`: a complete, locked copy with the overrides applied."""
    return resolve_config(config, overrides)


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
    """Loads an experiment's config (`NAME` or `NAME:VARIANT`), applies overrides, fills every default."""
    module = load_experiment(name_or_path)
    variant = split_variant(name_or_path)[1]
    takes_arg = bool(inspect.signature(module.get_config).parameters)
    if variant is not None and not takes_arg:
        raise ConfigError(f"{name_or_path}: this experiment has no variants (its get_config() takes no argument); "
                          "drop the ':VARIANT' suffix.")
    config = module.get_config(variant) if takes_arg else module.get_config()
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"{name_or_path}: get_config() must return an ml_collections.ConfigDict.")
    return resolve_config(config, overrides or {})


def config_to_json(config: ml_collections.ConfigDict) -> str:
    return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str)


def config_from_json(text: str) -> ml_collections.ConfigDict:
    """The config written by `config_to_json`, tuples restored, resolved and locked."""
    tree = json.loads(text)
    for section in tree.values():  # JSON turned the config's tuples into lists
        if isinstance(section, dict):
            for name, value in section.items():
                if isinstance(value, list):
                    section[name] = tuple(value)
    return resolve_config(ml_collections.ConfigDict(tree))
