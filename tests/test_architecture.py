"""The shape of src/: no import cycles, lower layers never import upper ones, small modules.

The import graph is read with `ast` from the source, not by importing it. Every import
statement counts: at module level, inside functions, and under `if TYPE_CHECKING:`. A lazy
import (how short commands stay fast) still makes one module depend on another, and so does a
type named in a signature; neither may close a cycle or reach up a layer. (That is how issue 9
counts its cycles: `monitoring/alerts <-> routes` and `serving/auth <-> gateway` were cycles
through TYPE_CHECKING imports, `demo -> cli` through a lazy one.)
An edge goes to the module named (`from tradeloop.store import deployments` -> the
`tradeloop.store.deployments` module; `from tradeloop.store import Store` -> the package), and
to the packages enclosing it, whose `__init__` runs first (`demo -> cli.project_cmds` also
loads `cli/__init__`, which imports every command module).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "tradeloop"
MAX_LINES = 400
EXEMPT_FROM_SIZE = ("tradeloop.store.migrations",)  # generated migrations

# docs/architecture.md: who may import whom. A module may import its own layer and the ones
# below it. Packages the list doesn't name are placed by what they are: gitops and
# security are services over the store, templates writes a project through gitops (middle);
# project, faults and background (a stdlib worker thread) are foundations.
LAYERS: dict[str, int] = {
    **dict.fromkeys(("cli", "control", "demo"), 3),
    **dict.fromkeys(("serving", "monitoring", "registry", "training", "evaluation"), 2),
    **dict.fromkeys(("gitops", "security", "templates", "stream"), 2),
    **dict.fromkeys(("spec", "clock", "errors", "store", "data", "features"), 1),
    **dict.fromkeys(("project", "faults", "background", "conformance", "observability"), 1),
}
LAYER_NAMES = {3: "top", 2: "middle", 1: "bottom"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / ROOT).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    is_package = MODULES[module].name == "__init__.py"
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: resolve against this module's package
            package = module.split(".")
            package = package if is_package else package[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        names = []
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            names.append(sub if sub in MODULES else base)
    out = set()
    for name in names:
        # `import tradeloop.a.b` names a module; walk up to the longest one that exists.
        parts = name.split(".")
        while parts and ".".join(parts) not in MODULES:
            parts.pop()
        if not parts or parts[0] != ROOT:
            continue
        out.add(".".join(parts))
        # Importing a.b.c runs a/b/__init__.py first: an edge to each enclosing package, except
        # the importer's own (always loaded before it) and the empty top-level one.
        for i in range(2, len(parts)):
            package = ".".join(parts[:i])
            if not (module == package or module.startswith(package + ".")):
                out.add(package)
    out.discard(module)
    return out


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for node in _imports(tree):
            edges |= _targets(module, node)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_package_has_a_layer() -> None:
    unplaced = sorted({m.split(".")[1] for m in MODULES if "." in m and _layer(m) is None})
    assert unplaced == [], f"place these in LAYERS (and docs/architecture.md): {unplaced}"


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = _cycles(graph)
    lines = []
    for component in cycles:
        inside = set(component)
        edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & inside)]
        lines.append("cycle among " + ", ".join(component) + ":\n    " + "\n    ".join(edges))
    assert not cycles, "import cycles (counting every import):\n  " + "\n  ".join(lines)


def test_lower_layers_never_import_upper_ones() -> None:
    graph = import_graph()
    bad = []
    for module, targets in sorted(graph.items()):
        mine = _layer(module)
        for target in sorted(targets):
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                bad.append(
                    f"{module} ({LAYER_NAMES[mine]}) imports {target} ({LAYER_NAMES[theirs]})"
                )
    assert not bad, "imports reaching up a layer:\n  " + "\n  ".join(bad)


def test_no_module_over_400_lines() -> None:
    big = []
    for module, path in MODULES.items():
        if module.startswith(EXEMPT_FROM_SIZE):
            continue
        n = len(path.read_text().splitlines())
        if n > MAX_LINES:
            big.append(f"{path.relative_to(SRC.parent)}: {n} lines")
    assert not big, f"modules over {MAX_LINES} lines (split by concept):\n  " + "\n  ".join(
        sorted(big)
    )


def test_the_graph_sees_lazy_and_type_checking_imports() -> None:
    # The reader itself, on modules whose imports are known: cli.run_cmds imports
    # status_report inside a command, and control.assembly under TYPE_CHECKING too.
    graph = import_graph()
    assert "tradeloop.control.status_report" in graph["tradeloop.cli.run_cmds"]
    assert "tradeloop.control.assembly" in graph["tradeloop.cli.run_cmds"]
    assert "tradeloop.project" in graph["tradeloop.cli._common"]
