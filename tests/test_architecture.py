"""The package's shape, checked: no import cycles (also through imports inside functions), the bottom layer imports
nothing above it, and no module grows past ~600 lines without saying why at its top."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "motionmatch"
BOTTOM = {"motionmatch.errors", "motionmatch.config", "motionmatch.validation", "motionmatch.table"}
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _import_graph(include_function_level: bool) -> nx.DiGraph:
    modules = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = ast.walk(tree) if include_function_level else tree.body
        for node in nodes:
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph.add_edge(name, target)
    return graph


def test_the_walk_finds_the_package_and_its_edges():
    graph = _import_graph(include_function_level=False)
    assert {"motionmatch.store", "motionmatch.pipeline", "motionmatch.evaluate", "motionmatch.table"} <= set(graph)
    assert graph.has_edge("motionmatch.pipeline", "motionmatch.table")  # the walk sees relative imports
    assert graph.number_of_edges() > 50


@pytest.mark.parametrize("include_function_level", [False, True], ids=["module-level", "with-function-level"])
def test_no_import_cycles(include_function_level):
    cycles = list(nx.simple_cycles(_import_graph(include_function_level)))
    assert cycles == [], f"import cycles: {cycles[:5]}"


def test_bottom_layer_imports_only_the_bottom_layer():
    graph = _import_graph(include_function_level=True)
    for module in BOTTOM:
        upward = set(graph.successors(module)) - BOTTOM
        assert not upward, f"{module} imports {sorted(upward)}: the bottom layer must not import upward"


def test_long_modules_say_why():
    for name, path in _modules().items():
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_LINES:
            docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            assert "Size:" in docstring, f"{name} has {lines} lines (> {MAX_LINES}) and no 'Size:' reason at its top"
