"""The package's shape, checked: one folder per stage in the pipeline's order, no folder importing a later one,
no import cycles (also through imports inside functions), a flat bottom layer that imports nothing above it,
every folder re-exporting its public names, notebooks importing from folders only, and no module past ~600
lines without saying why at its top."""
from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "motionmatch"
BOTTOM = ("errors", "config", "validation", "table", "devices", "stages")
# The stages, in the order a module may import them: each folder imports only the bottom layer, itself and
# the folders before it. refine comes before index because index_run stores the gallery calibration (a refine
# object) with the collection; refine itself works on arrays and never touches a store's code.
ORDER = ("metrics", "video", "data", "encoders", "extract", "refine", "index", "search", "evaluation", "beyond",
         "report", "cli")
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
                # `from . import config` imports the module config, not the package it lives in
                submodules = [f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in modules]
                targets = submodules if len(submodules) == len(node.names) else [module, *submodules]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph.add_edge(name, target)
    return graph


def _stage(module: str) -> str:
    """"motionmatch.search.range" -> "search"; a bottom module -> "bottom"; the package itself -> "top"."""
    parts = module.split(".")
    if len(parts) == 1:
        return "top"
    return "bottom" if parts[1] in BOTTOM else parts[1]


def test_the_tree_is_the_pipeline():
    flat = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert flat == sorted(BOTTOM), f"top-level modules other than the bottom layer: {set(flat) - set(BOTTOM)}"
    folders = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert folders == sorted(ORDER)


def test_the_walk_finds_the_package_and_its_edges():
    graph = _import_graph(include_function_level=False)
    assert {"motionmatch.index.store", "motionmatch.extract.local", "motionmatch.search.range", "motionmatch.table"} <= set(graph)
    assert graph.has_edge("motionmatch.extract.local", "motionmatch.extract.parts")  # relative, same folder
    assert graph.has_edge("motionmatch.search.range", "motionmatch.video.windows")  # relative, another folder
    assert graph.number_of_edges() > 150


@pytest.mark.parametrize("include_function_level", [False, True], ids=["module-level", "with-function-level"])
def test_no_import_cycles(include_function_level):
    cycles = list(nx.simple_cycles(_import_graph(include_function_level)))
    assert cycles == [], f"import cycles: {cycles[:5]}"


def test_no_folder_imports_a_later_one():
    rank = {"bottom": -1, **{stage: i for i, stage in enumerate(ORDER)}, "top": len(ORDER)}
    upward = [(a, b) for a, b in _import_graph(include_function_level=True).edges
              if rank[_stage(b)] > rank[_stage(a)]]
    assert upward == [], f"imports that run against the pipeline's order: {upward[:10]}"


def test_bottom_layer_imports_only_the_bottom_layer():
    graph = _import_graph(include_function_level=True)
    for module in (f"motionmatch.{name}" for name in BOTTOM):
        upward = {b for b in graph.successors(module) if _stage(b) != "bottom"}
        assert not upward, f"{module} imports {sorted(upward)}: the bottom layer must not import upward"


@pytest.mark.parametrize("folder", ORDER)
def test_each_folder_reexports_its_public_names(folder):
    package = importlib.import_module(f"motionmatch.{folder}")
    exported = getattr(package, "__all__", None)
    assert exported, f"motionmatch.{folder} has no __all__: its __init__ should re-export the folder's public names"
    for name in exported:
        assert getattr(package, name, None) is not None, f"motionmatch.{folder}.__all__ names {name!r}, which is missing"
    assert (package.__doc__ or "").strip(), f"motionmatch.{folder} says nothing about itself"


def test_the_top_package_exposes_the_verbs():
    import motionmatch as mm

    import motionmatch.extract.local as local  # the folders stay importable whatever the verbs are

    for verb in ("extract", "index", "search", "search_range", "evaluate", "MotionStore", "load_run"):
        assert callable(getattr(mm, verb)), verb
    assert mm.extract.load_run is mm.load_run and local.extract_embeddings is mm.extract.extract_embeddings


def test_notebooks_import_from_folders_only():
    allowed = {"motionmatch", *(f"motionmatch.{name}" for name in (*BOTTOM, *ORDER))}
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        for cell in (c for c in cells if c["cell_type"] == "code"):
            tree = ast.parse("".join(line for line in "".join(cell["source"]).splitlines(keepends=True)
                                     if not line.lstrip().startswith(("%", "!"))))
            for node in ast.walk(tree):
                module = node.module if isinstance(node, ast.ImportFrom) else None
                names = [module] if module else [a.name for a in node.names] if isinstance(node, ast.Import) else []
                for name in names:
                    if name and name.startswith("motionmatch"):
                        assert name in allowed, f"{notebook.name} imports {name}: import from its folder instead"


def test_long_modules_say_why():
    for name, path in _modules().items():
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_LINES:
            docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            assert "Size:" in docstring, f"{name} has {lines} lines (> {MAX_LINES}) and no 'Size:' reason at its top"
