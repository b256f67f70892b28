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
