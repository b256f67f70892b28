"""All-syscall and unknown-syscall hooks, with every kind of filter."""

from __future__ import annotations

import asyncio
from typing import Any

from syscalls_async import Session, ValueFilter


async def test_comm_filter_on_an_all_syscall_hook(session: Session, calls: Any) -> None:
    def every(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.task.comm, syscall.name))

    await session.plugins.syscalls.register(every, "on_all_sys_enter", comm_filter="send_syscall")
    await session.run("send_syscall getppid")
    got = await calls.wait(1)
    assert {comm for comm, _ in got} == {"send_syscall"}
    names = [name for _, name in got]
    # the process's whole life from the execve return on: libc start-up, the call, the exit
    assert "sys_getppid" in names and "sys_write" in names and names[-1] == "sys_exit_group"


async def test_pid_filter_on_an_all_syscall_hook(session: Session, calls: Any) -> None:
    # a subshell waits on a fifo; its pid is known before it does anything we watch
    started = await session.run(
        "rm -f /tmp/go; mkfifo /tmp/go; "
        "(read x < /tmp/go; exec send_syscall getppid) >/dev/null 2>&1 & "
        "echo $!"
    )
    pid = int(started.stdout)

    def every(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.pid, syscall.name))
        if syscall.name == "sys_exit_group":
            done.set()

    done = asyncio.Event()
    await session.plugins.syscalls.register(every, "on_all_sys_enter", pid_filter=pid)
    await session.run("echo go > /tmp/go")
    async with asyncio.timeout(30):
        await done.wait()
    assert {p for p, _ in calls.items} == {pid}
    names = [n for _, n in calls.items]
    assert "sys_execve" in names and "sys_getppid" in names


async def test_arg_filter_on_an_all_syscall_hook(session: Session, calls: Any) -> None:
    def every(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.name, syscall.args[1]))

    await session.plugins.syscalls.register(
        every,
        "on_all_sys_enter",
        comm_filter="send_syscall",
        arg_filters=[None, ValueFilter.exact(0xC0FFEE)],
    )
    await session.run("send_syscall ioctl 9 0xc0ffee; send_syscall lseek 9 0xc0ffee 0")
    assert await calls.wait(2) == [("sys_ioctl", 0xC0FFEE), ("sys_lseek", 0xC0FFEE)]


async def test_all_syscall_return_hook_with_retval_filter(session: Session, calls: Any) -> None:
    def failed(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.name, syscall.retval))

    await session.plugins.syscalls.register(
        failed,
        "on_all_sys_return",
        comm_filter="send_syscall",
        retval_filter=ValueFilter.exact(-9),
    )
    await session.run("send_syscall ioctl 9 0x1")
    got = await calls.wait(1)
    assert ("sys_ioctl", -9) in got
    assert all(r == -9 for _, r in got)


# Syscalls without metadata: on this kernel all of them are entries of the
# shared "not implemented" stub (180 is nfsservctl, removed long ago).
NI = 180


async def test_unknown_syscall_hook_fires_on_a_syscall_without_metadata(
    session: Session, calls: Any
) -> None:
    proto = session.plugins.syscalls.registry.prototypes
    assert proto is not None and not proto.by_nr(NI).known  # nfsservctl: no metadata

    def unknown(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.nr, proto.known, syscall.args[0]))
        syscall.skip_syscall = True
        syscall.retval = 99

    await session.plugins.syscalls.register(
        unknown, "on_unknown_sys_enter", comm_filter="send_syscall"
    )
    result = await session.run(f"send_syscall {NI} 0x77; send_syscall getppid")
    assert await calls.wait(1) == [(NI, False, 0x77)]
    assert result.stdout.splitlines()[0] == b"send_syscall: syscall returned 99"
    assert int(result.stdout.splitlines()[1].split()[-1]) > 0


async def test_unknown_return_hook_changes_enosys(session: Session, calls: Any) -> None:
    def ret(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.nr, syscall.retval, syscall.args[1]))
        syscall.retval = 1234

    await session.plugins.syscalls.register(
        ret,
        "on_unknown_sys_return",
        comm_filter="send_syscall",
        arg_filters=[None, ValueFilter.exact(0x55)],
        retval_filter=ValueFilter.exact(-38),
    )
    result = await session.run(
        f"send_syscall {NI} 1 0x54; send_syscall {NI} 1 0x55; send_syscall getppid"
    )
    lines = result.stdout.splitlines()
    assert calls.items == [(NI, -38, 0x55)]  # ENOSYS, the stub's own result
    assert lines[0] == b"send_syscall: syscall returned -38"
    assert lines[1] == b"send_syscall: syscall returned 1234"
    assert int(lines[2].split()[-1]) > 0


async def test_continue_on_an_unknown_syscall_keeps_enosys(session: Session, calls: Any) -> None:
    def look(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.nr, syscall.args[0]))
        syscall.args[0] = 5  # nothing runs with it, and the caller's register is put back

    await session.plugins.syscalls.register(
        look, "on_unknown_sys_enter", comm_filter="send_syscall"
    )
    result = await session.run(f"send_syscall {NI} 9")
    assert calls.items == [(NI, 9)]
    assert result.stdout == b"send_syscall: syscall returned -38\n"


async def test_all_syscall_hooks_see_a_syscall_without_metadata(
    session: Session, calls: Any
) -> None:
    def enter(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add(("enter", syscall.nr, proto.known))

    def ret(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add(("return", syscall.nr, syscall.retval))

    await session.plugins.syscalls.register(enter, "on_all_sys_enter", comm_filter="send_syscall")
    await session.plugins.syscalls.register(ret, "on_all_sys_return", comm_filter="send_syscall")
    await session.run(f"send_syscall {NI} 3")
    assert ("enter", NI, False) in calls.items
    assert ("return", NI, -38) in calls.items
    got = [c for c in calls.items if c[1] == NI]
    assert got == [("enter", NI, False), ("return", NI, -38)]


async def test_known_syscalls_never_reach_unknown_hooks(session: Session, calls: Any) -> None:
    proto = session.plugins.syscalls.registry.prototypes
    assert proto is not None

    def unknown(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.nr, proto.known))

    def unknown_ret(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.nr, proto.known))

    await session.plugins.syscalls.register(
        unknown, "on_unknown_sys_enter", comm_filter="send_syscall"
    )
    await session.plugins.syscalls.register(
        unknown_ret, "on_unknown_sys_return", comm_filter="send_syscall"
    )
    # the whole life of three programs: start-up, getppid/getpid/ioctl, exit
    await session.run(
        f"send_syscall getppid; send_syscall getpid; send_syscall ioctl 9 1; send_syscall {NI}"
    )
    assert calls.items == [(NI, False), (NI, False)]
