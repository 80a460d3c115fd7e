"""The layout keeps its promises: no import cycle, engines never import a family, the EM
driver knows families only through the contract, click and rich only in the CLI layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "emcli"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module this file imports (top level and inside functions), resolved."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            found.add(mod)
            # "from . import kernels" names a module too
            found.update(f"{mod}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = {m for m in _imports(path) if m in modules and m != name}
        graph[name] = deps
    return graph


def _is_type_only(path: Path, module: str) -> bool:
    """Imports under ``if TYPE_CHECKING:`` do not run."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom) and sub.module and module.endswith(sub.module):
                    return True
    return False


def test_import_graph_has_no_cycle():
    graph = _graph()
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    # A package's __init__ importing its own submodules is not a cycle of the design.
    for name in graph:
        graph[name] = {
            d
            for d in graph[name]
            if not (d.startswith(name + ".") and paths[name].name == "__init__.py")
            and not _is_type_only(paths[name], d)
        }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("package", ["emcli.engines", "emcli.em"])
def test_engines_and_driver_never_import_a_family(package):
    for path in (ROOT / package.split(".")[1]).rglob("*.py"):
        bad = sorted(m for m in _imports(path) if m.startswith("emcli.families"))
        assert not bad, f"{_module_name(path)} imports {bad}"


def test_numeric_core_never_imports_click_or_rich():
    for path in ROOT.rglob("*.py"):
        name = _module_name(path)
        if name.startswith("emcli.cli"):
            continue
        heavy = sorted(m for m in _imports(path) if m.split(".")[0] in ("click", "rich"))
        assert not heavy, f"{name} imports {heavy}"
