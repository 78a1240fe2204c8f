"""core/ never imports console/ or textual: the engine must run headless and test without a terminal."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

FORBIDDEN = ("textual", "console")


def forbidden_imports(source: str, filename: str = "<string>") -> list[str]:
    """Every import of a forbidden top-level package, static or via importlib/__import__ with a literal."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if callee in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [f"{filename}:{node.lineno}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    return found


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("import textual", True),
        ("from textual.app import App", True),
        ("import os, console.cli as c", True),
        ("from console import app", True),
        ("def f():\n    import textual.widgets\n", True),
        ("import importlib\nimportlib.import_module('console.app')", True),
        ("__import__('textual')", True),
        ("from . import console", False),  # core.console would be a core module, allowed
        ("import textualize_helper\nfrom consoles import x", False),
        ("from core.model import Fill\nimport loguru", False),
    ],
)
def test_checker_detects_forbidden_imports(source: str, bad: bool) -> None:
    assert bool(forbidden_imports(source)) is bad


def test_core_never_imports_console_or_textual() -> None:
    files = sorted((REPO / "core").rglob("*.py"))
    assert len(files) >= 5
    offenders = [hit for f in files for hit in forbidden_imports(f.read_text(encoding="utf-8"), str(f.relative_to(REPO)))]
    assert offenders == []


# ---------------------------------------------------------------- import circles
# `make lint` checks the layers (import-linter, pyproject.toml); this checks that no modules of
# core/ and console/ import each other in a loop, on the same graph (grimp, import-linter's own).
# `pytest tests/unit/repo/test_layering.py -k circle` shows it.

# Circles made only of imports under `if TYPE_CHECKING:` (annotations, no import at run time)
# that are known and not broken yet: the simulator's parts annotate the SimServer that builds them.
KNOWN_ANNOTATION_CIRCLES = [frozenset({
    "core.sim.bybit_rest", "core.sim.bybit_ws", "core.sim.changelog", "core.sim.control",
    "core.sim.persist", "core.sim.rest", "core.sim.server"})]


def import_circles(*, annotations: bool) -> list[frozenset[str]]:
    """Every set of modules that import each other in a loop (strongly connected, 2 or more);
    ``annotations``: count the imports made only for type checking too."""
    import grimp

    graph = grimp.build_graph("core", "console", cache_dir=None,
                              exclude_type_checking_imports=not annotations)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[frozenset[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = set()
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    members.add(top)
                    if top == node:
                        break
                if len(members) > 1:
                    circles.append(frozenset(members))
    return circles


def test_no_import_circle_in_core_or_console() -> None:
    assert import_circles(annotations=False) == []


def test_annotation_imports_make_no_new_circle() -> None:
    found = import_circles(annotations=True)
    assert [c for c in found if c not in KNOWN_ANNOTATION_CIRCLES] == []
    # the finder finds one: the known circle is still there (drop it from the list once broken)
    assert found == KNOWN_ANNOTATION_CIRCLES


def test_the_circle_finder_finds_a_circle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "loopy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from loopy import b\n")
    (pkg / "b.py").write_text("from loopy import c\n")
    (pkg / "c.py").write_text("import loopy.a\n")
    (pkg / "d.py").write_text("import loopy.a\n")
    import grimp

    monkeypatch.syspath_prepend(str(tmp_path))
    real = grimp.build_graph
    monkeypatch.setattr(grimp, "build_graph", lambda *_, **kw: real("loopy", **kw))
    assert import_circles(annotations=False) == [frozenset({"loopy.a", "loopy.b", "loopy.c"})]


# The exchange-neutral layers: what they import may name no exchange (OKX, Bybit) nor the simulator.
# A venue is reached through core.venue.base.Venue and core.venue.registry only.
NEUTRAL = ("core/engine", "core/accounting/ledger.py", "core/journal", "core/confirm", "core/risk", "console")


def _exchange_module(name: str) -> bool:
    return (name.startswith(("core.venue.okx", "core.venue.bybit"))
            or name == "core.sim" or name.startswith("core.sim."))


def exchange_imports(source: str, filename: str = "<string>") -> list[str]:
    """Every import (static, or importlib/__import__ of a literal) of an exchange's module."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if callee in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [f"{filename}:{node.lineno}: {n}" for n in names if _exchange_module(n)]
    return found


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("from core.venue.okx import OkxVenue", True),
        ("import core.venue.bybit_parse", True),
        ("from core.venue import okx_parse", True),
        ("from core import sim", True),
        ("def f():\n    from core.sim.server import SimServer\n", True),
        ("import importlib\nimportlib.import_module('core.venue.bybit')", True),
        ("from core.venue.base import Venue", False),
        ("from core.venue.registry import make_venue", False),
        ("from core.simple import x", False),
    ],
)
def test_checker_detects_exchange_imports(source: str, bad: bool) -> None:
    assert bool(exchange_imports(source)) is bad


def test_engine_ledger_journal_console_import_no_exchange() -> None:
    files = sorted(f for part in NEUTRAL for f in ([REPO / part] if part.endswith(".py")
                                                   else (REPO / part).rglob("*.py")))
    assert len(files) >= 40
    offenders = [hit for f in files for hit in exchange_imports(f.read_text(encoding="utf-8"),
                                                                str(f.relative_to(REPO)))]
    assert offenders == []


CORE_ROOT_MODULES = {"__init__.py", "events.py", "ids.py", "model.py", "money.py"}


def test_core_root_holds_only_the_shared_contract() -> None:
    """Everything else in core/ lives in a package named for what it holds (settings, support,
    accounting, journal, venue, engine, ...): a newcomer reads the root as the shared types."""
    loose = {p.name for p in (REPO / "core").glob("*.py")}
    assert loose == CORE_ROOT_MODULES, f"loose modules in core/: {sorted(loose - CORE_ROOT_MODULES)}"
