"""The import graph of nasmix: no circles, no function-local imports that dodge one,
no private names taken from another module.

Every `import` and `from x import y` in every module counts (at the top, inside
functions, and under `if TYPE_CHECKING`), with `from package import module`
resolved to the module. Importing `a.b.c` also runs the packages `a` and `a.b`,
except those the importing module is inside anyway. What the registry and the
CLI load by name (importlib) is not an import edge: that is how modules plug in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nasmix

ROOT = Path(nasmix.__file__).parent
# Function-local imports of nasmix modules that stay lazy on purpose: the report's
# renderer imports matplotlib, which only drawing needs.
LAZY = {("nasmix.api", "nasmix.report.render"), ("nasmix.commands.report", "nasmix.report.render")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str) -> list[tuple[str, list[str], bool, int]]:
    """(imported module, names taken from it, inside a function, line) of every import in a module."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((a.name, [], local, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                out.append((base, [a.name for a in child.names], local, child.lineno))
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        for module, names, _, _ in _imports(name):
            targets = [module] + [f"{module}.{n}" for n in names]
            for target in (t for t in targets if t in MODULES):
                parts = target.split(".")
                for i in range(1, len(parts) + 1):  # the module and the packages it runs
                    dep = ".".join(parts[:i])
                    if dep in MODULES and dep != name and not name.startswith(dep + "."):
                        graph[name].add(dep)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
    return found


def test_the_walk_sees_the_package():
    graph = _graph()
    assert {"nasmix.arch", "nasmix.registry", "nasmix.study.schema", "nasmix.api"} <= set(graph)
    assert "nasmix.registry" in graph["nasmix.arch"] and "nasmix.spaces" not in graph["nasmix.arch"]
    assert {"nasmix.strategies.base", "nasmix.train"} <= graph["nasmix.strategies.oneshot"]


def test_a_planted_circle_is_found():
    graph = {k: set(v) for k, v in _graph().items()}
    graph["nasmix.errors"].add("nasmix.study.run")  # errors is imported (indirectly) by study.run
    assert any("nasmix.errors" in c and "nasmix.study.run" in c for c in _cycles(graph))


def test_no_import_circles():
    assert _cycles(_graph()) == []


def test_function_local_imports_only_keep_heavy_parts_lazy():
    local = set()
    for name in MODULES:
        for module, names, inner, _ in _imports(name):
            if inner and (module in MODULES or any(f"{module}.{n}" in MODULES for n in names)):
                local.add((name, module))
    assert local <= LAZY, f"imports inside functions: {sorted(local - LAZY)}"


def test_no_private_names_cross_modules():
    crossing = []
    for name in MODULES:
        for module, names, _, line in _imports(name):
            private = [n for n in names if n.startswith("_")]
            if module.startswith("nasmix") and module != name and private:
                crossing.append(f"{name}:{line} takes {private} from {module}")
    assert crossing == []
