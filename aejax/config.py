"""Experiment files, configs that know their defaults, and overrides.

An experiment file defines `get_config()` (or `get_config(variant)`) returning an
`ml_collections.ConfigDict` that starts from `base_config(kind=..., net=...)` and sets only
what it changes, and optionally `sweep()` returning a list of override dicts.
`resolve_config` completes it with what the run uses and nothing else: the chosen kind's options
on the chosen net, the kind's hyperparameters, the chosen dataset's options, and the optimizer
and loop options (`OptimOptions`, `TrainOptions`, `FeedOptions`: every default declared once,
here or in the kind, net or source that reads it). An override the run would not use is a
ConfigError naming who uses it; a key nothing knows is one with a "did you mean".
Overrides use dotted keys (`model.code_size=64`); `NAME:VARIANT` picks a variant. Durations
(`optim.warmup`, `train.eval_every`, ...) take a unit (`duration`, `aejax.durations`).
This is the one module that reads configs; `aejax.train.setup.setup_run` unpacks them."""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib.util
import inspect
import json
import os
from pathlib import Path
from typing import Any, Mapping

import ml_collections

from aejax import durations
from aejax.data.sources import option_owner, source_options
from aejax.errors import ConfigError, ExperimentNotFoundError, check_known, unknown_key
from aejax.models import KINDS, kind_durations, kind_hp_defaults, kind_options, model_schema


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


# -- the options of every section, with their defaults (declared once, here) --------------------------

def _duration(default, unit: str, *, clock: bool = False):
    """A dataclass field holding a duration (`aejax.durations`): a bare number means `unit`."""
    return dataclasses.field(default=default, metadata={"unit": unit, "clock": clock})


@dataclasses.dataclass(frozen=True)
class OptimOptions:
    """config.optim: the optax chain `aejax.train.optim.make_optimizer` builds.

    name: "adam", "adamw" (decoupled weight decay) or "sgd"; schedule: "constant", "cosine",
    "warmup_cosine" or "linear", a multiplier of hp.learning_rate that rises over `warmup`, then decays
    over `decay` (both durations counted from step 0) to `final_fraction` and stays there.
    """

    name: str = "adam"
    schedule: str = "cosine"
    warmup: Any = _duration(0, "steps")
    decay: Any = _duration("100%", "steps")
    final_fraction: float = 0.0
    grad_clip: float = 0.0
    weight_decay: float = 0.0
    momentum: float = 0.0
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    @staticmethod
    def inactive_options(o: Mapping[str, Any]) -> dict[str, tuple[str, tuple]]:
        """Options these values leave unused: {option: (the option it depends on, the values that use it)}."""
        out = {}
        if o["name"] == "sgd":
            out.update(dict.fromkeys(("b1", "b2", "eps"), ("name", ("adam", "adamw"))))
        if o["name"] != "adamw":
            out["weight_decay"] = ("name", ("adamw",))
        if o["name"] != "sgd":
            out["momentum"] = ("name", ("sgd",))
        if o["schedule"] != "warmup_cosine":
            out["warmup"] = ("schedule", ("warmup_cosine",))
        if o["schedule"] == "constant":
            out.update(dict.fromkeys(("decay", "final_fraction"), ("schedule", ("cosine", "warmup_cosine", "linear"))))
        return out


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """config.train: the loop's options (`aejax.train.loop`). Those that say how a run is shown, saved, fed or
    timed, not what it computes, are listed in `aejax.train.loop.NOT_IDENTITY`; every other one is part of a
    run's identity (a workdir holds one) and of a sweep group's structure."""

    epochs: int = 20
    batch_size: int = 128
    eval_batch_size: int = 1000
    eval_every: Any = _duration(1, "epochs")  # validation every N epochs, and after the last
    checkpoint_every: Any = _duration("5 minutes", "epochs", clock=True)  # epochs or wall-clock, and the last
    keep_checkpoints: int = 3
    epochs_per_call: int = 0  # epochs scanned in one device call (0: enough for about half a second, at most 64)
    async_metrics: bool = True  # fetch a call's metrics and validation after the next call was dispatched
    skip_nonfinite: bool = False
    data_parallel: bool = False
    deterministic: bool = True  # bitwise-repeatable GPU runs (XLA's deterministic ops; aejax.platform)
    matmul_precision: str = "default"  # "default", "tf32" (tensor cores on a GPU) or "highest"
    tensorboard: bool = True
    figures: bool = True
    progress: bool = True
    mlflow: bool = False  # track the run in MLflow (aejax.train.tracking)
    mlflow_uri: str = ""  # "" = $MLFLOW_TRACKING_URI or ./mlruns; a path = a local file store
    mlflow_experiment: str = "aejax"

    @staticmethod
    def inactive_options(o: Mapping[str, Any]) -> dict[str, tuple[str, tuple]]:
        return {} if o["mlflow"] else dict.fromkeys(("mlflow_uri", "mlflow_experiment"), ("mlflow", (True,)))


