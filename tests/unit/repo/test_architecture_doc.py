"""docs/architecture.md matches the code: every module it names exists, every package is named.

Why: the module map is where a newcomer starts; a map naming a module that moved, or leaving a
package out, sends them looking in the wrong place.
"""
from __future__ import annotations

import re
from pathlib import Path

from tests.helpers.paths import REPO

DOC = REPO / "docs" / "architecture.md"


def named_modules(text: str) -> set[str]:
    """Paths (``core/engine/book.py``, ``core/sim/``) and dotted names (``core.ids``) in ``text``."""
    paths = set(re.findall(r"\b((?:core|console|themes)(?:/[A-Za-z0-9_]+)*(?:\.py|/))", text))
    dotted = set(re.findall(r"\b((?:core|console)(?:\.[a-z0-9_]+)+)\b", text))
    return paths | dotted


def exists(name: str, root: Path = REPO) -> bool:
    if "/" in name or name.endswith(".py"):
        return (root / name).exists()
    parts = name.split(".")
    for n in range(len(parts), 1, -1):  # the rest of a dotted name may be a function or class
        base = root.joinpath(*parts[:n])
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return True
    return False


def packages(root: Path = REPO) -> list[str]:
    return sorted(str(p.parent.relative_to(root)) for top in ("core", "console")
                  for p in (root / top).rglob("__init__.py"))


def test_every_module_the_doc_names_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = named_modules(text)
    assert len(names) > 40
    assert sorted(n for n in names if not exists(n)) == []


def test_every_package_is_named() -> None:
    text = DOC.read_text(encoding="utf-8")
    found = packages()
    assert "core/engine" in found and "console/widgets" in found
    assert [p for p in found if f"{p}/" not in text and p.replace("/", ".") not in text] == []


def test_the_checks_catch_a_stale_map(tmp_path: Path) -> None:
    (tmp_path / "core" / "gone").mkdir(parents=True)
    (tmp_path / "core" / "gone" / "__init__.py").write_text("")
    (tmp_path / "core" / "here.py").write_text("")
    names = named_modules("`core/here.py`, `core.here.thing`, `core/missing.py`, `core.nothing`")
    assert sorted(n for n in names if not exists(n, tmp_path)) == ["core.nothing", "core/missing.py"]
    assert packages(tmp_path) == ["core/gone"]
