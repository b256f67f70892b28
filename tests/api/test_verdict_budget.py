"""One budget for a syscall's handlers, which the guest's wait follows; late verdicts counted."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from typing import Any

import pytest

from syscalls_async import Session
from syscalls_async.api import Plugins
from syscalls_async.machine import Machine
from syscalls_async.portal.abi import ffi

RET = "send_syscall: syscall returned"


def _guest_deadline_ms(machine: Machine) -> int:
    off = ffi.offsetof("struct sa_guest_header", "deadline_ms")
    with open(machine.shm_path, "rb") as f:
        f.seek(off)
        return int(struct.unpack("<I", f.read(4))[0])


async def test_the_guest_waits_as_long_as_the_handler_budget(
    machine: Machine, plugins: Plugins
) -> None:
    async with Session(plugins, machine=machine, handler_timeout=8) as session:
        assert session.deadline_ms == 10_000  # 8 s and a quarter more
        async with asyncio.timeout(10):
            # the module's control thread takes it within a millisecond or so
            while _guest_deadline_ms(machine) != session.deadline_ms:
                await asyncio.sleep(0.01)


async def test_the_budget_is_the_events_and_its_verdict_so_far_reaches_the_guest(
    machine: Machine, plugins: Plugins
) -> None:
    async def first(regs: Any, proto: Any, syscall: Any) -> None:
        await asyncio.sleep(0.2)
        syscall.skip_syscall = True
        syscall.retval = 5

    async def second(regs: Any, proto: Any, syscall: Any) -> None:
        await asyncio.sleep(0.2)  # ends 0.4 s into the event: past its 0.3 s
        syscall.retval = 6

    async with Session(plugins, machine=machine, handler_timeout=0.3) as session:
        await plugins.syscalls.register(first, "getppid", comm_filter="send_syscall")
        await plugins.syscalls.register(second, "getppid", comm_filter="send_syscall")
        result = await session.run("send_syscall getppid")
        assert result.stdout == f"{RET} 5\n".encode()
        stats = session.stats
        assert (stats.handler_calls, stats.handler_timeouts, stats.late_verdicts) == (2, 1, 0)


async def test_a_verdict_the_guest_no_longer_waits_for_is_counted_and_logged(
    machine: Machine, plugins: Plugins, caplog: pytest.LogCaptureFixture
) -> None:
    budget = 0.2  # the guest waits 0.7 s

    def blocks_the_loop(regs: Any, proto: Any, syscall: Any) -> None:
        # a plain def cannot be cancelled: it holds the event loop past the guest's wait
        time.sleep(1.2)
        syscall.skip_syscall = True
        syscall.retval = 3

    async with Session(plugins, machine=machine, handler_timeout=budget) as session:
        await plugins.syscalls.register(blocks_the_loop, "getppid", comm_filter="send_syscall")
        with caplog.at_level(logging.WARNING, logger="syscalls"):
            result = await session.run("send_syscall getppid")
            await plugins.syscalls.unregister(blocks_the_loop)
            async with asyncio.timeout(10):
                # the poller sees the guest's abandon soon after the loop is free again
                while session.stats.late_verdicts == 0:
                    await asyncio.sleep(0.01)
        # the real getppid ran: the skip came too late, and that is not silent
        assert result.stdout != f"{RET} 3\n".encode()
        assert int(result.stdout.split()[-1]) > 0
        assert session.stats.late_verdicts == 1
        assert "late_verdicts=1" in repr(session.stats)
    assert any("late" in r.getMessage() for r in caplog.records if r.name.startswith("syscalls"))
    assert session.stats.late_verdicts == 1  # still readable after the session ended
