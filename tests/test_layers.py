"""The package's architecture as a test: every import goes down the layers, and no module imports itself
back through others (imports under ``TYPE_CHECKING`` count: a cycle for the type checker is one for a
reader too)."""

from __future__ import annotations

import ast
from pathlib import Path

import simclr

ROOT = Path(simclr.__file__).parent

# lowest first; a package imports only from lower layers (and from inside itself)
LAYERS: list[set[str]] = [
    {"errors"},
    {"io", "runtime", "distributed", "optim"},
    {"augment"},
    {"data", "losses", "models"},
    {"config"},
    {"methods", "eval"},
    {"train"},
    {"use"},
    {"cli", ""},  # "": the package's own __init__, the public API
    {"__main__"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports() -> dict[str, set[str]]:
    """module -> the simclr modules it imports (``from simclr import x``: ``simclr.x`` when x is a module)."""
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in modules.items():
        out: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "simclr":
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    out.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name.split(".")[0] == "simclr")
        graph[mod] = out - {mod}
    return graph


def test_every_package_has_a_layer() -> None:
    packages = {_package(m) for m in imports()}
    assert packages <= set(LAYER), f"give these a layer: {sorted(packages - set(LAYER))}"


def upward(graph: dict[str, set[str]]) -> list[str]:
    """The imports of ``graph`` that go to the same layer's other packages or up."""
    return sorted(
        f"{a} imports {b}"
        for a, targets in graph.items()
        for b in targets
        if _package(a) != _package(b) and LAYER[_package(b)] >= LAYER[_package(a)]
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph`` (depth-first search: an edge back into the current path)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if n not in graph:
                continue
            if state.get(n) == 1:
                found.append([*stack[stack.index(n) :], n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return found


def test_imports_go_down_the_layers() -> None:
    wrong = upward(imports())
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    found = cycles(imports())
    assert not found, "\n".join(" -> ".join(c) for c in found)


def test_the_checks_catch_what_they_are_for() -> None:
    """The checks find what they look for in a made-up graph: the two violations the package once had."""
    graph = {
        "simclr.methods.simclr": {"simclr.train.chunked"},  # a method importing the engine
        "simclr.train.chunked": set(),
        "simclr.train.loop": {"simclr.train.callbacks"},
        "simclr.train.callbacks": {"simclr.train.loop"},  # the loop <-> callbacks cycle
    }
    assert upward(graph) == ["simclr.methods.simclr imports simclr.train.chunked"]
    assert cycles(graph) == [["simclr.train.callbacks", "simclr.train.loop", "simclr.train.callbacks"]]
    assert upward({"simclr.train.loop": {"simclr.models.encoder"}}) == []
