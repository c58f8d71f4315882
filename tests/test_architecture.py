"""The rooms' one-way doors (ARCHITECTURE.md), read from the imports of every module (ast).

runtime ← zoo ← export ← publish: a room imports only the rooms below it. The runtime reaches the
zoo and the exporter through one door, imports inside the functions of ``runtime/torch_backend.py``.
No import cycles, lazy imports included (the rule of ``../shared/tools/import_cycles.py``)."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOMS = ["snnzoo.runtime", "snnzoo.zoo", "snnzoo.export", "snnzoo.publish"]  # bottom to top
DOORS = {"snnzoo.runtime.torch_backend"}  # may import rooms above inside functions


def package_modules() -> dict[str, Path]:
    """Every module of the installed packages (pyproject's packages and package-dir)."""
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    mods = {}
    for pkg in cfg["packages"]:
        folder = REPO / cfg["package-dir"].get(pkg, pkg.replace("snnzoo.", "").replace(".", "/"))
        for f in folder.glob("*.py"):
            mods[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
    return mods


def imports(module: str, source: str, is_package: bool, known: set[str]) -> list[tuple[str, bool]]:
    """``(imported module, at module level)`` for each import of ``module`` that names a known module."""
    tree = ast.parse(source)
    lazy = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            for n in ast.walk(f) if n is not f}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != module and not module.startswith(t + "."):
                found.append((t, id(node) not in lazy))
    return found


def room(module: str) -> int | None:
    return next((i for i, r in enumerate(ROOMS) if module == r or module.startswith(r + ".")), None)


def violations(graph: dict[str, list[tuple[str, bool]]]) -> list[str]:
    """Imports that go up a room (lazy ones allowed only in ``DOORS``)."""
    bad = []
    for m, targets in graph.items():
        for t, top_level in targets:
            here, there = room(m), room(t)
            if here is not None and there is not None and there > here and (top_level or m not in DOORS):
                bad.append(f"{m} imports {t}{'' if top_level else ' (inside a function)'}")
    return sorted(set(bad))


def cycles(graph: dict[str, list[tuple[str, bool]]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), lazy imports included."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w, _ in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def import_graph() -> dict[str, list[tuple[str, bool]]]:
    mods = package_modules()
    return {m: imports(m, p.read_text(), p.name == "__init__.py", set(mods)) for m, p in mods.items()}


@pytest.fixture(scope="module")
def graph() -> dict[str, list[tuple[str, bool]]]:
    return import_graph()


def test_every_room_is_read(graph):
    assert {room(m) for m in graph} >= set(range(len(ROOMS)))
    assert "snnzoo.runtime.predictor" in graph and "snnzoo.publish.hub" in graph


def test_imports_go_down_only(graph):
    assert violations(graph) == []


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_the_checks_catch_an_import_up_and_a_cycle():
    known = {"snnzoo.runtime.a", "snnzoo.runtime.b", "snnzoo.zoo.c", "snnzoo.export.d"}
    g = {"snnzoo.runtime.a": imports("snnzoo.runtime.a", "from ..zoo.c import f\n", False, known),
         "snnzoo.runtime.b": imports("snnzoo.runtime.b", "def g():\n    import snnzoo.export.d\n", False, known),
         "snnzoo.zoo.c": imports("snnzoo.zoo.c", "from ..runtime import a\n", False, known)}
    assert violations(g) == ["snnzoo.runtime.a imports snnzoo.zoo.c",
                             "snnzoo.runtime.b imports snnzoo.export.d (inside a function)"]
    assert cycles(g) == [["snnzoo.runtime.a", "snnzoo.zoo.c"]]


# ---- one error root, printed in one place -------------------------------------------------------
PENDING_ROOT: set[str] = set()  # errors not yet under the root (none left)
PRINTS_ITSELF: set[str] = set()  # modules other than snnzoo.errors that format the line (none left)


def exception_classes() -> list[str]:
    """``module.Class`` of every class defined with a base named ``...Error``/``...Exception``/``...Missing``."""
    found = []
    for m, path in package_modules().items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and any(
                    (b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")).endswith(("Error", "Exception"))
                    for b in node.bases):
                found.append(f"{m}.{node.name}")
    return sorted(found)


def test_every_project_error_derives_from_the_root():
    import importlib

    from click import ClickException

    from snnzoo.errors import SnnzooError

    classes = exception_classes()
    assert "snnzoo.runtime.errors.EventFileError" in classes and "snnzoo.zoo.pretrained.IntegrityError" in classes
    outside = []
    for name in classes:
        module, _, cls = name.rpartition(".")
        c = getattr(importlib.import_module(module), cls)
        if not issubclass(c, (SnnzooError, ClickException)) and name not in PENDING_ROOT:
            outside.append(name)
    assert outside == []


def test_only_the_entry_point_formats_error_lines():
    """``snnzoo: error:`` is written by ``snnzoo.errors`` alone (``cli.py`` and per-file reports use it)."""
    printers = sorted(m for m, path in package_modules().items()
                      if m != "snnzoo.errors" and 'f"snnzoo: error:' in path.read_text())
    assert printers == sorted(PRINTS_ITSELF)
