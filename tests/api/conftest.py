"""API fixtures: a fresh ``Plugins`` and ``Session`` per test on the session's guest.

Attaching a session to the already booted guest takes milliseconds, so each
test starts from an empty hook table and leaves none behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from syscalls_async import Session
from syscalls_async.api import Plugins
from syscalls_async.api import syscalls as api_syscalls
from syscalls_async.api.syscalls import load_prototypes, prototype_cache
from syscalls_async.machine import Image, Machine

WAIT = 30.0


@pytest.fixture
def plugins() -> Plugins:
    return Plugins()


@pytest.fixture
async def session(machine: Machine, plugins: Plugins) -> AsyncIterator[Session]:
    async with Session(plugins, machine=machine) as s:
        yield s
        counters = s.portal.host_counters
        assert counters.refused == 0, counters


@pytest.fixture
async def cached_image(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> Image:
    """The guest's image as the current one (new ``Plugins`` validate against its
    prototype cache), with its cache written by a pristine boot: a session that
    boots its own guest, here if no valid cache exists yet."""
    image = machine.image
    assert image is not None
    monkeypatch.setattr(api_syscalls, "current_image", lambda: image)
    if load_prototypes(prototype_cache(image.directory), image.digest) is None:
        async with Session(Plugins(), image=image, smp=1):
            pass
    assert load_prototypes(prototype_cache(image.directory), image.digest) is not None
    return image


class Calls:
    """Records handler calls; ``await calls.wait(n)`` fails the test on timeout."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._event = asyncio.Event()

    def add(self, item: Any) -> None:
        self.items.append(item)
        self._event.set()

    def __len__(self) -> int:
        return len(self.items)

    async def wait(self, n: int = 1, within: float = WAIT) -> list[Any]:
        async with asyncio.timeout(within):
            while len(self.items) < n:
                self._event.clear()
                await self._event.wait()
        return self.items


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def calls2() -> Calls:
    return Calls()
