"""The layering and the model contract that docs/architecture.md describes, checked.

Every row of the import table holds (imports inside functions count too), and no aejax module
imports another that imports it back, however long the circle.
"""

import ast
import pathlib
import re

import pytest

from aejax.models import (KINDS, Autoencoder, CustomUpdate, Likelihood, Sampler, SparseCodes, kind_options,
                          model_from_options)

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "aejax"
LEAVES = {"errors", "durations", "platform"}  # modules every layer may import


def import_table() -> dict[str, set[str]]:
    """package -> the aejax packages it may import, read from docs/architecture.md's import table."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text[text.index("| package | may import"):]
    allowed: dict[str, set[str]] = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        packages, may = (cell.strip() for cell in line.strip("|").split("|")[:2])
        names = None if "everything" in may else set(re.findall(r"`(\w+)`", may))
        for package in re.findall(r"`(\w+)`", packages):
            allowed[package] = names
    return allowed


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(path: pathlib.Path, known: dict[str, pathlib.Path]) -> set[str]:
    """The aejax modules `path` imports anywhere in it (`from aejax.data import sources` names the submodule)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("aejax")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aejax"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in known else node.module)
    return {n for n in names if n in known}


GRAPH = {name: imports_of(path, modules()) for name, path in modules().items()}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


@pytest.mark.parametrize("package", sorted(import_table()))
def test_each_package_imports_only_what_the_table_allows(package):
    allowed = import_table()[package]
    assert (PACKAGE / package).exists() or (PACKAGE / f"{package}.py").exists(), package
    for module, imported in GRAPH.items():
        if package_of(module) != package:
            continue
        above = {package_of(m) for m in imported} - {package} - LEAVES - {None}
        if allowed is not None:
            assert above <= allowed, f"{module} imports aejax.{sorted(above - allowed)}: not in its row of the table"
        if package in ("nets", "objectives", "data", "models"):
            assert "ConfigDict" not in modules()[module].read_text(), f"{module} mentions ConfigDict"


def test_every_package_has_a_row():
    packages = {package_of(m) for m in GRAPH} - {None} - LEAVES
    assert packages <= set(import_table()), sorted(packages - set(import_table()))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_another_that_imports_it_back():
    graph = {k: v for k, v in GRAPH.items() if k != "aejax"}  # the package's own front door imports everything
    assert cycles(graph) == []


def test_the_checks_catch_a_circle_and_an_import_up_a_layer():
    """What a regression would look like: train importing evaluate, and data importing its registry back."""
    graph = {k: set(v) for k, v in GRAPH.items()}
    graph["aejax.data.datasets"].add("aejax.data.sources")
    assert any("aejax.data.sources" in c for c in cycles(graph))
    allowed = import_table()["train"]
    assert not {"evaluate", "viz", "sweep", "bench"} & allowed  # e.g. `from aejax.viz import figures` in train


def _model(kind):
    options = {"sparsity": "topk", "k": 2} if kind == "sparse" else {}
    net = {"net": "transformer", "width": 8, "heads": 2, "patch_size": 4} if kind == "mae" else {"hidden": (8,),
                                                                                                "code_size": 4}
    return model_from_options(kind, input_shape=(8, 8, 1), num_classes=10, **net, **options)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_meets_the_contract_and_declares_its_capabilities(kind):
    model = _model(kind)
    assert isinstance(model, Autoencoder)
    assert isinstance(model, Sampler) == (kind in ("vae", "cvae", "aae"))
    assert isinstance(model, Likelihood) == (kind in ("vae", "cvae"))
    assert isinstance(model, SparseCodes) == (kind == "sparse")
    assert isinstance(model, CustomUpdate) == (kind in ("sparse", "aae"))
    assert set(model.default_hp()) == set(type(model).hp_defaults(kind_options(kind)))
