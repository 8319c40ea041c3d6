"""The package's imports point one way, downward (docs/design.md, "Package layout"):
pipeline → attacks → data · victims · evaluation → blackbox · utils."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sva"

#: layer → rank; a module may import its own layer and any layer of a lower rank
RANK = {"utils": 0, "blackbox": 1, "data": 2, "victims": 2, "evaluation": 2, "attacks": 3, "pipeline": 4, "cli": 5}
#: layers of one rank that still must not import each other
SIBLINGS_APART = {"data", "victims", "evaluation"}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "sva" and parts[1] in RANK else None


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_imports_point_downward(path):
    rel = path.relative_to(PACKAGE)
    own = rel.parts[0].removesuffix(".py")
    assert own in RANK, f"sva/{rel}: not inside a layer folder ({', '.join(RANK)})"
    for name in sorted(_imports(path)):
        other = _layer(name)
        if other is None or other == own:
            continue
        assert RANK[other] < RANK[own] or (RANK[other] == RANK[own] and other not in SIBLINGS_APART), \
            f"sva/{rel} imports {name}: {own} may not import {other}"


def test_names_explain_themselves():
    """No module named after the package or its parent, no init.py beside __init__.py."""
    for path in MODULES:
        assert path.name != "init.py", path
        assert not (path.stem == path.parent.name), path
        assert path.stem != "sva" or path.parent == PACKAGE, path
