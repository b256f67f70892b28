"""Every syscall exactly once, paired: interrupted calls and numbers beyond the table.

Each test compares what hooks saw with what the guest program itself saw.
"""

from __future__ import annotations

from typing import Any

import pytest

from syscalls_async import Session

EINTR = -4
ERESTARTSYS = -512
ENOSYS = -38


def _pairs(calls: Any) -> tuple[int, list[tuple[int, bool]]]:
    enters = sum(1 for phase, *_ in calls.items if phase == "enter")
    returns = [(ret, restarted) for phase, ret, restarted in calls.items if phase == "return"]
    return enters, returns


@pytest.mark.parametrize(("mode", "name"), [("read", "read"), ("nanosleep", "nanosleep")])
async def test_a_call_a_signal_ends_in_eintr_reaches_return_hooks(
    session: Session, calls: Any, mode: str, name: str
) -> None:
    def note(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.phase, syscall.retval, syscall.restarted))

    await session.plugins.syscalls.register(
        note, name, on_enter=True, on_return=True, comm_filter="interrupt"
    )
    r = await session.run(f"interrupt {mode}")
    assert r.stdout == f"interrupt: {mode} returned -4, signals 1\n".encode()
    await calls.wait(2)
    assert _pairs(calls) == (1, [(EINTR, False)])


async def test_a_restarted_call_says_so_and_its_rerun_is_a_new_pair(
    session: Session, calls: Any
) -> None:
    def note(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.phase, syscall.retval, syscall.restarted))

    await session.plugins.syscalls.register(
        note, "read", on_enter=True, on_return=True, comm_filter="interrupt"
    )
    r = await session.run("interrupt read-restart")
    # SA_RESTART: the kernel ran the read again and it returned the handler's byte
    assert r.stdout == b"interrupt: read-restart returned 1, signals 1\n"
    await calls.wait(4)
    assert _pairs(calls) == (2, [(ERESTARTSYS, True), (1, False)])


async def test_a_return_hook_can_replace_the_eintr(session: Session, calls: Any) -> None:
    def replace(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add(syscall.retval)
        syscall.retval = 7

    await session.plugins.syscalls.register(replace, "on_sys_read_return", comm_filter="interrupt")
    r = await session.run("interrupt read")
    # the value was in the signal handler's frame: the task sees it after the handler
    assert r.stdout == b"interrupt: read returned 7, signals 1\n"
    assert calls.items == [EINTR]


@pytest.mark.parametrize("pattern", ["all", "unknown"])
async def test_numbers_beyond_the_table_reach_all_and_unknown_hooks(
    session: Session, calls: Any, pattern: str
) -> None:
    def note(regs: Any, proto: Any, syscall: Any) -> None:
        if syscall.nr >= 1000:
            calls.add((syscall.phase, syscall.nr, syscall.name, syscall.retval))
            if syscall.phase == "return":
                syscall.retval = 5

    await session.plugins.syscalls.register(
        note, f"on_{pattern}_sys_enter", comm_filter="send_syscall"
    )
    await session.plugins.syscalls.register(
        note, f"on_{pattern}_sys_return", comm_filter="send_syscall"
    )
    r = await session.run("send_syscall 1000; send_syscall 0x7fffffff")
    # the return hook's value replaced the kernel's -ENOSYS
    assert r.stdout == b"send_syscall: syscall returned 5\n" * 2
    assert await calls.wait(4) == [
        ("enter", 1000, "sys_unknown_1000", 0),
        ("return", 1000, "sys_unknown_1000", ENOSYS),
        ("enter", 0x7FFFFFFF, "sys_unknown_2147483647", 0),
        ("return", 0x7FFFFFFF, "sys_unknown_2147483647", ENOSYS),
    ]
