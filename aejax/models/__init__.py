"""Autoencoder kinds: one module per kind, one registry, one way to build.

`KINDS` maps a kind name to its class (and options fixed by the name, e.g. "cvae" is the VAE
with conditional=True). A kind's structural options are its dataclass fields with defaults,
apart from the pieces the builder makes (`BUILT_FIELDS`); its continuous hyperparameters
are `cls.hp_defaults(options)`. `build_model(kind, net, ...)` builds it from a `NetSpec`; `model_from_options` from the flat
options of config.model (what the run setup uses, and the shortest way from Python).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Mapping

from aejax.errors import ConfigError, check_known
from aejax.models.protocols import (Autoencoder, Corrupting, CustomUpdate, Likelihood, Sampler,
                                    SparseCodes)
from aejax.nets import NET_OPTIONS, NetSpec, net_options


@dataclasses.dataclass(frozen=True)
class KindEntry:
    """Where a kind's class lives ("module:Class"), the options its name fixes, the net it always
    builds (None: `model.net` picks it) and whether `model.code_size` is one of its options."""

    path: str
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    net: str | None = None
    takes_code_size: bool = True

    def cls(self):
        module_name, class_name = self.path.split(":")
        return getattr(importlib.import_module(module_name), class_name)


KINDS: dict[str, KindEntry] = {
    "undercomplete": KindEntry("aejax.models.undercomplete:UndercompleteAE"),
    "sparse": KindEntry("aejax.models.sparse:SparseAE"),
    "contractive": KindEntry("aejax.models.contractive:ContractiveAE"),
    "denoising": KindEntry("aejax.models.denoising:DenoisingAE"),
    "vae": KindEntry("aejax.models.vae:VAE"),
    "cvae": KindEntry("aejax.models.vae:VAE", {"conditional": True}),
    "aae": KindEntry("aejax.models.aae:AAE"),
    # the MAE builds its own ViT pair from the transformer options; its code is the encoder width
    "mae": KindEntry("aejax.models.mae:MAE", net="transformer", takes_code_size=False),
}

# Dataclass fields a builder fills from the net and the data, never from config.model.
BUILT_FIELDS = frozenset({"encoder", "decoder", "discriminator", "input_shape", "code_size", "num_classes"})
CODE_SIZE_DEFAULT = 16


def _entry(kind: str) -> KindEntry:
    if kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; choose one of {sorted(KINDS)}.")
    return KINDS[kind]


def kind_options(kind: str) -> dict[str, Any]:
    """The kind's structural options (keys of config.model) with their defaults."""
    return {f.name: f.default for f in dataclasses.fields(_entry(kind).cls())
            if f.name not in BUILT_FIELDS and f.default is not dataclasses.MISSING}


def kind_durations(kind: str) -> dict[str, str]:
    """The kind's options that are durations, with the unit a bare number means ("steps")."""
    return {f.name: f.metadata["unit"] for f in dataclasses.fields(_entry(kind).cls()) if "unit" in f.metadata}


def kind_hp_defaults(kind: str, options: Mapping[str, Any]) -> dict[str, float]:
    """The kind's continuous hyperparameters (keys of config.hp besides learning_rate) for `options`."""
    return dict(_entry(kind).cls().hp_defaults({**kind_options(kind), **options}))


@dataclasses.dataclass(frozen=True)
class ModelSchema:
    """The `model.*` options a kind on a net takes for some option values, and why any other is unused."""

    kind: str
    net: str
    options: dict[str, Any]  # name -> default: what this model reads
    inactive: dict[str, tuple[str, tuple]]  # the kind's own options that these values leave unused
    values: dict[str, Any]  # the values the schema was made for (defaults filled)

    def why_unused(self, name: str) -> str | None:
        """One sentence naming who uses option `name`, or None when nothing does."""
        if name in self.inactive:
            depends, needs = self.inactive[name]
            wanted = " or ".join(repr(v) for v in needs)
            return (f"model.{name} is used by kind {self.kind} only with {depends}={wanted}; this run has "
                    f"{depends}={self.values[depends]!r}.")
        if name == "code_size" and not KINDS[self.kind].takes_code_size:
            return (f"model.code_size is not an option of kind {self.kind}: its code is the encoder's features, "
                    "model.width wide.")
        nets = [n for n, names in NET_OPTIONS.items() if name in names]
        if nets:
            this = (f"kind {self.kind} always builds a {self.net} net" if KINDS[self.kind].net
                    else f"this run's net is {self.net}")
            return f"model.{name} is an option of net {'/'.join(nets)}; {this}."
        kinds = [k for k in KINDS if name in kind_options(k)]
        if kinds:
            return f"model.{name} is an option of kind {'/'.join(kinds)}; this run's kind is {self.kind}."
        return None


def model_schema(kind: str, net: str | None, values: Mapping[str, Any]) -> ModelSchema:
    """What `kind` on `net` takes, given the option `values` set so far (they decide which options are used).

    A kind that always builds one net (the MAE) takes that net's options; `net` must be it or None.
    """
    entry = _entry(kind)
    if entry.net and net not in (None, entry.net):
        raise ConfigError(f"kind {kind!r} always builds a {entry.net} net; drop model.net={net!r} or set it to "
                          f"{entry.net!r}.")
    net = entry.net or net or "mlp"
    everything = {**({"code_size": CODE_SIZE_DEFAULT} if entry.takes_code_size else {}), **net_options(net),
                  **kind_options(kind)}
    filled = {**everything, **{k: v for k, v in values.items() if k in everything}}
    inactive_fn = getattr(entry.cls(), "inactive_options", None)
    inactive = inactive_fn(filled) if inactive_fn else {}
    return ModelSchema(kind, net, {k: v for k, v in everything.items() if k not in inactive}, inactive, filled)


def build_model(kind: str, net: NetSpec, *, input_shape, num_classes: int, code_size: int,
                **options: Any) -> Autoencoder:
    """Builds the autoencoder `kind` from a NetSpec, the data's shape and class count, and its options."""
    entry = _entry(kind)
    return entry.cls().build(net, input_shape=tuple(input_shape), num_classes=int(num_classes),
                             code_size=int(code_size), **entry.fixed, **options)


def model_from_options(kind: str, *, input_shape, num_classes: int, **options: Any) -> Autoencoder:
    """Builds a kind from flat options, as config.model holds them: `net`, `code_size`, the net's options
    (NetSpec's fields that net reads) and the kind's own options; an option it would not use is an error.
    Durations are plain step counts here (`aejax.train.setup` converts "3 epochs" and the like)."""
    net = options.pop("net", None)
    schema = model_schema(kind, net, options)
    check_known(options, schema.options, prefix="model.", why=schema.why_unused)
    values = {k: v for k, v in schema.values.items() if k in schema.options}
    code_size = values.pop("code_size", CODE_SIZE_DEFAULT)
    net_fields = set(NET_OPTIONS[schema.net])
    spec = NetSpec(net=schema.net, **{k: v for k, v in values.items() if k in net_fields})
    return build_model(kind, spec, input_shape=input_shape, num_classes=num_classes, code_size=code_size,
                       **{k: v for k, v in values.items() if k not in net_fields})


__all__ = ["Autoencoder", "BUILT_FIELDS", "Corrupting", "CustomUpdate", "KINDS", "Likelihood", "ModelSchema",
           "NetSpec", "Sampler", "SparseCodes", "build_model", "kind_durations", "kind_hp_defaults",
           "kind_options", "model_from_options", "model_schema"]
