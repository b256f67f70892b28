"""The layers import one way (API -> syscalls -> portal -> machine), as their docstrings say."""

from __future__ import annotations

import ast
from pathlib import Path

import syscalls_async

PKG = Path(syscalls_async.__file__).parent
#: what every layer may use beside the layers below it
SHARED = {"errors", "_text", "_aio"}
BELOW = {"machine": set(), "portal": {"machine"}, "syscalls": {"portal", "machine"}}


def _package_imports(layer: str) -> set[str]:
    """The top-level package modules the files of ``layer`` import (``..x`` -> ``x``)."""
    found: set[str] = set()
    for path in (PKG / layer).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
    return found


def test_each_layer_imports_only_what_is_below_it() -> None:
    for layer, below in BELOW.items():
        assert _package_imports(layer) <= SHARED | below, layer


def test_the_machine_docstring_names_what_the_layer_imports() -> None:
    doc = syscalls_async.machine.__doc__ or ""
    for name in _package_imports("machine"):
        assert f"syscalls_async.{name}`" in doc


def test_each_limit_is_written_once() -> None:
    # derived once from the ABI (portal/abi.py) or the trap (portal/trap.py), imported elsewhere
    once = {
        "= (1 << 64) - 1": "portal/abi.py",
        "SA_COMM_LEN - 1": "portal/abi.py",
        "SA_FILTER_STR_MAX - 1": "portal/abi.py",
        "= 1 << 20": "portal/trap.py",
        "= 1024 * 1024\n": None,
        "max_entries: int = 4096": None,
    }
    for text, home in once.items():
        where = sorted(str(p.relative_to(PKG)) for p in PKG.rglob("*.py") if text in p.read_text())
        assert where == ([home] if home else []), text
