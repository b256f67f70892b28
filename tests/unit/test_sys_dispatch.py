"""The dispatcher's host-side logic with the testing kit's fake trap, host only.

``syscalls_async.testing.FakeTrap`` has what the dispatcher uses of a real
``Trap`` -- ``event``, ``skip``, ``set_arg``, ``set_retval``, ``read_cstring``
(plus ``read_bytes`` for ``plugins.mem``) -- and records every verdict call and
request.  The real guest path is covered by the integration tests.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from sysproto_table import GETPID, IOCTL, OPENAT, UNKNOWN_NR, make_table

from syscalls_async.api.mem import Mem
from syscalls_async.errors import (
    GuestMemoryError,
    HandlerContextError,
    OutOfRange,
    ReadOnlyHookError,
    TrapGone,
)
from syscalls_async.portal.trap import ObservedTrap
from syscalls_async.portal.types import Phase
from syscalls_async.portal.types import SyscallEvent as RawEvent
from syscalls_async.syscalls import Dispatcher, FailClosed, Registry, ValueFilter, current_trap
from syscalls_async.syscalls.event import Regs, SyscallEvent
from syscalls_async.syscalls.filters import STRING_READ
from syscalls_async.syscalls.prototypes import SyscallPrototype
from syscalls_async.testing import FakeMemory, FakeTrap, fake_event
from syscalls_async.testing.fake import FAKE_PC as PC

M64 = (1 << 64) - 1


def raw_event(
    nr: int,
    args: tuple[int, ...] = (),
    *,
    phase: Phase = Phase.ENTER,
    retval: int = 0,
    comm: str = "cat",
    pid: int = 101,
    tgid: int = 100,
) -> RawEvent:
    return fake_event(nr, *args, phase=phase, retval=retval, comm=comm, pid=tgid, tid=pid,
                      prototypes=make_table())  # fmt: skip


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.bind(make_table())
    return reg


def dispatcher(registry: Registry, **kwargs: Any) -> Dispatcher:
    return Dispatcher(registry, make_table(), **kwargs)


async def dispatch(
    d: Dispatcher,
    event: RawEvent,
    memory: dict[int, bytes] | None = None,
    hook_ids: tuple[int, ...] | None = None,
) -> FakeTrap:
    """One trap; unless told otherwise the guest claims every hook matched.  As
    the guest does, read_only (observe-only) hooks get the event's observed copy
    first, then the others the trap."""
    if hook_ids is None:
        hook_ids = tuple(h.id for h in d.registry)
    if d.registry.candidates(event.nr, event.phase is Phase.ENTER, observed=True):
        observed = msgspec.structs.replace(event, observed=True, regs=())
        await d(ObservedTrap(observed, hook_ids))
    trap = FakeTrap(event, FakeMemory(memory), hook_ids)
    await d(trap)
    return trap


def string_reads(trap: FakeTrap) -> list[tuple[int, int]]:
    return [(addr, size) for what, addr, size in trap.requests if what == "read_cstring"]


def recorder(log: list[Any], tag: str) -> Callable[..., None]:
    def handler(regs: Regs, proto: SyscallPrototype, syscall: SyscallEvent, *args: int) -> None:
        log.append((tag, *args))

    handler.__name__ = tag
    return handler


# -- order and shared state --------------------------------------------------------------


async def test_handlers_run_in_order_and_see_earlier_changes(registry: Registry) -> None:
    seen: list[Any] = []

    def first(regs: Regs, proto: Any, syscall: SyscallEvent, dfd: int, fn: int, flags: int,
              mode: int) -> None:  # fmt: skip
        seen.append(("first", flags))
        syscall.args[2] = 0x42

    async def second(regs: Regs, proto: Any, syscall: SyscallEvent, dfd: int, fn: int,
                     flags: int) -> None:  # fmt: skip
        await asyncio.sleep(0)
        seen.append(("second", flags, regs.rdx))
        regs.r10 = 0o600  # mode, through the register

    def every(regs: Regs, proto: Any, syscall: SyscallEvent) -> None:
        seen.append(("every", syscall.args[2], syscall.args[3]))

    registry.add(first, "on_sys_openat_enter")
    registry.add(every, "on_all_sys_enter")
    registry.add(second, "openat")
    d = dispatcher(registry)
    trap = await dispatch(d, raw_event(OPENAT.nr, (0xFFFFFF9C, 0x5000, 0, 0o644)))
    assert seen == [("first", 0), ("every", 0x42, 0o644), ("second", 0x42, 0x42)]
    assert trap.calls == [("set_arg", 2, 0x42), ("set_arg", 3, 0o600)]
    assert (d.stats.events, d.stats.handler_calls, d.stats.handler_errors) == (1, 3, 0)


async def test_return_handlers_see_each_others_retval(registry: Registry) -> None:
    seen: list[Any] = []

    def first(regs: Regs, proto: Any, syscall: SyscallEvent) -> None:
        seen.append(syscall.retval)
        syscall.retval = 7

    async def second(regs: Regs, proto: Any, syscall: SyscallEvent) -> None:
        seen.append((syscall.retval, regs.rax))

    registry.add(first, "on_sys_read_return")
    registry.add(second, "on_all_sys_return")
    trap = await dispatch(dispatcher(registry), raw_event(0, (3, 0x5000, 10),
                          phase=Phase.RETURN, retval=M64 - 1))  # fmt: skip
    assert seen == [-2, (7, 7)]
    assert trap.calls == [("set_retval", 7)]


async def test_unpacked_arguments_are_their_c_types(registry: Registry) -> None:
    got: dict[str, Any] = {}

    def full(regs: Any, proto: SyscallPrototype, syscall: SyscallEvent, *args: int) -> None:
        got["full"] = (proto.name, proto.nargs, proto.types, proto.names, args)
        task = syscall.task
        got["event"] = (syscall.name, syscall.nr, syscall.pc, syscall.argc, syscall.pid,
                        task.comm, task.pid, task.tgid, list(syscall.args))  # fmt: skip

    def one(regs: Any, proto: Any, syscall: Any, dfd: int) -> None:
        got["one"] = (dfd,)

    def every(regs: Any, proto: Any, syscall: Any, *args: int) -> None:
        got["every"] = args

    registry.add(full, "openat")
    registry.add(one, "openat")
    registry.add(every, "on_all_sys_enter")
    raw = (0xFFFFFF9C, 0x5000, 0xDEADBEEF_00000002, 0x1_000001A4, 0x77, 0x88)
    trap = await dispatch(dispatcher(registry), raw_event(OPENAT.nr, raw))
    assert got["full"] == ("sys_openat", 4, OPENAT.types, OPENAT.names, (-100, 0x5000, 2, 0o644))
    assert got["event"] == ("sys_openat", 257, PC, 4, 100, "cat", 101, 100, list(raw))
    assert got["one"] == (-100,)
    assert got["every"] == ()
    assert trap.calls == []


async def test_unknown_hook_fires_only_for_syscalls_without_metadata(registry: Registry) -> None:
    seen: list[Any] = []

    def unknown(regs: Any, proto: SyscallPrototype, syscall: SyscallEvent) -> None:
        seen.append((proto.known, syscall.name, syscall.nr, syscall.argc, syscall.args[5]))

    registry.add(unknown, "on_unknown_sys_enter")
    d = dispatcher(registry)
    await dispatch(d, raw_event(OPENAT.nr, (1, 2, 3, 4)))
    await dispatch(d, raw_event(UNKNOWN_NR, (1, 2, 3, 4, 5, 6)))
    await dispatch(d, raw_event(449, (0, 0, 0, 0, 0, 9)))  # not even in the table
    assert seen == [
        (False, f"sys_unknown_{UNKNOWN_NR}", UNKNOWN_NR, 6, 6),
        (False, "sys_unknown_449", 449, 6, 9),
    ]
    assert d.stats.events == 2


async def test_no_candidate_means_no_verdict(registry: Registry) -> None:
    registry.add(recorder([], "x"), "ioctl")
    d = dispatcher(registry)
    trap = await dispatch(d, raw_event(GETPID.nr))
    assert trap.calls == [] and d.stats.events == 0 and d.stats.handler_calls == 0


async def test_handler_disabled_by_an_earlier_one_does_not_run(registry: Registry) -> None:
    seen: list[Any] = []
    second = recorder(seen, "second")

    def first(regs: Any, proto: Any, syscall: Any) -> None:
        seen.append(("first",))
        registry.set_enabled(second, False)

    registry.add(first, "getpid")
    registry.add(second, "getpid")
    d = dispatcher(registry)
    await dispatch(d, raw_event(GETPID.nr))
    assert seen == [("first",)]
    registry.set_enabled(second, True)
    registry.remove(first)
    await dispatch(d, raw_event(GETPID.nr))
    assert seen == [("first",), ("second",)]


async def test_handler_removed_by_an_earlier_one_does_not_run(registry: Registry) -> None:
    seen: list[Any] = []
    second = recorder(seen, "second")

    def first(regs: Any, proto: Any, syscall: Any) -> None:
        seen.append(("first",))
        registry.remove(second)

    registry.add(first, "getpid")
    registry.add(second, "on_all_sys_enter")
    await dispatch(dispatcher(registry), raw_event(GETPID.nr))
    assert seen == [("first",)]


# -- verdicts -------------------------------------------------------------------------------


async def test_skip_wins_over_changed_arguments(registry: Registry) -> None:
    def block(regs: Any, proto: Any, syscall: SyscallEvent, *args: int) -> None:
        syscall.args[1] = 0
        syscall.skip_syscall = True
        syscall.retval = -13

    registry.add(block, "openat")
    trap = await dispatch(dispatcher(registry), raw_event(OPENAT.nr, (1, 0x5000, 0, 0)))
    assert trap.calls == [("skip", -13)]


async def test_skip_without_retval_returns_zero(registry: Registry) -> None:
    def block(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.skip_syscall = True

    registry.add(block, "ioctl")
    trap = await dispatch(dispatcher(registry), raw_event(IOCTL.nr, (1, 0xABCD, 0)))
    assert trap.calls == [("skip", 0)]


async def test_retval_changes_on_return_only(registry: Registry) -> None:
    def change(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.retval = -1

    def same(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.retval = syscall.retval  # unchanged: no verdict

    def on_entry(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.retval = 99  # without skip, a retval at entry means nothing

    registry.add(change, "on_sys_ioctl_return")
    registry.add(same, "on_sys_getpid_return")
    registry.add(on_entry, "on_sys_read_enter")
    d = dispatcher(registry)
    trap = await dispatch(d, raw_event(IOCTL.nr, phase=Phase.RETURN, retval=0))
    assert trap.calls == [("set_retval", -1)]
    trap = await dispatch(d, raw_event(GETPID.nr, phase=Phase.RETURN, retval=100))
    assert trap.calls == []
    trap = await dispatch(d, raw_event(0, (3, 0x5000, 1)))
    assert trap.calls == []


async def test_rax_write_on_return_becomes_the_retval(registry: Registry) -> None:
    def via_rax(regs: Regs, proto: Any, syscall: SyscallEvent) -> None:
        regs.rax = M64  # -1

    registry.add(via_rax, "on_sys_getpid_return")
    trap = await dispatch(dispatcher(registry), raw_event(GETPID.nr, phase=Phase.RETURN,
                          retval=100))  # fmt: skip
    assert trap.calls == [("set_retval", -1)]


# -- failures ----------------------------------------------------------------------------------


async def test_raising_handler_is_logged_counted_and_the_rest_still_run(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    fatal: list[BaseException] = []

    def first(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        seen.append("first")
        syscall.args[1] = 0x1111

    async def broken(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        seen.append("broken")
        syscall.args[2] = 0x2222
        raise ValueError("boom")

    def last(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        seen.append(f"last {syscall.args[2]:#x}")

    registry.add(first, "openat")
    registry.add(broken, "openat")
    registry.add(last, "on_all_sys_enter")
    d = dispatcher(registry, on_fatal=fatal.append)  # fail_fast off: on_fatal not used
    with caplog.at_level(logging.ERROR, logger="syscalls"):
        trap = await dispatch(d, raw_event(OPENAT.nr, (1, 2, 3, 4)))
    assert seen == ["first", "broken", "last 0x2222"]
    # the verdict so far, including what the failing handler did before raising
    assert trap.calls == [("set_arg", 1, 0x1111), ("set_arg", 2, 0x2222)]
    assert (d.stats.handler_calls, d.stats.handler_errors, d.stats.handler_timeouts) == (3, 1, 0)
    assert fatal == []
    [record] = [r for r in caplog.records if r.name == "syscalls"]
    assert record.levelno == logging.ERROR
    msg = record.getMessage()
    assert "broken" in msg and "sys_openat enter by cat[101]" in msg
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)


async def test_slow_handler_is_cancelled_and_counted(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    async def slow(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.skip_syscall = True
        syscall.retval = -4
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    def after(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        seen.append(f"after {syscall.retval}")

    registry.add(slow, "getpid")
    registry.add(after, "getpid")
    d = dispatcher(registry, handler_timeout=0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with caplog.at_level(logging.ERROR, logger="syscalls"):
        trap = await dispatch(d, raw_event(GETPID.nr))
    assert loop.time() - start < 5
    assert seen == ["cancelled", "after -4"]
    assert trap.calls == [("skip", -4)]
    assert (d.stats.handler_timeouts, d.stats.handler_errors) == (1, 0)
    msgs = [r.getMessage() for r in caplog.records if r.name == "syscalls"]
    assert any("slow" in m and "deadline" in m and "sys_getpid" in m for m in msgs)


async def test_handler_raising_timeout_error_itself_is_an_error_not_a_timeout(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    async def own_timeout(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        raise TimeoutError("the handler's own wait_for gave up")

    registry.add(own_timeout, "getpid")
    fatal: list[BaseException] = []
    d = dispatcher(registry, handler_timeout=10, fail_fast=True, on_fatal=fatal.append)
    with caplog.at_level(logging.ERROR, logger="syscalls"):
        await dispatch(d, raw_event(GETPID.nr))
    assert (d.stats.handler_errors, d.stats.handler_timeouts) == (1, 0)
    assert len(fatal) == 1 and "own wait_for" in str(fatal[0])
    assert not any("deadline" in r.getMessage() for r in caplog.records)


async def test_uncaught_guest_memory_error_is_a_handler_error(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    mem = Mem()

    async def careless(regs: Any, proto: Any, syscall: Any, fd: int, buf: int) -> None:
        await mem.read_bytes(buf, 4)  # unmapped: raises GuestMemoryError

    registry.add(careless, "read")
    fatal: list[BaseException] = []
    d = dispatcher(registry, fail_fast=True, on_fatal=fatal.append)
    with caplog.at_level(logging.ERROR, logger="syscalls"):
        await dispatch(d, raw_event(0, (3, 0xBAD000, 4)))
    assert d.stats.handler_errors == 1
    assert len(fatal) == 1 and isinstance(fatal[0], GuestMemoryError)
    assert fatal[0].addr == 0xBAD000
    [record] = [r for r in caplog.records if r.name == "syscalls"]
    assert "careless failed on sys_read enter" in record.getMessage()


async def test_trap_gone_is_counted_but_not_fatal(registry: Registry) -> None:
    async def late(regs: Any, proto: Any, syscall: Any) -> None:
        raise TrapGone("the guest task stopped waiting")

    registry.add(late, "getpid")
    fatal: list[BaseException] = []
    d = dispatcher(registry, fail_fast=True, on_fatal=fatal.append)
    await dispatch(d, raw_event(GETPID.nr))
    assert d.stats.handler_errors == 1 and fatal == []


@pytest.mark.parametrize("phase", [Phase.ENTER, Phase.RETURN])
@pytest.mark.parametrize("bad", ["-13", 1.5, None])
async def test_non_int_retval_is_the_handlers_error_and_keeps_the_verdict(
    registry: Registry, phase: Phase, bad: object
) -> None:
    def good(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        if syscall.is_enter:
            syscall.skip_syscall = True
        syscall.retval = -4

    def wrong(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.retval = bad  # type: ignore[assignment]

    seen: list[int] = []

    def after(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        seen.append(syscall.retval)

    registry.add(good, "getpid", on_enter=phase is Phase.ENTER, on_return=phase is Phase.RETURN)
    registry.add(wrong, "on_all_sys_enter" if phase is Phase.ENTER else "on_all_sys_return")
    registry.add(after, "getpid", on_enter=phase is Phase.ENTER, on_return=phase is Phase.RETURN)
    fatal: list[BaseException] = []
    d = dispatcher(registry, fail_fast=True, on_fatal=fatal.append)
    trap = await dispatch(d, raw_event(GETPID.nr, phase=phase, retval=100))
    assert seen == [-4]  # the bad value never reaches the next handler
    assert trap.calls == [("skip", -4) if phase is Phase.ENTER else ("set_retval", -4)]
    assert d.stats.handler_errors == 1
    assert len(fatal) == 1 and isinstance(fatal[0], TypeError)
    assert "wrong" in str(fatal[0]) and "retval" in str(fatal[0])


async def test_fail_fast_hands_the_exception_to_on_fatal(registry: Registry) -> None:
    error = RuntimeError("first failure")
    seen: list[str] = []

    def broken(regs: Any, proto: Any, syscall: Any) -> None:
        raise error

    async def slow(regs: Any, proto: Any, syscall: Any) -> None:
        await asyncio.sleep(30)

    registry.add(broken, "getpid")
    registry.add(recorder(seen, "next"), "getpid")  # type: ignore[arg-type]
    registry.add(slow, "ioctl")
    fatal: list[BaseException] = []
    d = dispatcher(registry, fail_fast=True, on_fatal=fatal.append, handler_timeout=0.02)
    await dispatch(d, raw_event(GETPID.nr))
    assert fatal == [error]
    await dispatch(d, raw_event(IOCTL.nr, (1, 2, 3)))
    assert len(fatal) == 2 and isinstance(fatal[1], TimeoutError)
    assert "slow" in str(fatal[1])


async def test_no_timeout_when_disabled(registry: Registry) -> None:
    async def brief(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        await asyncio.sleep(0.01)
        syscall.skip_syscall = True

    registry.add(brief, "getpid")
    d = dispatcher(registry, handler_timeout=None)
    trap = await dispatch(d, raw_event(GETPID.nr))
    assert trap.calls == [("skip", 0)] and d.stats.handler_timeouts == 0


# -- host-side filters -------------------------------------------------------------------------


async def test_comm_and_pid_filters_are_enforced_on_the_host(registry: Registry) -> None:
    seen: list[Any] = []
    registry.add(recorder(seen, "comm_cat"), "on_all_sys_enter", comm_filter="cat")
    registry.add(recorder(seen, "comm_ls"), "on_all_sys_enter", comm_filter="ls")
    registry.add(recorder(seen, "pid_100"), "on_all_sys_enter", pid_filter=100)
    registry.add(recorder(seen, "pid_101"), "on_all_sys_enter", pid_filter=101)  # a thread id
    registry.add(recorder(seen, "both"), "getpid", comm_filter="cat", pid_filter=100)
    registry.add(recorder(seen, "unknown_ls"), "on_unknown_sys_enter", comm_filter="ls")
    d = dispatcher(registry)
    await dispatch(d, raw_event(GETPID.nr, comm="cat", pid=101, tgid=100))
    assert [s[0] for s in seen] == ["comm_cat", "pid_100", "both"]
    seen.clear()
    await dispatch(d, raw_event(UNKNOWN_NR, comm="ls", pid=7, tgid=7))
    assert [s[0] for s in seen] == ["comm_ls", "unknown_ls"]
    assert d.stats.filtered_on_host == 3 + 2


async def test_numeric_arg_filters_are_enforced_on_the_host(registry: Registry) -> None:
    seen: list[Any] = []
    registry.add(recorder(seen, "tcgets"), "ioctl", arg_filters=[None, 0x5401])
    registry.add(recorder(seen, "fd_neg"), "openat", arg_filters=[ValueFilter.less(0)])
    registry.add(recorder(seen, "range"), "on_all_sys_enter",
                 arg_filters=[None, None, ValueFilter.range(100, 200)])  # fmt: skip
    d = dispatcher(registry)
    # upper register bits are garbage for the 32-bit cmd and dfd
    await dispatch(d, raw_event(IOCTL.nr, (3, 0xFFFFFFFF_00005401, 150)))
    await dispatch(d, raw_event(IOCTL.nr, (3, 0x5402, 201)))
    await dispatch(d, raw_event(OPENAT.nr, (0xDEADBEEF_FFFFFF9C, 0x5000, 100, 0)))
    await dispatch(d, raw_event(OPENAT.nr, (0xFFFFFFFF_00000003, 0x5000, 99, 0)))
    assert [s[0] for s in seen] == ["tcgets", "range", "fd_neg", "range"]


async def test_string_arg_filters_read_guest_memory_once(registry: Registry) -> None:
    seen: list[Any] = []
    memory = {0x5000: b"/etc/shadow\0junk", 0x6000: b"/tmp/x\0"}
    registry.add(recorder(seen, "etc"), "openat",
                 arg_filters=[None, ValueFilter.string_startswith("/etc/")])  # fmt: skip
    registry.add(recorder(seen, "shadow"), "openat",
                 arg_filters=[None, ValueFilter.string_endswith("shadow")])  # fmt: skip
    registry.add(recorder(seen, "exact"), "on_all_sys_enter",
                 arg_filters=[None, ValueFilter.string_exact("/tmp/x")])  # fmt: skip
    d = dispatcher(registry)
    trap = await dispatch(d, raw_event(OPENAT.nr, (1, 0x5000)), memory=memory)
    assert [s[0] for s in seen] == ["etc", "shadow"]
    assert string_reads(trap) == [(0x5000, STRING_READ)]  # one read for three filters
    seen.clear()
    await dispatch(d, raw_event(OPENAT.nr, (1, 0x6000)), memory=memory)
    assert [s[0] for s in seen] == ["exact"]
    seen.clear()
    trap = await dispatch(d, raw_event(OPENAT.nr, (1, 0x7000)), memory=memory)  # unreadable
    assert seen == [] and string_reads(trap) == [(0x7000, STRING_READ)]
    assert d.stats.filtered_on_host == 1 + 2 + 3


async def test_retval_filters_are_enforced_on_the_host(registry: Registry) -> None:
    seen: list[Any] = []
    registry.add(recorder(seen, "ok"), "openat", retval_filter=ValueFilter.success())
    registry.add(recorder(seen, "enoent"), "on_sys_openat_return", retval_filter=-2)
    registry.add(recorder(seen, "err"), "on_all_sys_return", retval_filter=ValueFilter.error())
    d = dispatcher(registry)
    await dispatch(d, raw_event(OPENAT.nr, phase=Phase.RETURN, retval=M64 - 1))  # -2
    assert [s[0] for s in seen] == ["enoent", "err"]
    seen.clear()
    await dispatch(d, raw_event(OPENAT.nr, phase=Phase.RETURN, retval=3))
    assert [s[0] for s in seen] == ["ok"]
    seen.clear()
    await dispatch(d, raw_event(OPENAT.nr, phase=Phase.RETURN, retval=-13))
    assert [s[0] for s in seen] == ["err"]


async def test_retval_filter_does_not_apply_at_entry(registry: Registry) -> None:
    seen: list[Any] = []
    registry.add(recorder(seen, "both"), "getpid", on_enter=True, on_return=True,
                 retval_filter=1234)  # fmt: skip
    d = dispatcher(registry)
    await dispatch(d, raw_event(GETPID.nr, retval=0))
    await dispatch(d, raw_event(GETPID.nr, phase=Phase.RETURN, retval=1))
    await dispatch(d, raw_event(GETPID.nr, phase=Phase.RETURN, retval=1234))
    assert len(seen) == 2


async def test_every_filter_works_on_unknown_hooks(registry: Registry) -> None:
    seen: list[Any] = []
    memory = {0x5000: b"/dev/weird\0"}
    registry.add(recorder(seen, "arg"), "on_unknown_sys_enter",
                 arg_filters=[ValueFilter.bitmask_set(0x4), None, 7])  # fmt: skip
    registry.add(recorder(seen, "str"), "on_unknown_sys_enter",
                 arg_filters=[None, ValueFilter.string_contains("weird")])  # fmt: skip
    registry.add(recorder(seen, "ret"), "on_unknown_sys_return", retval_filter=-38,
                 comm_filter="cat", pid_filter=100)  # fmt: skip
    d = dispatcher(registry)
    await dispatch(d, raw_event(UNKNOWN_NR, (0x6, 0x5000, 7)), memory=memory)
    await dispatch(d, raw_event(UNKNOWN_NR, (0x3, 0x6000, 7)), memory=memory)
    await dispatch(d, raw_event(UNKNOWN_NR, phase=Phase.RETURN, retval=(-38) & M64))
    await dispatch(d, raw_event(UNKNOWN_NR, phase=Phase.RETURN, retval=0))
    await dispatch(d, raw_event(UNKNOWN_NR, phase=Phase.RETURN, retval=-38, tgid=5))
    assert [s[0] for s in seen] == ["arg", "str", "ret"]


# -- the trap context ---------------------------------------------------------------------------


async def test_mem_works_inside_a_handler_and_not_after(registry: Registry) -> None:
    got: list[Any] = []
    mem = Mem()

    async def reader(regs: Any, proto: Any, syscall: Any, fd: int, buf: int, count: int) -> None:
        got.append(current_trap.get().event.nr)
        got.append(await mem.read_bytes(buf, count))
        got.append(await mem.read_int(buf))

    registry.add(reader, "read")
    await dispatch(dispatcher(registry), raw_event(0, (3, 0x5000, 4)),
                   memory={0x5000: b"\x01\x00\x00\x80rest"})  # fmt: skip
    assert got == [0, b"\x01\x00\x00\x80", -(1 << 31) + 1]
    with pytest.raises(LookupError):
        current_trap.get()
    with pytest.raises(HandlerContextError):
        await mem.read_bytes(0x5000, 4)


# -- read_only hooks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (lambda s, r: setattr(s, "skip_syscall", True), "syscall.skip_syscall"),
        (lambda s, r: setattr(s, "retval", 5), "syscall.retval"),
        (lambda s, r: s.args.__setitem__(1, 7), r"syscall.args\[1\]"),
        (lambda s, r: setattr(r, "rsi", 7), r"syscall.args\[1\]"),  # a register write
    ],
)
async def test_a_read_only_handler_cannot_change_the_call(
    registry: Registry, caplog: pytest.LogCaptureFixture, change: Any, what: str
) -> None:
    caught: list[Exception] = []
    seen: list[tuple[bool, int, int]] = []

    def watcher(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        try:
            change(syscall, regs)
        except ReadOnlyHookError as exc:  # a handler that swallows it is still counted
            caught.append(exc)

    def writer(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        seen.append((syscall.skip_syscall, syscall.retval, syscall.args[1]))
        syscall.args[2] = 9  # an ordinary hook after it still may

    registry.add(watcher, "openat", read_only=True)
    registry.add(writer, "openat")
    d = dispatcher(registry)
    with caplog.at_level(logging.ERROR, logger="syscalls"):
        trap = await dispatch(d, raw_event(OPENAT.nr, (1, 2, 3, 4)))
    [exc] = caught
    assert re.search(f"handler watcher is registered with read_only=True: it cannot set {what}",
                     str(exc))  # fmt: skip
    assert seen == [(False, 0, 2)]  # nothing of the change was applied
    assert trap.calls == [("set_arg", 2, 9)]
    assert (d.stats.read_only_refused, d.stats.handler_errors) == (1, 0)
    assert any("read_only handler watcher" in r.getMessage() for r in caplog.records)


async def test_an_uncaught_read_only_refusal_is_also_a_handler_error(registry: Registry) -> None:
    def watcher(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.retval = 1

    registry.add(watcher, "on_sys_getpid_return", read_only=True)
    d = dispatcher(registry, on_error=FailClosed())  # read-only hooks never fail closed
    trap = await dispatch(d, raw_event(GETPID.nr, phase=Phase.RETURN, retval=100))
    assert trap.calls == []
    assert (d.stats.read_only_refused, d.stats.handler_errors, d.stats.failed_closed) == (1, 1, 0)


# -- failure policies ----------------------------------------------------------------------


def _raises_before_its_verdict(log: list[str]) -> Callable[..., None]:
    def guard(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        log.append("guard")
        syscall.args[1] = 0x1111
        raise BrokenPipeError("print failed")  # before it set skip_syscall

    return guard


@pytest.mark.parametrize(
    ("session_policy", "hook_policy", "verdict"),
    [
        ("continue", None, [("set_arg", 1, 0x1111)]),  # as before: the call runs
        (FailClosed(), None, [("skip", -errno.EPERM)]),
        (FailClosed(errno.EACCES), None, [("skip", -errno.EACCES)]),
        ("continue", FailClosed(errno.ENOENT), [("skip", -errno.ENOENT)]),
        ("continue", "fail_closed", [("skip", -errno.EPERM)]),
        (FailClosed(), "continue", [("set_arg", 1, 0x1111)]),  # the hook's own policy wins
    ],
)
async def test_fail_closed_refuses_the_call_when_a_handler_raises(
    registry: Registry, session_policy: Any, hook_policy: Any, verdict: list[Any]
) -> None:
    seen: list[str] = []
    registry.add(_raises_before_its_verdict(seen), "openat", on_error=hook_policy)
    registry.add(recorder(seen, "next"), "openat")
    d = dispatcher(registry, on_error=session_policy)
    trap = await dispatch(d, raw_event(OPENAT.nr, (1, 2, 3, 4)))
    assert trap.calls == verdict
    closed = verdict[0][0] == "skip"
    # failing closed stops there: the handlers after it on this event do not run
    assert seen == (["guard"] if closed else ["guard", ("next", 1, 0x1111, 3, 4)])
    assert (d.stats.handler_errors, d.stats.failed_closed) == (1, int(closed))


async def test_fail_closed_on_return_sets_the_errno_as_the_result(registry: Registry) -> None:
    def broken(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        raise RuntimeError("no")

    registry.add(broken, "on_sys_getpid_return", on_error=FailClosed(errno.EACCES))
    d = dispatcher(registry)
    trap = await dispatch(d, raw_event(GETPID.nr, phase=Phase.RETURN, retval=100))
    assert trap.calls == [("set_retval", -errno.EACCES)]


async def test_fail_closed_when_a_handler_times_out_or_leaves_a_bad_retval(
    registry: Registry,
) -> None:
    async def slow(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        await asyncio.sleep(30)

    def wrong(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.retval = "0"  # type: ignore[assignment]

    registry.add(slow, "getpid")
    registry.add(wrong, "ioctl")
    d = dispatcher(registry, handler_timeout=0.02, on_error=FailClosed())
    assert (await dispatch(d, raw_event(GETPID.nr))).calls == [("skip", -errno.EPERM)]
    assert (await dispatch(d, raw_event(IOCTL.nr))).calls == [("skip", -errno.EPERM)]
    assert (d.stats.handler_timeouts, d.stats.handler_errors, d.stats.failed_closed) == (1, 1, 2)


async def test_a_lost_trap_is_not_failed_closed(registry: Registry) -> None:
    async def late(regs: Any, proto: Any, syscall: Any) -> None:
        raise TrapGone("the guest task stopped waiting")

    registry.add(late, "getpid")
    d = dispatcher(registry, on_error=FailClosed())
    assert (await dispatch(d, raw_event(GETPID.nr))).calls == []
    assert d.stats.failed_closed == 0


async def test_fail_closed_keeps_a_skip_decided_before_the_failure(registry: Registry) -> None:
    def decided(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.skip_syscall = True
        syscall.retval = -errno.EACCES
        raise BrokenPipeError("the print after the verdict failed")

    registry.add(decided, "getpid")
    d = dispatcher(registry, on_error=FailClosed())
    assert (await dispatch(d, raw_event(GETPID.nr))).calls == [("skip", -errno.EACCES)]
    assert d.stats.failed_closed == 1


# -- verdict values never wrap ------------------------------------------------------------------


@pytest.mark.parametrize("phase", [Phase.ENTER, Phase.RETURN])
@pytest.mark.parametrize("bad", [2**70, 2**64, -(2**63) - 1])
async def test_out_of_range_retval_is_refused_not_wrapped(
    registry: Registry, phase: Phase, bad: int
) -> None:
    def good(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        if syscall.is_enter:
            syscall.skip_syscall = True
        syscall.retval = -4

    def wide(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.retval = bad

    enter, ret = phase is Phase.ENTER, phase is Phase.RETURN
    registry.add(good, "getpid", on_enter=enter, on_return=ret)
    registry.add(wide, "getpid", on_enter=enter, on_return=ret)
    fatal: list[BaseException] = []
    d = dispatcher(registry, fail_fast=True, on_fatal=fatal.append)
    trap = await dispatch(d, raw_event(GETPID.nr, phase=phase, retval=100))
    assert trap.calls == [("skip", -4) if enter else ("set_retval", -4)]
    assert d.stats.handler_errors == 1
    assert len(fatal) == 1 and isinstance(fatal[0], OutOfRange)
    assert "wide" in str(fatal[0]) and "64 bits" in str(fatal[0])


async def test_64_bit_retvals_written_unsigned_are_taken_as_signed(registry: Registry) -> None:
    def unsigned(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.skip_syscall = True
        syscall.retval = 2**64 - 13

    seen: list[int] = []
    registry.add(unsigned, "getpid")
    registry.add(lambda r, p, s: seen.append(s.retval), "getpid")
    d = dispatcher(registry)
    trap = await dispatch(d, raw_event(GETPID.nr))
    assert seen == [-13] and trap.calls == [("skip", -13)]
    assert d.stats.handler_errors == 0


async def test_rax_wider_than_64_bits_is_refused(registry: Registry) -> None:
    def wide(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        regs.rax = 2**70

    registry.add(wide, "getpid", on_enter=False)
    fatal: list[BaseException] = []
    d = dispatcher(registry, fail_fast=True, on_fatal=fatal.append)
    trap = await dispatch(d, raw_event(GETPID.nr, phase=Phase.RETURN, retval=100))
    assert trap.calls == [] and d.stats.handler_errors == 1
    assert isinstance(fatal[0], OutOfRange) and "rax" in str(fatal[0])


# -- a handler that stops the program still leaves its verdict ----------------------------------


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
async def test_keyboard_interrupt_or_exit_in_a_handler_keeps_the_verdict_so_far(
    registry: Registry, stop: type[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def quits(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.skip_syscall = True
        syscall.retval = -1
        raise stop()

    registry.add(quits, "getpid")
    registry.add(recorder(seen, "never"), "getpid")  # type: ignore[arg-type]
    fatal: list[BaseException] = []
    d = dispatcher(registry, fail_fast=True, on_fatal=fatal.append)
    trap = FakeTrap(raw_event(GETPID.nr), hook_ids=tuple(h.id for h in registry))
    with caplog.at_level(logging.ERROR, logger="syscalls"), pytest.raises(stop):
        await d(trap)  # type: ignore[arg-type]
    assert trap.calls == [("skip", -1)]
    assert seen == [] and d.stats.handler_errors == 1
    assert len(fatal) == 1 and isinstance(fatal[0], stop)
    assert any("quits failed" in r.getMessage() for r in caplog.records)


async def test_other_base_exceptions_are_handler_errors(registry: Registry) -> None:
    class Odd(BaseException):
        pass

    def odd(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        syscall.skip_syscall = True
        raise Odd()

    seen: list[Any] = []
    registry.add(odd, "getpid")
    registry.add(recorder(seen, "next"), "getpid")  # type: ignore[arg-type]
    d = dispatcher(registry)
    trap = await dispatch(d, raw_event(GETPID.nr))
    assert trap.calls == [("skip", 0)] and seen == [("next",)]
    assert d.stats.handler_errors == 1


async def test_handlers_of_one_event_share_its_budget(registry: Registry) -> None:
    """The guest waits for the event's verdict, not for each handler: the budget
    is the event's, so the verdict is written before the guest gives up."""

    def handler(retval: int) -> Callable[..., Any]:
        async def h(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
            await asyncio.sleep(0.15)
            syscall.skip_syscall = True
            syscall.retval = retval

        h.__name__ = f"sets_{-retval}"
        return h

    registry.add(handler(-1), "getpid")
    registry.add(handler(-2), "getpid")  # would end at 0.3 s: past the event's 0.2 s
    d = dispatcher(registry, handler_timeout=0.2)
    loop = asyncio.get_running_loop()
    start = loop.time()
    trap = await dispatch(d, raw_event(GETPID.nr))
    assert loop.time() - start < 0.29
    assert trap.calls == [("skip", -1)]
    assert (d.stats.handler_calls, d.stats.handler_timeouts) == (2, 1)


async def test_the_deadline_is_the_events_whenever_a_handler_first_suspends(
    registry: Registry,
) -> None:
    # handlers run eagerly: the deadline is armed only when one suspends, but its
    # due time is still the event's start plus the budget
    seen: list[str] = []

    def blocking(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        time.sleep(0.1)  # never suspends: nothing can cancel it (as before)
        seen.append("blocking done")

    async def eager(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        seen.append("eager done")  # never suspends either

    async def late(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        try:
            await asyncio.sleep(10)  # the budget is already spent: cancelled at once
        except asyncio.CancelledError:
            seen.append("late cancelled")
            raise

    for handler in (blocking, eager, late):
        registry.add(handler, "getpid")
    d = dispatcher(registry, handler_timeout=0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await dispatch(d, raw_event(GETPID.nr))
    assert loop.time() - start < 5
    assert seen == ["blocking done", "eager done", "late cancelled"]
    assert (d.stats.handler_timeouts, d.stats.handler_errors) == (1, 0)
