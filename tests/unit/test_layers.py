"""The package's folders are its layers: a module may import only from its own layer and
the layers below it, and only the gdb adapter imports ``gdb``. Read from the source with
``ast``, so a lazy import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gdb_tinyos"

# layer -> the layers it may import (besides itself)
ALLOWED = {
    "core": set(),
    "aarch64": {"core"},
    "debuginfo": {"core"},
    "tinyos": {"core", "aarch64", "debuginfo"},
    "launcher": {"core"},
    "gdb": {"core", "aarch64", "debuginfo", "tinyos", "launcher"},
    "testing": {"core", "aarch64", "debuginfo", "tinyos", "launcher"},
}
# the package's own top-level files: the version and the loader gdb sources
TOP_LEVEL = {"__init__.py", "gdbinit.py"}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE)


def _layer(rel: Path) -> str | None:
    return rel.parts[0] if len(rel.parts) > 1 else None


def _imports(rel: Path):
    """(imported top-level module or gdb_tinyos layer, line) for every import in the file."""
    tree = ast.parse((PACKAGE / rel).read_text(), str(rel))
    package = ["gdb_tinyos", *rel.parts[:-1]]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                if not node.module and len(base) == 1:  # from .. import x: x is the layer
                    for alias in node.names:
                        yield f"gdb_tinyos.{alias.name}", node.lineno
                    continue
                yield target, node.lineno
            else:
                yield node.module, node.lineno


def _violations(rel: Path) -> list[str]:
    layer = _layer(rel)
    out = []
    for name, line in _imports(rel):
        top = name.split(".")[0]
        if top == "gdb" and layer != "gdb" and rel.name != "gdbinit.py":
            out.append(f"{rel}:{line} imports gdb outside the gdb adapter")
        if top != "gdb_tinyos" or layer is None:
            continue
        parts = name.split(".")
        target = parts[1] if len(parts) > 1 else None
        if target is None or target == layer or target == "__init__" or target not in ALLOWED:
            continue
        if target not in ALLOWED[layer]:
            out.append(f"{rel}:{line} ({layer}) imports {name} ({target})")
    return out


def test_every_module_belongs_to_a_layer():
    stray = [str(rel) for rel in _modules() if _layer(rel) is None and rel.name not in TOP_LEVEL]
    assert stray == []
    assert {rel.parts[0] for rel in _modules() if _layer(rel)} == set(ALLOWED)


@pytest.mark.parametrize("rel", list(_modules()), ids=str)
def test_imports_follow_the_layers(rel):
    assert _violations(rel) == []


def test_the_rule_catches_a_crossing(tmp_path, monkeypatch):
    # The checker itself must see a violation when one is there: a core module importing tinyos.
    fake = tmp_path / "gdb_tinyos"
    (fake / "core").mkdir(parents=True)
    (fake / "core" / "bad.py").write_text("from ..tinyos import cow\nimport gdb\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    found = _violations(Path("core/bad.py"))
    assert len(found) == 2
