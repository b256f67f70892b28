"""Per-architecture real-guest tests: one guest per architecture per test session.

``arch_machine`` is the testing kit's pool guest of the test's ``arch``
parameter (:class:`~syscalls_async.testing.guests.GuestPool`): the first test
of an architecture boots it, the others share it; x86_64 is the suite's one
shared guest.  ``$SYSCALLS_ASYNC_TEST_ARCHS`` (``aarch64,armhf``, ``none``)
keeps only those architectures of a matrix: the others are skipped, saying so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from arch_support import Calls

from syscalls_async import Session
from syscalls_async.api import Plugins
from syscalls_async.machine import Machine
from syscalls_async.testing.guests import GuestPool


@pytest.fixture
async def arch_machine(arch: str, syscalls_guests: GuestPool) -> Machine:
    """The session's guest of ``arch`` (x86_64: the suite's shared guest)."""
    return await syscalls_guests.get(arch)


@pytest.fixture
async def arch_session(arch_machine: Machine) -> AsyncIterator[Session]:
    """A fresh Plugins and Session on the architecture's guest; no hook outlives the test."""
    async with Session(Plugins(), machine=arch_machine) as s:
        yield s
        assert s.portal.host_counters.refused == 0, s.portal.host_counters


@pytest.fixture
def arch_calls() -> Calls:
    return Calls()
