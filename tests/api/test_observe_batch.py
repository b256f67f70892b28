"""Batch handlers of observe-only hooks (``read_only=True, batch=True``) on the
real guest: one handler call per drained chunk, a read-only view per event.

The guest program ``observe N COUNT`` (guest/observe.c) runs N processes
pinned to the CPUs in turn, each calling openat on
"/nonexistent/sa-observe/<pid>/<k>" COUNT times (the first process's first
path is 300 bytes long), and prints what it did.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import pytest
from test_observe import COMM, ENOENT, PREFIX, WAIT, children

from syscalls_async import ObservedSyscall, Session
from syscalls_async.api import Plugins
from syscalls_async.errors import ObserveOnlyError
from syscalls_async.machine import Machine
from syscalls_async.portal import CapturedString
from syscalls_async.syscalls import ValueFilter


class Batches:
    """What a batch handler got: the events per thread, in order, and the batch sizes."""

    def __init__(self) -> None:
        self.by_tid: dict[int, list[ObservedSyscall]] = defaultdict(list)
        self.sizes: list[int] = []

    async def watch(self, events: tuple[ObservedSyscall, ...]) -> None:
        self.sizes.append(len(events))
        for event in events:
            self.by_tid[event.tid].append(event)

    @property
    def count(self) -> int:
        return sum(self.sizes)


async def test_a_batch_handler_gets_every_event_paired_and_captured(session: Session) -> None:
    seen = Batches()
    await session.plugins.syscalls.register(
        seen.watch, "openat", on_enter=True, on_return=True, comm_filter=COMM,
        arg_filters=[None, PREFIX], read_only=True, batch=True,
    )  # fmt: skip
    result = await session.run(f"{COMM} 4 400")
    assert result.exit_status == 0, result
    done = children(result.stdout)
    assert len(done) == 4 and {cpu for cpu, _, _ in done.values()} == {0, 1}
    assert all(calls == enoent == 400 for _, calls, enoent in done.values())

    stats = session.stats
    assert sum(stats.ring_drops) == 0 and stats.queue_drops == 0 and stats.hook_drops == {}
    # every enter and every return of each process exactly once: the host's
    # count is the guest's
    assert seen.count == 2 * 4 * 400 == stats.guest.observed == stats.observed_events
    assert stats.handler_calls == len(seen.sizes) and max(seen.sizes) <= 256
    assert stats.handler_errors == 0
    assert {tid: len(events) for tid, events in seen.by_tid.items()} == {
        pid: 2 * 400 for pid in done
    }
    for pid, events in seen.by_tid.items():
        for k in range(400):
            enter, ret = events[2 * k : 2 * k + 2]
            assert (enter.phase, ret.phase, enter.retval, ret.retval) == (
                "enter", "return", None, -ENOENT
            )  # fmt: skip
            assert enter.name == ret.name == "sys_openat" and enter.abi == "x86_64"
            assert (enter.comm, enter.pid, enter.tid) == (COMM, pid, pid)
            assert ret.args == enter.args and ret.words == enter.words
            assert enter.args[1] == enter.words[1]  # the path's address
            captured = enter.strings[1]
            assert captured is not None and not captured.fault
            if k == 0 and captured.truncated:  # the first process's long path
                assert captured.data.startswith(f"{PREFIX}{pid}/long/".encode())
                assert len(captured.data) == 256
            else:
                assert captured == CapturedString(f"{PREFIX}{pid}/{k}".encode())
            assert ret.strings[1] == captured
    assert sum(1 for ev in seen.by_tid.values() if ev[0].strings[1].truncated) == 1  # type: ignore[union-attr]


async def test_the_host_checks_a_batch_hooks_filters_on_every_record(session: Session) -> None:
    """Another hook makes the guest record every openat of the program; the batch
    hook's string filter (checked by the host on the captured strings) lets only
    the seventh call of each process through.  Memory requests are refused."""
    seen = Batches()
    everything: list[int] = []
    refused: list[Exception] = []

    async def watch(events: tuple[ObservedSyscall, ...]) -> None:
        await seen.watch(events)
        try:
            await session.plugins.mem.read_str(events[0].words[1])
        except ObserveOnlyError as exc:
            refused.append(exc)

    def each(regs: Any, proto: Any, syscall: Any) -> None:
        everything.append(syscall.task.pid)

    sc = session.plugins.syscalls
    await sc.register(each, "openat", comm_filter=COMM, read_only=True)
    await sc.register(watch, "openat", comm_filter=COMM, read_only=True, batch=True,
                      arg_filters=[None, ValueFilter.string_endswith("/7")])  # fmt: skip
    result = await session.run(f"{COMM} 2 20")
    done = children(result.stdout)
    assert len(everything) >= 2 * 20  # the program's other openat calls too
    assert {tid: [e.strings[1] for e in ev] for tid, ev in seen.by_tid.items()} == {
        pid: [CapturedString(f"{PREFIX}{pid}/7".encode())] for pid in done
    }
    assert refused and all("batch handler" in str(e) for e in refused)
    assert session.stats.handler_errors == 0


async def test_a_tiny_ring_drops_exactly_what_a_batch_hook_does_not_get(
    machine: Machine, plugins: Plugins, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Batches()

    def hold_the_host(regs: Any, proto: Any, syscall: Any) -> None:
        # blocks the host's event loop: nothing drains the 4 KiB rings while
        # the children run, so they overflow
        time.sleep(1.0)

    async with Session(plugins, machine=machine, ring_size=4096) as session:
        sc = session.plugins.syscalls
        await sc.register(seen.watch, "openat", comm_filter=COMM, arg_filters=[None, PREFIX],
                          read_only=True, batch=True)  # fmt: skip
        await sc.register(hold_the_host, "getppid", comm_filter=COMM)
        result = await session.run(f"{COMM} 2 300 stall")
        assert result.exit_status == 0, result
        stats = session.stats
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
