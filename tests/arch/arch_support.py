"""Helpers of the per-architecture tests (a module of its own: every test
folder has a ``conftest``, so ``from conftest import`` could find another)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from syscalls_async.machine.image import source_root
from syscalls_async.machine.targets import target_for

WAIT = 60.0  # a TCG guest is slow


def selected(archs: list[str]) -> list[Any]:
    """``archs`` as pytest params; skipped, saying why, are those
    ``$SYSCALLS_ASYNC_TEST_ARCHS`` leaves out and those whose module file
    (``kernel/arch_*.c``) does not exist yet."""
    wanted = os.environ.get("SYSCALLS_ASYNC_TEST_ARCHS")
    keep = None if wanted is None else {a.strip() for a in wanted.split(",")}
    params = []
    for arch in archs:
        source = source_root() / "kernel" / target_for(arch).kernel_source
        why = None
        if keep is not None and arch not in keep:
            why = f"SYSCALLS_ASYNC_TEST_ARCHS={wanted} leaves out {arch}"
        elif not source.exists():
            why = f"no guest module for {arch} yet (kernel/{source.name})"
        params.append(pytest.param(arch, marks=[pytest.mark.skip(reason=why)] if why else []))
    return params


class Calls:
    """Records handler calls; ``await calls.wait(n)`` fails the test on timeout."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._event = asyncio.Event()

    def add(self, item: Any) -> None:
        self.items.append(item)
        self._event.set()

    async def wait(self, n: int = 1, within: float = WAIT) -> list[Any]:
        async with asyncio.timeout(within):
            while len(self.items) < n:
                self._event.clear()
                await self._event.wait()
        return self.items
