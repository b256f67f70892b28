"""The demo is a module of its own with its own plugins object (no guest: its Session is faked)."""

from __future__ import annotations

import ast
import inspect
from typing import Any

import pytest

from syscalls_async import cli, demo, plugins
from syscalls_async.api import Plugins
from syscalls_async.errors import MachineError


class NoGuest:
    """Stands in for Session: records what it was given, then fails to boot."""

    given: list[Plugins] = []

    def __init__(self, plugins: Plugins, **options: Any) -> None:
        self.given.append(plugins)

    async def __aenter__(self) -> NoGuest:
        raise MachineError("no guest in a unit test")

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_the_demo_runs_its_own_plugins_and_leaves_the_global_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @plugins.syscalls.syscall("close")
    def mine(regs: object, proto: object, syscall: object, fd: int) -> None:
        pass

    try:
        before = plugins.syscalls.hooks
        monkeypatch.setattr(demo, "Session", NoGuest)
        with pytest.raises(MachineError):
            await demo.main()
        (given,) = NoGuest.given
        assert given is not plugins and len(given.syscalls.hooks) == 4
        assert plugins.syscalls.hooks == before  # the old demo cleared the global registry
    finally:
        await plugins.syscalls.unregister(mine)


def test_the_cli_only_parses_and_dispatches_to_the_demo() -> None:
    tree = ast.parse(inspect.getsource(cli))
    names = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef | ast.AsyncFunctionDef)}
    assert not any("demo" in name.lower() for name in names)
    args = cli.parser().parse_args(["demo", "--smp", "1"])
    assert args.smp == 1 and callable(args.func)
