"""The package layout: no import cycles anywhere in ``interstable/``, and a core that never imports the host.

Both checks read the source with :mod:`ast` (nothing is imported), so lazy imports inside functions and imports under
``if TYPE_CHECKING:`` count as much as the ones at the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGE = ROOT / "interstable"
HOST_MODULES = ("modules", "gradio", "launch")
HOST_COUPLED = "interstable.webui"


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported_names(name: str, path: Path) -> list[str]:
    """The dotted names that ``path`` (module ``name``) imports, anywhere in the file, relative ones resolved.

    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (the second one only matters when it is a module).
    """
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append(target)
            found.extend(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's own modules it imports."""
    modules = module_names(package)
    return {
        name: {target for target in imported_names(name, path) if target in modules and target != name}
        for name, path in modules.items()
    }


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """Return one import cycle as ``[a, b, ..., a]``, or None when the graph has none (depth-first search)."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for step in sorted(graph.get(node, ())):
            cycle = visit(step)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


# --- the finders themselves --------------------------------------------------------------------------------------


def test_find_cycle_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond is no cycle
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"y2"}, "y2": {"y"}}) == ["y", "y2", "y"]


def test_import_graph_sees_lazy_relative_and_package_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.child import thing\n")
    (pkg / "sub" / "child.py").write_text("def f():\n    from pkg.sub import other\n")
    (pkg / "sub" / "other.py").write_text("from . import child\nfrom ..top import x\n")
    (pkg / "top.py").write_text("import pkg.sub.other\n")
    graph = import_graph(pkg)
    assert graph["pkg.sub"] == {"pkg.sub.child"}
    assert graph["pkg.sub.child"] == {"pkg.sub", "pkg.sub.other"}  # lazy, and the package's __init__ counts
    assert graph["pkg.sub.other"] == {"pkg.sub", "pkg.sub.child", "pkg.top"}
    assert graph["pkg.top"] == {"pkg.sub.other"}
    assert find_cycle(graph) == ["pkg.sub", "pkg.sub.child", "pkg.sub"]


# --- the package -------------------------------------------------------------------------------------------------


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def _host_imports(name: str, path: Path) -> list[str]:
    return [target for target in imported_names(name, path) if target.split(".")[0] in HOST_MODULES]


def test_host_import_finder_sees_nested_and_lazy_imports(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text("def f():\n    if True:\n        from modules import shared\n    import gradio as gr\n")
    assert sorted(_host_imports("pkg.mod", path)) == ["gradio", "modules", "modules.shared"]


@pytest.mark.parametrize("name", sorted(n for n in module_names() if not n.startswith(HOST_COUPLED)))
def test_the_core_never_imports_the_host(name):
    assert _host_imports(name, module_names()[name]) == [], f"{name} imports the WebUI host; only webui/ may"


def test_every_subpackage_has_a_public_face():
    for init in PACKAGE.glob("*/__init__.py"):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{init.relative_to(ROOT)} has no docstring"


def test_no_module_is_private_inside_a_package():
    private = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("_*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert private == []


LAYERS = {
    "interstable": 0,
    "interstable.errors": 0,
    "interstable.seeds": 0,
    "interstable.args": 1,
    "interstable.prompt": 1,
    "interstable.lines": 2,
    "interstable.caption": 2,
    "interstable.llm": 2,
    "interstable.client": 2,
    "interstable.tinymodels": 2,  # test models; the tiny SD1's tokenizer comes from prompt's CLIP BPE
    "interstable.job": 3,
    "interstable.webui": 4,
    "interstable.cli": 4,
    "interstable.__main__": 5,
    "interstable.bench": 5,
}
"""Imports run one way, to a lower number: the apps -> job -> the stages -> prompt, args, errors, seeds."""


def _unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_every_top_level_unit_has_a_layer():
    assert {_unit(name) for name in module_names()} == set(LAYERS)


def test_imports_run_one_way():
    upward = sorted(
        f"{name} -> {target}"
        for name, targets in import_graph().items()
        for target in targets
        if _unit(name) != _unit(target) and LAYERS[_unit(target)] >= LAYERS[_unit(name)]
    )
    assert upward == []
