"""The import graph of the project: no circle anywhere, and the layers import one way only.

Every ``import`` statement counts, at the top of a module or inside a function: a late import hides a circle from
Python, not from a reader.
"""

from __future__ import annotations

import ast
import graphlib
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("theory", "analysis", "simulate", "empirical", "paper_checks")
"""Bottom to top: a package of ``bnwd`` may import only those before it (and itself)."""


def _module_name(path: Path) -> str:
    parts = ("bnwd", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    return module.split(".")[1]


def imported_names() -> dict[str, set[str]]:
    """Module → every name its imports name (``from a import b``: ``a.b`` if that is a module, else ``a``)."""
    modules = {_module_name(path): path for layer in LAYERS for path in (ROOT / layer).rglob("*.py")}
    imported = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported[name].update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = (f"{node.module}.{alias.name}" for alias in node.names)
                imported[name].update(target if target in modules else node.module for target in targets)
    return imported


IMPORTED = imported_names()


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports."""
    return {name: {t for t in targets if t in IMPORTED and t != name} for name, targets in IMPORTED.items()}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (its modules in order, the first repeated at the end), or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return error.args[1]
    return None


GRAPH = import_graph()


def test_the_graph_sees_the_project():
    assert len(GRAPH) > 40
    assert "bnwd.empirical.config" in GRAPH["bnwd.empirical.runs"]
    assert "bnwd.paper_checks.cli.train_cmd" in GRAPH["bnwd.paper_checks.cli"]  # `from bnwd.paper_checks.cli import …`
    assert "bnwd.paper_checks.demo" in GRAPH["bnwd.paper_checks.cli.demo_cmd"]  # an import inside a function


def test_every_import_is_under_bnwd():
    stray = sorted((name, t) for name, targets in IMPORTED.items() for t in targets if t.split(".")[0] in LAYERS)
    assert not stray, f"imported by a folder's name, not as bnwd.<layer>: {stray}"


def test_no_import_circle():
    assert find_circle(GRAPH) is None, f"an import circle: {' -> '.join(find_circle(GRAPH))}"


def test_a_circle_is_found():  # the control: the test above can fail
    graph = {name: set(targets) for name, targets in GRAPH.items()}
    graph["bnwd.empirical.config"].add("bnwd.empirical.runs")
    circle = find_circle(graph)
    assert circle is not None and {"bnwd.empirical.config", "bnwd.empirical.runs"} <= set(circle)


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_import_downwards_only(layer):
    above = LAYERS[LAYERS.index(layer) + 1 :]
    upward = [
        (module, target)
        for module, targets in GRAPH.items()
        for target in targets
        if _layer(module) == layer and _layer(target) in above
    ]
    assert not upward, f"{layer} imports from a layer above it: {upward}"


def test_a_users_own_modules_shadow_nothing(tmp_path):
    """A notebook's folder with its own theory.py, simulate.py, … (first on sys.path) leaves bnwd's alone."""
    for layer in LAYERS:
        (tmp_path / f"{layer}.py").write_text(f"raise ImportError('the user\\'s own {layer}.py was imported')\n")
    code = (
        "import sys\n"
        "import bnwd.theory, bnwd.analysis.destabilization, bnwd.simulate.integrate, bnwd.paper_checks.cli\n"
        "from bnwd.paper_checks.checks import load_checks\n"
        "load_checks()\n"  # the checks are imported by name at run time
        f"assert not {{name.split('.')[0] for name in sys.modules}} & {set(LAYERS)}, 'a layer by its own name'\n"
        "print(bnwd.simulate.integrate.__file__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).resolve() == ROOT / "simulate" / "integrate.py"
    control = subprocess.run([sys.executable, "-c", "import simulate"], cwd=tmp_path, capture_output=True, text=True)
    assert "the user's own simulate.py was imported" in control.stderr  # the folder is first on sys.path


def _declares_all(path: Path) -> bool:
    targets = [
        target
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
    ]
    # `__all__, __getattr__, __dir__ = lazy_exports(...)` in a package's __init__
    names = [getattr(t, "id", None) for target in targets for t in getattr(target, "elts", [target])]
    return "__all__" in names


@pytest.mark.parametrize("layer", LAYERS)
def test_every_module_names_its_public_names(layer):
    modules = [path for path in (ROOT / layer).rglob("*.py") if path.name != "__main__.py"]
    lacking = [str(path.relative_to(ROOT)) for path in modules if not _declares_all(path)]
    assert not lacking, f"modules without __all__: {lacking}"


@pytest.mark.parametrize("layer", LAYERS)
def test_each_package_exports_what_it_names(layer):
    package = importlib.import_module(f"bnwd.{layer}")
    assert package.__all__, f"bnwd.{layer} names no entry point"
    for name in package.__all__:
        assert getattr(package, name) is not None
    with pytest.raises(AttributeError):
        package.no_such_name  # noqa: B018
