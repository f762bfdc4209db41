"""The layering and the model contract that docs/architecture.md describes, checked."""

import ast
import pathlib

import pytest

from aejax.models import (KINDS, Autoencoder, CustomUpdate, Likelihood, Sampler, SparseCodes, kind_options,
                          model_from_options)

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "aejax"

# package -> aejax modules it may import (besides itself and aejax.errors)
ALLOWED = {
    "nets": set(),
    "objectives": set(),
    "data": set(),
    "models": {"nets", "objectives", "data"},
}


def _aejax_imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {n.split(".")[1] for n in names if n.startswith("aejax.") and n.count(".") >= 1}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_lower_layers_import_nothing_above_them(package):
    for path in (PACKAGE / package).rglob("*.py"):
        imported = _aejax_imports(path) - {package, "errors"}
        assert imported <= ALLOWED[package], f"{path} imports aejax.{sorted(imported - ALLOWED[package])}"
        assert "ConfigDict" not in path.read_text(), f"{path} mentions ConfigDict"


def _model(kind):
    options = {"sparsity": "topk", "k": 2} if kind == "sparse" else {}
    return model_from_options(kind, input_shape=(8, 8, 1), num_classes=10, code_size=4, hidden=(8,), **options)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_meets_the_contract_and_declares_its_capabilities(kind):
    model = _model(kind)
    assert isinstance(model, Autoencoder)
    assert isinstance(model, Sampler) == (kind in ("vae", "cvae", "aae"))
    assert isinstance(model, Likelihood) == (kind in ("vae", "cvae"))
    assert isinstance(model, SparseCodes) == (kind == "sparse")
    assert isinstance(model, CustomUpdate) == (kind in ("sparse", "aae"))
    assert set(model.default_hp()) == set(type(model).hp_defaults(kind_options(kind)))
