"""The example plugins shipped with the package: ``python -m syscalls_async.examples``.

Without arguments it lists them (name and what each shows) and their folder;
with a name it prints that example's path, so that an installed package's
examples run as they do from a checkout::

    syscalls-async run "$(python -m syscalls_async.examples skip_ioctl)" -- \\
        send_syscall ioctl 9 0xabcd

Each file's docstring says what it shows and the command to run it with;
``test_example_plugin`` is an example *test* (pytest) of two of them.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence
from pathlib import Path

from .machine.image import source_root


def examples_dir() -> Path:
    """The examples' folder: ``examples/`` of the checkout, or the wheel's copy."""
    return source_root() / "examples"


def examples() -> dict[str, Path]:
    """Every example by name (the file name without ``.py``), in name order."""
    return {p.stem: p for p in sorted(examples_dir().glob("*.py"))}


def summary(path: Path) -> str:
    """The first line of an example's docstring."""
    doc = ast.get_docstring(ast.parse(path.read_text(), str(path))) or ""
    return doc.splitlines()[0] if doc else ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m syscalls_async.examples",
        description="List the example plugins, or print the path of one.",
    )
    parser.add_argument("name", nargs="?", help="an example's name: print its path")
    args = parser.parse_args(argv)
    found = examples()
    if args.name is not None:
        path = found.get(args.name.removesuffix(".py"))
        if path is None:
            parser.error(f"no example {args.name!r}; there are: {', '.join(found)}")
        print(path)
        return 0
    print(f"examples in {examples_dir()}:")
    width = max(map(len, found), default=0)
    for name, path in found.items():
        print(f"  {name:<{width}}  {summary(path)}")
    print('run one with: syscalls-async run "$(python -m syscalls_async.examples NAME)" -- CMD')
    return 0


if __name__ == "__main__":
    sys.exit(main())
