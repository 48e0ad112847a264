"""The layers of docs/architecture.md, read from the code's own imports: no loops, none upward."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pbx", "dashboard", "agenda", "terminals", "swanproject")

# Lowest first; a module may import modules of its own layer or of a lower one.
LAYERS = [
    (
        "rules",
        ["pbx.errors", "pbx.text", "pbx.values", "pbx.local_time", "pbx.csv_cells",
         "pbx.prerendered", "pbx.plain_sql", "pbx.models", "agenda.models", "terminals.models",
         "dashboard.models",
         "pbx.gateway"],
    ),
    ("directory", ["pbx.directory", "agenda.services", "agenda.csv_format"]),
    ("live", ["pbx.live", "terminals.services", "terminals.selectors", "terminals.locking"]),
    ("history", ["pbx.history"]),
]  # fmt: skip
DOMAIN = [prefix for _name, prefixes in LAYERS for prefix in prefixes]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Every project module and the project modules it imports (at any depth of its code)."""
    files = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    modules = {_module_name(p): p for p in files if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    found.add(candidate if candidate in modules else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _layer(module: str) -> int | None:
    for index, (_name, prefixes) in enumerate(LAYERS):
        if any(_within(module, prefix) for prefix in prefixes):
            return index
    return None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_one_that_imports_it_back():
    assert _cycles(_imports()) == []


def test_domain_code_imports_nothing_above_its_layer():
    upward = []
    for module, imported in sorted(_imports().items()):
        layer = _layer(module)
        if layer is None:
            continue  # an edge: the API, the dashboard, admin, commands, the project
        for target in sorted(imported):
            target_layer = _layer(target)
            if target_layer is None or target_layer > layer:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_the_layers_cover_the_domain_packages():
    # A new package of the domain must be given its layer here (and in docs/architecture.md).
    graph = _imports()
    stages = {".".join(m.split(".")[:2]) for m in graph if m.startswith("pbx.")}
    edges = {"pbx.api", "pbx.admin", "pbx.apps", "pbx.checks", "pbx.management", "pbx.simulator"}
    assert {s for s in stages if _layer(s) is None and s != "pbx"} <= edges
