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

from aejax.errors import ConfigError
from aejax.models.protocols import (Autoencoder, Corrupting, CustomUpdate, Likelihood, Sampler,
                                    SparseCodes)
from aejax.nets import NetSpec


@dataclasses.dataclass(frozen=True)
class KindEntry:
    """Where a kind's class lives ("module:Class") and the options its name fixes."""

    path: str
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)

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
    "mae": KindEntry("aejax.models.mae:MAE"),
}

# Dataclass fields a builder fills from the net and the data, never from config.model.
BUILT_FIELDS = frozenset({"encoder", "decoder", "discriminator", "input_shape", "code_size", "num_classes"})


def _entry(kind: str) -> KindEntry:
    if kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; choose one of {sorted(KINDS)}.")
    return KINDS[kind]


def kind_options(kind: str) -> dict[str, Any]:
    """The kind's structural options (keys of config.model) with their defaults."""
    return {f.name: f.default for f in dataclasses.fields(_entry(kind).cls())
            if f.name not in BUILT_FIELDS and f.default is not dataclasses.MISSING}


def kind_hp_defaults(kind: str, options: Mapping[str, Any]) -> dict[str, float]:
    """The kind's continuous hyperparameters (keys of config.hp besides learning_rate) for `options`."""
    return dict(_entry(kind).cls().hp_defaults({**kind_options(kind), **options}))


def build_model(kind: str, net: NetSpec, *, input_shape, num_classes: int, code_size: int,
                **options: Any) -> Autoencoder:
    """Builds the autoencoder `kind` from a NetSpec, the data's shape and class count, and its options."""
    entry = _entry(kind)
    unknown = sorted(set(options) - set(kind_options(kind)))
    if unknown:
        raise ConfigError(f"model kind {kind!r} does not take option(s) {unknown}; "
                          f"it takes {sorted(kind_options(kind))}.")
    return entry.cls().build(net, input_shape=tuple(input_shape), num_classes=int(num_classes),
                             code_size=int(code_size), **entry.fixed, **options)


def model_from_options(kind: str, *, input_shape, num_classes: int, code_size: int = 16,
                       **options: Any) -> Autoencoder:
    """Builds a kind from flat options, as config.model holds them: net options (NetSpec's
    fields: net, hidden, channels, activation, conv_impl) and the kind's own options."""
    net_fields = {f.name for f in dataclasses.fields(NetSpec)}
    known = net_fields | set(kind_options(kind))
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"model kind {kind!r} does not take option(s) {unknown}; it takes {sorted(known)}.")
    net = NetSpec(**{k: v for k, v in options.items() if k in net_fields})
    return build_model(kind, net, input_shape=input_shape, num_classes=num_classes, code_size=code_size,
                       **{k: v for k, v in options.items() if k not in net_fields})


__all__ = ["Autoencoder", "BUILT_FIELDS", "Corrupting", "CustomUpdate", "KINDS", "Likelihood", "NetSpec", "Sampler",
           "SparseCodes", "build_model", "kind_hp_defaults", "kind_options",
           "model_from_options"]
