"""MIPS o32 beyond the matrix: numbers outside the table, syscall(2), and
the entries that are assembler stubs (fork saves the callee-saved registers
for the child), each hooked on the mipsel guest."""

from __future__ import annotations

from typing import Any

import pytest
from arch_support import Calls, selected

from syscalls_async import Session

#: the architectures these run on
ARCHS = ["mipsel"]

pytestmark = pytest.mark.parametrize("arch", selected(ARCHS))

RET = "send_syscall: syscall returned"
ENOSYS = -89  # MIPS numbers its errnos its own way
NR_SYSCALL, NR_GETPID = 4000, 4020


async def test_numbers_beyond_the_table_reach_unknown_hooks(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    # below o32's 4000 and beyond its last entry: handle_sys answers both
    # -ENOSYS in assembler; the sys_enter tracepoint brings them to the hooks
    # with the number the task passed
    def note(regs: Any, proto: Any, syscall: Any) -> None:
        if not 4000 <= syscall.nr < 5000:
            arch_calls.add((syscall.phase, syscall.nr, syscall.retval))
            if syscall.phase == "return":
                syscall.retval = 5

    for phase in ("enter", "return"):
        await arch_session.plugins.syscalls.register(
            note, f"on_unknown_sys_{phase}", comm_filter="send_syscall"
        )
    r = await arch_session.run("send_syscall 1000; send_syscall 6000")
    assert r.stdout == f"{RET} 5\n".encode() * 2
    assert await arch_calls.wait(4) == [
        ("enter", 1000, 0),
        ("return", 1000, ENOSYS),
        ("enter", 6000, 0),
        ("return", 6000, ENOSYS),
    ]
    # unhooked, the kernel's own answer again
    await arch_session.plugins.syscalls.unregister(note)
    r = await arch_session.run("send_syscall 6000")
    assert r.stdout == f"{RET} {ENOSYS}\n".encode()


async def test_syscall2_is_hooked_as_itself_and_still_runs_its_target(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    def note(regs: Any, proto: Any, syscall: Any) -> None:
        arch_calls.add((syscall.phase, syscall.nr, syscall.args[0], syscall.retval))

    await arch_session.plugins.syscalls.register(
        note, "on_all_sys_enter", comm_filter="send_syscall"
    )
    await arch_session.plugins.syscalls.register(
        note, "on_all_sys_return", comm_filter="send_syscall"
    )
    # syscall(__NR_getpid) through syscall(2) (send_syscall reads arguments in hex)
    r = await arch_session.run(f"send_syscall {NR_SYSCALL} {NR_GETPID:x}")
    pid = int(r.stdout.split()[-1])
    assert pid > 0
    calls = [c for c in await arch_calls.wait(2) if c[1] == NR_SYSCALL]
    assert calls == [("enter", NR_SYSCALL, NR_GETPID, 0), ("return", NR_SYSCALL, NR_GETPID, pid)]


async def test_a_hooked_fork_gives_the_child_its_registers(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    # fork's table entry saves s0-s7/fp for the child before the C function;
    # redirected, the module does that: a child with wrong registers would
    # not get to print and exit
    def note(regs: Any, proto: Any, syscall: Any) -> None:
        arch_calls.add((syscall.phase, syscall.name))

    for phase in ("enter", "return"):
        await arch_session.plugins.syscalls.register(
            note, f"on_sys_fork_{phase}", comm_filter="send_syscall"
        )
    r = await arch_session.run("send_syscall fork; wait")
    lines = sorted(r.stdout.decode().splitlines())
    assert len(lines) == 2, r
    assert lines[0] == f"{RET} 0"
    assert int(lines[1].split()[-1]) > 0
    assert ("enter", "sys_fork") in await arch_calls.wait(2)
