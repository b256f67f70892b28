"""The error tree: one branch per family, exported in order, and no deliberate raise outside it."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
from pathlib import Path

import syscalls_async
from syscalls_async import errors
from syscalls_async.errors import (
    GuestMemoryError,
    MachineError,
    PortalError,
    RegistrationError,
    SyscallsAsyncError,
    UsageError,
)

FAMILIES = {
    UsageError: {"StateError", "HandlerContextError", "ReadOnlyHookError", "ObserveOnlyError",
                 "InvalidValue",
                 "OutOfRange", "IndexOutOfRange", "RequestTooLarge", "InvalidType"},
    RegistrationError: set(),
    GuestMemoryError: set(),
    PortalError: {"PortalVersionError", "PortalProtocolError", "PortalLost", "TrapGone"},
    MachineError: {"GuestPanic", "BootTimeout", "CommandTimeout", "CommandFailed",
                   "ImageBuildError", "SetupError"},
}  # fmt: skip


def _tree() -> list[type[SyscallsAsyncError]]:
    return [
        c
        for c in vars(errors).values()
        if inspect.isclass(c)
        and issubclass(c, SyscallsAsyncError)
        and c.__module__ == errors.__name__
    ]


def test_each_family_has_its_own_branch() -> None:
    for base, members in FAMILIES.items():
        assert base.__bases__[0] is SyscallsAsyncError
        assert {c.__name__ for c in _tree() if issubclass(c, base) and c is not base} == members
    # no family under another: an ``except`` of one never catches another's
    for a in FAMILIES:
        for b in FAMILIES:
            assert a is b or not issubclass(a, b)
    assert not issubclass(GuestMemoryError, PortalError)


def test_builtin_types_that_are_contracts_are_kept() -> None:
    assert issubclass(errors.InvalidValue, ValueError) and issubclass(RegistrationError, ValueError)
    assert issubclass(errors.OutOfRange, ValueError) and issubclass(
        errors.RequestTooLarge, ValueError
    )
    assert issubclass(errors.InvalidType, TypeError) and issubclass(errors.StateError, RuntimeError)
    assert issubclass(errors.IndexOutOfRange, IndexError)


def test_the_root_exports_every_error_most_generic_first() -> None:
    exported = [n for n in syscalls_async.__all__ if n in vars(errors)]
    assert set(exported) == {c.__name__ for c in _tree()}
    assert exported[0] == "SyscallsAsyncError"
    for i, name in enumerate(exported):
        cls = getattr(syscalls_async, name)
        assert cls is getattr(errors, name)
        # every base of an error comes before it
        for base in cls.__mro__[1:]:
            if base.__name__ in exported:
                assert exported.index(base.__name__) < i, (base.__name__, name)


#: builtins raised on purpose where Python's own protocols need them
ALLOWED = {
    AssertionError,  # a broken invariant, not an error of the user's
    AttributeError,  # ``regs.xyz``: getattr/hasattr rely on it
}


def _raised_names(tree: ast.AST) -> list[tuple[int, str]]:
    """The class names of ``raise Name(...)`` and ``raise Name`` (dotted names kept whole)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(exc, ast.Name) and exc.id[:1].isupper():
            found.append((node.lineno, exc.id))
        elif isinstance(exc, ast.Attribute) and isinstance(exc.value, ast.Name):
            found.append((node.lineno, f"{exc.value.id}.{exc.attr}"))
    return found


def test_every_deliberate_raise_is_in_the_tree() -> None:
    root = Path(syscalls_async.__file__).parent
    outside: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module = importlib.import_module(
            ".".join(
                ("syscalls_async", *path.relative_to(root).with_suffix("").parts)
            ).removesuffix(".__init__")
        )
        for line, name in _raised_names(ast.parse(path.read_text())):
            head, _, attr = name.partition(".")
            cls = getattr(module, head, None) or getattr(builtins, head, None)
            if attr:
                if not inspect.ismodule(cls):
                    continue  # ``raise self.failure``: an exception made elsewhere
                cls = getattr(cls, attr, None)
            assert inspect.isclass(cls), f"{path}:{line}: {name}"
            if cls.__name__ == "ArgumentTypeError" or cls.__module__ == "syscalls_async._aio":
                continue  # argparse's own contract; asyncio helpers' internal signal
            if not issubclass(cls, SyscallsAsyncError) and cls not in ALLOWED:
                outside.append(f"{path.relative_to(root)}:{line}: {name}")
    assert outside == []