@dataclasses.dataclass(frozen=True)
class FeedOptions:
    """How the training split reaches the device (`aejax.train.feed`); what a run computes does not change."""

    on_device: bool = True  # False: always stream from the host; True: on the device when it fits
    device_bytes_limit: int = 0  # the split's budget on the device in bytes; 0: half the free device memory
    stream_chunk_steps: int = 0  # batches per streamed chunk; 0: about 64 MiB


# every source's; normal_class >= 0: the one-class protocol; folds K >= 2 with fold k: train without fold k,
# validate on it; train_examples N > 0: a nested subset of N training examples (aejax.data.subsets)
DATA_COMMON = {"name": "digits", "normal_class": -1, "folds": 0, "fold": 0, "train_examples": 0}
SECTIONS = ("data", "model", "hp", "optim", "train")
# Keys renamed since runs were saved: read from an old config.json, refused with the new name on the command line.
RENAMED = {"optim.warmup_steps": "optim.warmup", "model.kl_warmup_steps": "model.kl_warmup",
           "model.kl_cycle_steps": "model.kl_cycle", "model.dead_steps": "model.dead_window"}


def _defaults(options_class) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(options_class)}


def duration_units(key: str, kind: str | None = None) -> tuple[str, tuple[str, ...]] | None:
    """(the unit a bare number means, the units accepted) when config key `key` is a duration, else None."""
    section, _, name = key.partition(".")
    if section == "model":
        unit, clock = (kind_durations(kind).get(name) if kind in KINDS else None), False
    else:
        cls = {"optim": OptimOptions, "train": TrainOptions}.get(section)
        meta = next((f.metadata for f in dataclasses.fields(cls) if f.name == name), {}) if cls else {}
        unit, clock = meta.get("unit"), meta.get("clock", False)
    if unit is None:
        return None
    units = ("steps", "epochs", "percent") if unit == "steps" else ("epochs", "percent")
    return unit, units + (("seconds",) if clock else ())


def duration(key: str, value, kind: str | None = None) -> durations.Duration:
    """The Duration config key `key` holds (see `aejax.durations`; `kind` for the kinds' own durations)."""
    unit, units = duration_units(key, kind)
    return durations.parse(value, key=key, default_unit=unit, units=units)


