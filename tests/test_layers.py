"""The house rules of docs/design.md, kept by a test: no import cycles, and data moves down the layers.

Every module of ``src/empiricist`` is read with ``ast`` (module-level and function-level imports,
``from . import x``, relative imports); imports under ``if TYPE_CHECKING:`` are for type hints only and
never run, so they are not edges. The layer order is the fenced ``layers`` block of docs/design.md: one
layer per line, lowest first; the packages on one line may import each other (but not in a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
DESIGN = REPO / "docs" / "design.md"

# ---------------------------------------------------------------- reading the imports
def module_files(src: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` under ``src``."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: anywhere in the module except ``if TYPE_CHECKING:`` bodies."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _owner(name: str, modules: Mapping[str, Path]) -> str | None:
    """The module that ``name`` (a module or something inside one) lives in, if it is ours."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(src: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (at run time)."""
    modules = module_files(src, package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in _import_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                # ``from pkg import mod`` imports the module pkg.mod; ``from mod import f`` imports mod
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                owner = _owner(t, modules)
                if owner is not None and owner != name:
                    edges.add(owner)
        graph[name] = edges
    return graph


# ---------------------------------------------------------------- the rules
def find_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One concrete cycle (a → b → … → a) per strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan; the graphs are small enough for recursion
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_in(comp, graph) for comp in components]


def _cycle_in(component: list[str], graph: Mapping[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"internal: no cycle through {start}")


def read_layers(design: str) -> list[list[str]]:
    """The fenced ``layers`` block: one layer per line, lowest first (``#`` starts a comment)."""
    lines = design.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "```layers")
    except StopIteration:
        raise AssertionError("docs/design.md has no ```layers block") from None
    layers = []
    for line in lines[start + 1:]:
        if line.strip().startswith("```"):
            return layers
        names = line.split("#", 1)[0].split()
        if names:
            layers.append(names)
    raise AssertionError("the ```layers block of docs/design.md is not closed")


def package_of(module: str, package: str) -> str:
    """The top-level unit of a module: ``empiricist.evals.runner`` -> ``evals``, the root -> ``empiricist``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else package


def layer_violations(graph: Mapping[str, set[str]], layers: list[list[str]], package: str) -> list[str]:
    """Imports from a lower layer into a higher one, and imports of packages the order does not name."""
    rank = {name: i for i, names in enumerate(layers) for name in names}
    bad = []
    for src_mod, targets in sorted(graph.items()):
        a = package_of(src_mod, package)
        for dst_mod in sorted(targets):
            b = package_of(dst_mod, package)
            if a == b:
                continue
            if a not in rank or b not in rank:
                bad.append(f"{src_mod} -> {dst_mod}: {a if a not in rank else b} is not in the layer order")
            elif rank[a] < rank[b]:
                bad.append(f"{src_mod} -> {dst_mod}: {a} (layer {rank[a]}) imports {b} (layer {rank[b]})")
    return bad


# ---------------------------------------------------------------- the house
@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(SRC, "empiricist")


@pytest.fixture(scope="module")
def layers() -> list[list[str]]:
    return read_layers(DESIGN.read_text())


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_imports_follow_the_layer_order(graph: dict[str, set[str]], layers: list[list[str]]) -> None:
    assert not layer_violations(graph, layers, "empiricist")


def test_the_layer_order_names_every_package_once_and_cli_is_on_top(graph: dict[str, set[str]],
                                                                    layers: list[list[str]]) -> None:
    named = [n for names in layers for n in names]
    assert len(named) == len(set(named)), "a package appears twice in the layer order"
    present = {package_of(m, "empiricist") for m in graph}
    assert present <= set(named), f"packages missing from docs/design.md's layers: {sorted(present - set(named))}"
    assert layers[-1] == ["cli"]
    assert not [m for m, targets in graph.items() if package_of(m, "empiricist") != "cli"
                and any(package_of(t, "empiricist") == "cli" for t in targets)]


def test_design_doc_describes_every_package(layers: list[list[str]]) -> None:
    text = DESIGN.read_text()
    table = {line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| `")}
    described = {name.strip("` ") for cell in table for name in cell.split(",")}
    assert {n for names in layers for n in names} - {"empiricist"} <= described


# ---------------------------------------------------------------- the checker can fail
def _plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_planted_cycle_is_found_and_reported(tmp_path: Path) -> None:
    src = _plant(tmp_path, {
        "__init__.py": "",
        "low/__init__.py": "",
        "low/a.py": "def f():\n    from pkg.low import b  # a function-level import counts\n",
        "low/b.py": "from .c import g\n",  # relative
        "low/c.py": "from . import a\ng = 1\n",
        "low/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.low.a import f\n",
        "high/__init__.py": "import pkg.low.typed\n",
    })
    graph = import_graph(src, "pkg")
    assert graph["pkg.low.a"] == {"pkg.low.b"} and graph["pkg.low.c"] == {"pkg.low.a"}
    assert graph["pkg.low.typed"] == set()  # TYPE_CHECKING imports are not edges
    assert find_cycles(graph) == [["pkg.low.a", "pkg.low.b", "pkg.low.c", "pkg.low.a"]]
    del graph["pkg.low.c"]
    assert find_cycles(graph) == []


def test_a_planted_layer_violation_is_found(tmp_path: Path) -> None:
    src = _plant(tmp_path, {
        "__init__.py": "",
        "low/__init__.py": "",
        "low/x.py": "from pkg.high.y import h\n",  # data moving up
        "high/__init__.py": "",
        "high/y.py": "from pkg.low import x\nh = 1\n",  # allowed: down the layers
        "side/__init__.py": "from pkg.low import x\n",  # not in the order at all
    })
    graph = import_graph(src, "pkg")
    layers = read_layers("text\n```layers\nlow   # the bottom\nhigh\n```\n")
    assert layers == [["low"], ["high"]]
    bad = layer_violations(graph, layers, "pkg")
    assert len(bad) == 2
    assert bad[0].startswith("pkg.low.x -> pkg.high.y: low (layer 0) imports high (layer 1)")
    assert "side is not in the layer order" in bad[1]
    assert layer_violations(graph, [["low", "high", "side"]], "pkg") == []  # one layer: all allowed
