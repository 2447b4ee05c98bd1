"""The pipeline's stages import only what lies downstream of them (and the pure rules), so that
the layout keeps showing the flow: http -> ingest -> process -> store -> outbound."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "rdevents"

# What each stage must never import.
FORBIDDEN = {
    "process": {"http", "ingest", "store", "outbound", "cli"},
    "store": {"http", "ingest", "outbound", "cli"},
    "ingest": {"http", "outbound", "cli"},
    "outbound": {"http", "ingest", "process", "cli"},
}


def imported_packages(path: Path) -> set[str]:
    """The rdevents subpackages or modules a module imports (relative or absolute)."""
    module = path.relative_to(PACKAGE.parent).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module[:len(module) - node.level]
                parts = (*base, *(node.module or "").split(".")) if node.module else base
                if len(parts) == 1:  # `from .. import x`: x names the subpackage
                    found.update(alias.name for alias in node.names)
                else:
                    found.add(parts[1])
            elif node.module and node.module.startswith("rdevents."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names
                         if alias.name.startswith("rdevents."))
    return found


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_a_stage_imports_nothing_upstream(stage: str) -> None:
    offending = {str(path.relative_to(PACKAGE)): sorted(imported_packages(path) & FORBIDDEN[stage])
                 for path in (PACKAGE / stage).rglob("*.py")}
    assert {path: names for path, names in offending.items() if names} == {}
