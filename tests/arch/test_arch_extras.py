"""What some architectures do beyond the matrix: interrupted calls paired
exactly once, and numbers beyond the syscall table reaching hooks.

:data:`ARCHS` lists the architectures whose module does these (x86_64's own
suite has them in tests/api/test_exactly_once.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from arch_support import Calls, selected

from syscalls_async import Session

#: the architectures these run on
ARCHS = ["aarch64", "armhf"]

pytestmark = pytest.mark.parametrize("arch", selected(ARCHS))

EINTR = -4
ERESTARTSYS = -512
ENOSYS = -38


def _note(calls: Calls) -> Any:
    def note(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.phase, syscall.retval, syscall.restarted))

    return note


async def test_an_interrupted_read_returns_eintr_once(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    await arch_session.plugins.syscalls.register(
        _note(arch_calls), "read", on_enter=True, on_return=True, comm_filter="interrupt"
    )
    r = await arch_session.run("interrupt read")
    assert r.stdout == b"interrupt: read returned -4, signals 1\n"
    await arch_calls.wait(2)
    assert arch_calls.items == [("enter", 0, False), ("return", EINTR, False)]


async def test_a_restarted_read_says_so(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    await arch_session.plugins.syscalls.register(
        _note(arch_calls), "read", on_enter=True, on_return=True, comm_filter="interrupt"
    )
    r = await arch_session.run("interrupt read-restart")
    assert r.stdout == b"interrupt: read-restart returned 1, signals 1\n"
    await arch_calls.wait(4)
    returns = [(ret, restarted) for phase, ret, restarted in arch_calls.items if phase == "return"]
    assert returns == [(ERESTARTSYS, True), (1, False)]


async def test_a_return_hook_replaces_the_eintr_in_the_signal_frame(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    def replace(regs: Any, proto: Any, syscall: Any) -> None:
        arch_calls.add(syscall.retval)
        syscall.retval = 7

    await arch_session.plugins.syscalls.register(
        replace, "on_sys_read_return", comm_filter="interrupt"
    )
    r = await arch_session.run("interrupt read")
    assert r.stdout == b"interrupt: read returned 7, signals 1\n"
    assert arch_calls.items == [EINTR]


async def test_numbers_beyond_the_table_reach_unknown_hooks(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    # ARM sends numbers from 0x0f0000 on to arm_syscall(), which answers
    # unknown ones with SIGILL: the largest number below that range instead
    high = 0xEFFFF if arch == "armhf" else 0x7FFFFFFF

    def note(regs: Any, proto: Any, syscall: Any) -> None:
        # (on ARM glibc's own set_tls, 0x0f0005, is beyond the table too)
        if syscall.nr in (1000, high):
            arch_calls.add((syscall.phase, syscall.nr, syscall.retval))
            if syscall.phase == "return":
                syscall.retval = 5

    for phase in ("enter", "return"):
        await arch_session.plugins.syscalls.register(
            note, f"on_unknown_sys_{phase}", comm_filter="send_syscall"
        )
    r = await arch_session.run(f"send_syscall 1000; send_syscall {high:#x}")
    assert r.stdout == b"send_syscall: syscall returned 5\n" * 2
    assert await arch_calls.wait(4) == [
        ("enter", 1000, 0),
        ("return", 1000, ENOSYS),
        ("enter", high, 0),
        ("return", high, ENOSYS),
    ]
