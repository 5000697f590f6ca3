"""The import graph of ``platform/``, ``dashboards/`` and ``sasa/``, computed from the source with :mod:`ast`.

Nothing is imported. Module names are the repo-root ones (``platform.study.run``, ``dashboards.report``). Inside
``platform/`` and ``dashboards/`` imports are relative, and a few are written for the installed layout
(``sasa_lab`` = ``platform/``, ``sasa_lab.dashboards`` = ``dashboards/``): relative imports are resolved in that
layout and mapped back, so both branches of a name-dependent import count. Every import counts, wherever it is
(module level, ``if`` branches, ``TYPE_CHECKING`` blocks, functions).

Importing a module from outside its top-level package first executes that package's ``__init__`` (and those of
the subpackages on the way): such an import also depends on those packages. Inside one top-level package the
package is already being initialised, so its ancestors are not added there (the usual ``__init__`` re-export).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("platform", "dashboards", "sasa")
_INSTALLED = {"platform": "sasa_lab", "dashboards": "sasa_lab.dashboards", "sasa": "sasa"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _to_repo_name(installed: str) -> str:
    """``sasa_lab.dashboards.x`` → ``dashboards.x``; ``sasa_lab.x`` → ``platform.x``."""
    for prefix, repo in (("sasa_lab.dashboards", "dashboards"), ("sasa_lab", "platform")):
        if installed == prefix or installed.startswith(prefix + "."):
            return repo + installed[len(prefix):]
    return installed


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=dict)  # module -> first-party modules it imports
    late: dict[str, list[tuple[int, str, bool]]] = field(default_factory=dict)  # in functions: (line, name, noted)

    def imports_of(self, prefix: str) -> set[str]:
        return {m for m in self.modules if m == prefix or m.startswith(prefix + ".")}


def _resolve(graph_modules: set[str], module: str, is_package: bool, node: ast.Import | ast.ImportFrom
             ) -> Iterator[str]:
    """Absolute repo-root names of what ``node`` in ``module`` imports (first-party modules only)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield _to_repo_name(alias.name)
        return
    if node.level == 0:
        base = node.module or ""
    else:
        top = module.split(".")[0]
        installed = _INSTALLED[top] + module[len(top):]
        parts = installed.split(".") if is_package else installed.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = _to_repo_name(".".join(parts + ([node.module] if node.module else [])))
    yield base  # ``from P import x`` reads P's namespace: P's ``__init__`` runs (or is running) first
    for alias in node.names:
        candidate = f"{base}.{alias.name}" if base else alias.name
        if candidate in graph_modules:
            yield candidate


def _entered_packages(module: str, target: str) -> list[str]:
    """The packages whose ``__init__`` importing ``target`` from ``module`` executes: all of ``target``'s ancestors
    when it lies in another top-level package, none inside the same one."""
    parts = target.split(".")
    if parts[0] == module.split(".")[0]:
        return []
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def build_graph() -> Graph:
    graph = Graph()
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            graph.modules[_module_name(path)] = path
    names = set(graph.modules)
    for module, path in graph.modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lines = path.read_text(encoding="utf-8").splitlines()
        is_package = path.name == "__init__.py"
        deps: set[str] = set()
        in_functions = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                        for n in ast.walk(f) if isinstance(n, ast.Import | ast.ImportFrom)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = list(_resolve(names, module, is_package, node))
            first_party = [t for t in targets if t.split(".")[0] in (*PACKAGES, "sasa_lab")]
            deps.update(t for t in first_party if t in names)
            deps.update(a for t in first_party if t in names for a in _entered_packages(module, t) if a in names)
            if id(node) in in_functions:
                noted = "#" in lines[node.lineno - 1] or lines[node.lineno - 2].strip().startswith("#")
                for target in targets:
                    graph.late.setdefault(module, []).append((node.lineno, target, noted))
        deps.discard(module)
        graph.edges[module] = deps
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), i.e. the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for dep in graph.edges.get(node, ()):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
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

    for node in sorted(graph.edges):
        if node not in index:
            visit(node)
    return found


def unit_of(module: str) -> str:
    """A module's concept unit inside ``platform/``: ``platform.study.run`` → ``study``; outside → its package."""
    parts = module.split(".")
    if parts[0] != "platform":
        return parts[0]
    return parts[1] if len(parts) > 1 else "__init__"


def unit_levels(graph: Graph) -> dict[str, int]:
    """Import level of each unit of ``platform/`` (1: imports no other unit; else 1 + the highest it imports).

    Units are the top-level modules and subpackages of ``platform/``; anything outside it (``dashboards``,
    ``sasa``) counts as a leaf. Raises ``ValueError`` when the units import each other in a cycle.
    """
    deps: dict[str, set[str]] = {}
    for module, targets in graph.edges.items():
        if not module.startswith("platform"):
            continue
        unit = unit_of(module)
        deps.setdefault(unit, set()).update(
            unit_of(t) for t in targets if t.startswith("platform") and unit_of(t) != unit
        )
    levels: dict[str, int] = {}

    def level(unit: str, path: tuple[str, ...]) -> int:
        if unit in path:
            raise ValueError(f"units import each other: {' -> '.join((*path, unit))}")
        if unit not in levels:
            levels[unit] = 1 + max((level(d, (*path, unit)) for d in deps.get(unit, ())), default=0)
        return levels[unit]

    for unit in deps:
        level(unit, ())
    return levels


def module_levels(graph: Graph, prefix: str) -> dict[str, int]:
    """The same levels per module (longest chain of imports among modules under ``prefix``)."""
    levels: dict[str, int] = {}

    def level(module: str) -> int:
        if module not in levels:
            inside = [d for d in graph.edges.get(module, ()) if d.startswith(prefix)]
            levels[module] = 1 + max((level(d) for d in inside), default=0)
        return levels[module]

    for module in graph.modules:
        if module.startswith(prefix):
            level(module)
    return levels
