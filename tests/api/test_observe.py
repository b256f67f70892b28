"""Observe-only hooks (``read_only=True``) on the real guest: the task does not
wait, its events come through the per-CPU rings with what the guest captured.

The guest program ``observe N COUNT`` (guest/observe.c) runs N processes
pinned to the CPUs in turn, each calling openat on
"/nonexistent/sa-observe/<pid>/<k>" COUNT times, and prints what it did.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter, defaultdict
from typing import Any

import pytest

from syscalls_async import Session
from syscalls_async.api import Plugins
from syscalls_async.errors import ObserveOnlyError
from syscalls_async.machine import Machine
from syscalls_async.portal import CapturedString

COMM = "observe"
PREFIX = "/nonexistent/sa-observe/"
ENOENT, EACCES = 2, 13
WAIT = 30.0


def children(stdout: bytes) -> dict[int, tuple[int, int, int]]:
    """pid -> (cpu, calls, enoent) as the program printed them."""
    return {
        int(m[1]): (int(m[2]), int(m[3]), int(m[4]))
        for m in re.finditer(rb"observe: pid (\d+) cpu (\d+) calls (\d+) enoent (\d+)", stdout)
    }


class Seen:
    """What an observe-only openat handler got, per thread, in order."""

    def __init__(self) -> None:
        self.by_tid: dict[int, list[Any]] = defaultdict(list)
        self.count = 0

    async def watch(self, regs: Any, proto: Any, syscall: Any, dfd: int, filename: int,
                    flags: int, mode: int) -> None:  # fmt: skip
        assert syscall.observed
        self.by_tid[syscall.task.pid].append(
            (syscall.phase, tuple(syscall.args), syscall.strings[1], syscall.retval)
        )
        self.count += 1


async def test_every_observed_event_is_delivered_paired_and_captured(session: Session) -> None:
    seen = Seen()
    await session.plugins.syscalls.register(
        seen.watch, "openat", on_enter=True, on_return=True, comm_filter=COMM,
        arg_filters=[None, PREFIX], read_only=True,
    )  # fmt: skip
    result = await session.run(f"{COMM} 4 400")
    assert result.exit_status == 0, result
    done = children(result.stdout)
    assert len(done) == 4 and {cpu for cpu, _, _ in done.values()} == {0, 1}
    assert all(calls == enoent == 400 for _, calls, enoent in done.values())

    stats = session.stats
    assert sum(stats.ring_drops) == 0 and stats.queue_drops == 0 and stats.hook_drops == {}
    assert stats.guest.ring_drops == 0
    # every enter and every return, of each process, exactly once
    assert seen.count == 2 * 4 * 400 == stats.guest.observed
    assert {tid: len(events) for tid, events in seen.by_tid.items()} == {
        pid: 2 * 400 for pid in done
    }
    for pid, events in seen.by_tid.items():
        # the four processes interleave in the two rings; each one's own events
        # come in its order, every return carrying its enter's arguments
        for k in range(400):
            (p1, args1, s1, _), (p2, args2, s2, ret) = events[2 * k : 2 * k + 2]
            assert (p1, p2, ret) == ("enter", "return", -ENOENT)
            assert args2 == args1
            assert s1 is not None and not s1.fault
            if k == 0 and s1.truncated:  # the first process's long path
                assert s1.data.startswith(f"{PREFIX}{pid}/long/".encode())
                assert len(s1.data) == 256 and s1.data.endswith(b"x")
            else:
                assert s1 == CapturedString(f"{PREFIX}{pid}/{k}".encode())
            assert s2 == s1  # the return captured the same (const) string
    assert sum(1 for ev in seen.by_tid.values() if ev[0][2].truncated) == 1


async def test_observe_only_memory_comes_from_the_capture_or_a_clear_error(
    session: Session,
) -> None:
    got: list[Any] = []

    async def watch(regs: Any, proto: Any, syscall: Any, dfd: int, filename: int) -> None:
        mem = session.plugins.mem
        try:
            got.append(await mem.read_str(filename))
        except ObserveOnlyError as exc:
            got.append(exc)
        try:
            await mem.read_bytes(filename, 4)
        except ObserveOnlyError as exc:
            got.append(exc)

    await session.plugins.syscalls.register(
        watch, "openat", comm_filter=COMM, arg_filters=[None, PREFIX], read_only=True
    )
    result = await session.run(f"{COMM} 1 2")
    pid = next(iter(children(result.stdout)))
    long_error, error1, path, error2 = got
    # the first path is 300 bytes: only 256 were captured, and read_str says so
    assert isinstance(long_error, ObserveOnlyError) and "truncated" in str(long_error)
    assert path == f"{PREFIX}{pid}/1"
    for error in (error1, error2):
        assert isinstance(error, ObserveOnlyError)
        assert "observe-only (read_only=True) handler" in str(error)
        assert "did not wait" in str(error) and "register the hook without read_only" in str(error)
    assert session.stats.handler_errors == 0


async def test_blocking_and_observing_hooks_on_one_syscall_both_work(session: Session) -> None:
    seen = Seen()
    refused: list[int] = []

    def refuse(regs: Any, proto: Any, syscall: Any, dfd: int, filename: int) -> None:
        syscall.skip_syscall = True
        syscall.retval = -EACCES
        refused.append(syscall.task.pid)

    sc = session.plugins.syscalls
    await sc.register(seen.watch, "openat", on_enter=True, on_return=True, comm_filter=COMM,
                      arg_filters=[None, PREFIX], read_only=True)  # fmt: skip
    await sc.register(refuse, "openat", comm_filter=COMM, arg_filters=[None, PREFIX])
    result = await session.run(f"{COMM} 2 20")
    done = children(result.stdout)
    # the blocking hook skipped every call: none failed with ENOENT
    assert [enoent for _, _, enoent in done.values()] == [0, 0]
    assert Counter(refused) == {pid: 20 for pid in done}
    # the observer saw each call once at enter and once at return, with the
    # skip's result
    assert seen.count == 2 * 2 * 20
    for events in seen.by_tid.values():
        assert [e[0] for e in events] == ["enter", "return"] * 20
        assert {e[3] for e in events if e[0] == "return"} == {-EACCES}


async def test_a_tiny_ring_drops_exactly_what_it_does_not_deliver(
    machine: Machine, plugins: Plugins, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Seen()

    def hold_the_host(regs: Any, proto: Any, syscall: Any) -> None:
        # a handler that blocks the host's event loop: nothing drains the rings
        # while the children run, so their 4 KiB rings overflow
        time.sleep(1.0)

    async with Session(plugins, machine=machine, ring_size=4096) as session:
        sc = session.plugins.syscalls
        await sc.register(seen.watch, "openat", comm_filter=COMM, arg_filters=[None, PREFIX],
                          read_only=True)  # fmt: skip
        await sc.register(hold_the_host, "getppid", comm_filter=COMM)
        result = await session.run(f"{COMM} 2 300 stall")
        assert result.exit_status == 0, result
        stats = session.stats
        # the growth is a warning on the syscalls logger (the poller looks at the
        # guest's counters every quarter second)
        async with asyncio.timeout(WAIT):
            while not any("observed event(s) dropped" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.01)
    generated = sum(calls for _, calls, _ in children(result.stdout).values())
    assert generated == 600
    ring_drops = sum(stats.ring_drops)
    assert ring_drops > 0
    assert seen.count + ring_drops + stats.queue_drops == generated
    assert stats.hook_drops == {"watch": ring_drops + stats.queue_drops}
    assert stats.guest.ring_drops == ring_drops
    assert stats.guest.observed == seen.count + stats.queue_drops
