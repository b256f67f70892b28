"""Portal fixtures: a fresh host attachment per test on the session's guest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from syscalls_async.machine import Machine
from syscalls_async.portal import Portal, Trap

WAIT = 60.0


@pytest.fixture
async def portal(machine: Machine) -> AsyncIterator[Portal]:
    # generous: a loaded 2-core host can stall the poller for seconds, and a
    # trap that outlives its deadline is (correctly) let go unanswered
    async with Portal(machine.shm_path, deadline_ms=30_000, doorbell=machine.doorbell_fd) as p:
        yield p
        assert p.host_counters.refused == 0
        assert p.host_counters.handler_errors == 0


class Recorder:
    """A handler that records traps and runs an optional action on each."""

    def __init__(self, action: Callable[[Trap], Awaitable[None]] | None = None) -> None:
        self.action = action
        self.traps: list[Trap] = []
        self.errors: list[BaseException] = []
        self._changed = asyncio.Event()

    async def __call__(self, trap: Trap) -> None:
        self.traps.append(trap)
        try:
            if self.action is not None:
                await self.action(trap)
        except BaseException as exc:
            self.errors.append(exc)
            raise
        finally:
            self._changed.set()

    async def wait_for(self, n: int, within: float = WAIT) -> None:
        """Wait until ``n`` traps were handled (fails the test on timeout)."""
        async with asyncio.timeout(within):
            while len(self.traps) < n:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
def make_recorder() -> type[Recorder]:
    """The Recorder class (test modules cannot import conftest)."""
    return Recorder
