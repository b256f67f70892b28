"""More tasks trapped at once than the portal has slots.

A task that finds no free slot waits (killably) for one within its deadline;
only past the deadline does it run unhooked, and then it is counted
(``session.stats.guest.no_slot``) and warned about on the ``syscalls`` logger.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from syscalls_async import Session
from syscalls_async.api import Plugins
from syscalls_async.machine import Machine
from syscalls_async.portal.abi import C

N = C.SA_SLOT_COUNT + 36
IOCTL = 16
BURST = f"burst {N} {IOCTL} 9 abcd"  # N processes call ioctl(9, 0xabcd) at once
EBADF = -9
DEADLINE = 1.0


def _results(stdout: bytes) -> dict[int, int]:
    """``burst: <value> x<count>`` lines as {value: count}."""
    out = {}
    for line in stdout.decode().splitlines():
        _, value, count = line.split()
        out[int(value)] = int(count[1:])
    return out


async def test_more_tasks_than_slots_wait_for_one_and_every_call_is_seen(
    machine: Machine, plugins: Plugins
) -> None:
    held = seen = 0
    full = asyncio.Event()

    @plugins.syscalls.syscall("on_sys_ioctl_enter", comm_filter="burst", arg_filters=[None, 0xABCD])
    async def hold(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int) -> None:
        nonlocal held, seen
        seen += 1
        held += 1
        if held == C.SA_SLOT_COUNT:
            full.set()  # every slot is taken: the other tasks wait for one
        await full.wait()
        syscall.skip_syscall = True
        syscall.retval = 43

    # a 48 s budget: the guest waits 60 s for a slot or a verdict
    async with Session(plugins, machine=machine, handler_timeout=48) as session:
        r = await session.run(BURST, timeout=120)
        guest = session.stats.guest
    assert full.is_set()
    assert _results(r.stdout) == {43: N}
    assert seen == N
    assert (guest.no_slot, guest.deadline_expired) == (0, 0)


async def test_tasks_without_a_slot_past_the_deadline_are_counted_exactly(
    machine: Machine, plugins: Plugins, caplog: pytest.LogCaptureFixture
) -> None:
    seen = 0
    release = asyncio.Event()

    @plugins.syscalls.syscall("on_sys_ioctl_enter", comm_filter="burst", arg_filters=[None, 0xABCD])
    async def hold(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int) -> None:
        nonlocal seen
        seen += 1
        while not release.is_set():
            # every answer restarts the trapped task's deadline: these tasks
            # keep their slots while the others' deadline runs out
            await plugins.mem.read_bytes(syscall.sp, 8)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), DEADLINE / 4)
        syscall.skip_syscall = True
        syscall.retval = 43

    session = Session(plugins, machine=machine, handler_timeout=60)
    # a guest deadline far shorter than the handlers' budget (the API ties the two
    # together; the test unties them) makes the tasks without a slot give up while
    # the held ones stay
    session.deadline_ms = int(DEADLINE * 1000)
    async with session:
        run = asyncio.create_task(session.run(BURST, timeout=120))
        async with asyncio.timeout(60):
            while session.stats.guest.no_slot == 0:
                await asyncio.sleep(0.05)
        release.set()
        r = await run
        async with asyncio.timeout(10):
            while not any("no_slot" in rec.getMessage() for rec in caplog.records):
                await asyncio.sleep(0.05)
        guest = session.stats.guest
    results = _results(r.stdout)
    assert set(results) <= {43, EBADF} and sum(results.values()) == N
    # every call that ran unhooked is counted: no slot, or no verdict in time
    assert results.get(EBADF, 0) == guest.no_slot + guest.deadline_expired
    assert guest.no_slot > 0
    # the handler saw every call that got a slot (bar one abandoned unseen)
    assert N - guest.no_slot - guest.deadline_expired <= seen <= N - guest.no_slot
    warnings = [rec for rec in caplog.records if "no_slot" in rec.getMessage()]
    assert warnings[0].levelname == "WARNING" and warnings[0].name.startswith("syscalls")