def base_config(kind: str = "undercomplete", net: str | None = None) -> ml_collections.ConfigDict:
    """The start of every experiment: model `kind` on net `net` ("mlp" unless the kind always builds one).

    Every option has its default from the start (they are filled in by `resolve_config`, after
    overrides, so that changing `model.kind` or `model.sparsity` picks that choice's defaults); set in
    the experiment file only what differs from them.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; choose one of {sorted(KINDS)}.")
    model = {"kind": kind, **({"net": net} if net else {})}
    return ml_collections.ConfigDict({"seed": 0, "data": {"name": DATA_COMMON["name"]}, "model": model, "hp": {},
                                      "optim": {}, "train": {}})


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


def _coerce(key: str, old: Any, value: Any, kind: str | None = None) -> Any:
    """The value `value` for key `key` in the type of its default `old`, or a ConfigError saying which type;
    a duration is checked (`aejax.durations`) and kept as given."""
    if duration_units(key, kind) is not None:
        duration(key, value, kind)
        return value
    if isinstance(old, tuple) and isinstance(value, (list, tuple)):
        return tuple(value)
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if old is not None and type(value) is not type(old):
        article = "an" if type(old).__name__[0] in "aeiou" else "a"
        raise ConfigError(f"config key {key!r} holds {type(old).__name__} values, got {value!r}; "
                          f"give {article} {type(old).__name__}.")
    return value


def _inactive_reason(section: str, key: str, inactive: Mapping, values: Mapping, owner: str) -> str:
    depends, needs = inactive[key]
    wanted = " or ".join(repr(v) for v in needs)
    return (f"{section}.{key} is used {owner}only with {section}.{depends}={wanted}; this run has "
            f"{section}.{depends}={values[depends]!r}.")


def _resolve_section(section: str, schema: Mapping[str, Any], given: Mapping[str, Any], overridden: Mapping[str, Any],
                     why_unused, kind: str | None = None) -> dict[str, Any]:
    """`schema`'s keys, each from `overridden`, else `given` (the experiment file), else its default.

    An override the schema does not take is an error saying who uses it (`why_unused(key)`) or, when
    nothing does, "did you mean"; an experiment file's key the schema does not take is dropped when
    something else uses it (another kind, net, dataset or choice), else an error too.
    """
    check_known(overridden, schema, prefix=f"{section}.", why=why_unused)
    check_known([k for k in given if why_unused(k) is None], schema, prefix=f"{section}.")
    merged = {**given, **overridden}
    return {k: _coerce(f"{section}.{k}", default, merged[k], kind) if k in merged else default
            for k, default in schema.items()}


def _options_section(section: str, options_class, given: dict, overridden: dict) -> dict[str, Any]:
    """A section declared by an options dataclass whose `inactive_options` says which options its values leave unused."""
    defaults = _defaults(options_class)
    values = {**defaults, **{k: v for k, v in {**given, **overridden}.items() if k in defaults}}
    inactive = options_class.inactive_options(values)
    schema = {k: v for k, v in defaults.items() if k not in inactive}
    why = lambda key: _inactive_reason(section, key, inactive, values, "") if key in inactive else None
    return _resolve_section(section, schema, given, overridden, why)


def resolve_config(config: ml_collections.ConfigDict | Mapping[str, Any],
                   overrides: Mapping[str, Any] | None = None, *, strict: bool = True) -> ml_collections.ConfigDict:
    """The complete, locked config: `config` with `overrides` (dotted keys) applied and every default filled in.

    It holds exactly what the run uses: the chosen kind's options on the chosen net (with its hp), the
    chosen dataset's options, and the optimizer and loop options the chosen values read. An override the
    run would not use is a ConfigError naming who uses it; a key of the experiment file that only another
    kind, net, dataset or choice uses is dropped (so `--set model.kind=vae` drops the old kind's options).
    With `strict=False` (a saved config.json being read) renamed keys take their new names.
    """
    tree = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else json.loads(json.dumps(config))
    for key in tree:
        if key not in ("seed", *SECTIONS):
            raise ConfigError(str(unknown_key(key, ["seed", *SECTIONS])).replace("config key", "config section"))
    given = {s: dict(tree.get(s) or {}) for s in SECTIONS}
    overridden: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    seed = tree.get("seed", 0)
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        if key == "seed":
            seed = value
        elif key in RENAMED:
            raise ConfigError(f"{key} is now {RENAMED[key]} (a duration: a bare number of steps, or '3 epochs', "
                              "'10%'); use that key.")
        elif section in SECTIONS and name:
            overridden[section][name] = value
        else:
            raise unknown_key(key, ["seed"] + [f"{s}.{k}" for s in SECTIONS for k in given[s]])
    for old, new in RENAMED.items():
        section, _, name = old.partition(".")
        if name in given[section]:
            if strict:
                raise ConfigError(f"{old} is now {new} (a duration: a bare number of steps, or '3 epochs', '10%'); "
                                  "rename it in the experiment file.")
            given[section][new.partition(".")[2]] = given[section].pop(name)

    kind = overridden["model"].pop("kind", given["model"].pop("kind", "undercomplete"))
    net = overridden["model"].pop("net", given["model"].pop("net", None))
    if kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; choose one of {sorted(KINDS)}.")
    schema = model_schema(kind, net, {**given["model"], **overridden["model"]})
    model = {"kind": kind, "net": schema.net,
             **_resolve_section("model", schema.options, given["model"], overridden["model"], schema.why_unused, kind)}

    kind_values = {k: v for k, v in model.items() if k in kind_options(kind)}
    hp_schema = {"learning_rate": 1e-3, **kind_hp_defaults(kind, kind_values)}

    def hp_owner(key):
        kinds = [k for k in KINDS if key in kind_hp_defaults(k, {})]
        return f"hp.{key} is a hyperparameter of kind {'/'.join(kinds)}; this run's kind is {kind}." if kinds else None

    hp = _resolve_section("hp", hp_schema, given["hp"], overridden["hp"], hp_owner)

    name = overridden["data"].get("name", given["data"].get("name", DATA_COMMON["name"]))
    data_schema = {**DATA_COMMON, **_defaults(FeedOptions), **source_options(name)}

    data = _resolve_section("data", data_schema, given["data"], overridden["data"], lambda k: option_owner(k, name))
    resolved = {"seed": _coerce("seed", 0, seed), "data": data, "model": model, "hp": hp,
                "optim": _options_section("optim", OptimOptions, given["optim"], overridden["optim"]),
                "train": _options_section("train", TrainOptions, given["train"], overridden["train"])}
    out = ml_collections.ConfigDict(resolved, type_safe=True)
    out.lock()
    return out


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turns ["a.b=1", "c=x"] into {"a.b": 1, "c": "x"}."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE; write e.g. --set model.code_size=32.")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(value.strip())
    return out


def experiment_config(name_or_path: str, module=None) -> ml_collections.ConfigDict:
    """An experiment's config (`NAME` or `NAME:VARIANT`) as its file writes it, not yet resolved; `module` is the
    file already loaded (`load_experiment`), so that a sweep executes it once."""
    module = module or load_experiment(name_or_path)
    variant = split_variant(name_or_path)[1]
    takes_arg = bool(inspect.signature(module.get_config).parameters)
    if variant is not None and not takes_arg:
        raise ConfigError(f"{name_or_path}: this experiment has no variants (its get_config() takes no argument); "
                          "drop the ':VARIANT' suffix.")
    config = module.get_config(variant) if takes_arg else module.get_config()
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"{name_or_path}: get_config() must return an ml_collections.ConfigDict.")
    return config


def get_experiment_config(name_or_path: str, overrides: Mapping[str, Any] | None = None) -> ml_collections.ConfigDict:
    """Loads an experiment's config (`NAME` or `NAME:VARIANT`), applies overrides, fills every default."""
    return resolve_config(experiment_config(name_or_path), overrides or {})


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
    return resolve_config(tree, strict=False)
