"""Autoencoder kinds: one module per kind, each with a `build(**options)` function.

`build_model(kind, input_shape=..., num_classes=..., **options)` looks the kind up in
`KINDS` and passes the options on; an option the kind does not take is a ConfigError.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from aejax.errors import ConfigError

# kind name -> "module:function". Modules are imported on first use.
KINDS: dict[str, str] = {
    "undercomplete": "aejax.models.builders:build_undercomplete",
    # issue 3: regularized autoencoders
    "sparse": "aejax.models.sparse:build_sparse",
    "contractive": "aejax.models.contractive:build_contractive",
    "denoising": "aejax.models.denoising:build_denoising",
    # issue 4: generative autoencoders
    "vae": "aejax.models.vae:build_vae",
    "cvae": "aejax.models.vae:build_cvae",
    "aae": "aejax.models.aae:build_aae",
}


def build_model(kind: str, **options: Any):
    """Builds the autoencoder `kind` from plain options (unpacked from config.model)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; choose one of {sorted(KINDS)}.")
    module_name, fn_name = KINDS[kind].split(":")
    builder = getattr(importlib.import_module(module_name), fn_name)
    params = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise ConfigError(f"model kind {kind!r} does not take option(s) {unknown}; "
                              f"it takes {sorted(params)}.")
    return builder(**options)


__all__ = ["KINDS", "build_model"]
