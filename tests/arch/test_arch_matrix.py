"""The same hooks on every guest architecture (issue 10's per-architecture list).

Each test runs once per architecture of :data:`ARCHS` on that architecture's
one shared guest (``arch_machine``, booted by the first test that needs it).
x86_64 is the suite's own guest, so the matrix costs it nothing; each other
architecture costs one TCG boot per test session.  Another architecture joins
by appending its name to :data:`ARCHS`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arch_support import Calls, selected

from syscalls_async import PortalLost, Session
from syscalls_async.api import Plugins
from syscalls_async.machine import Machine
from syscalls_async.portal.arch import arch_by_name

#: the architectures every test here runs on
ARCHS = ["x86_64", "aarch64", "armhf", "mipsel"]

pytestmark = pytest.mark.parametrize("arch", selected(ARCHS))

RET = "send_syscall: syscall returned"
MODULE = "/lib/modules/syscalls_async.ko"


async def test_skip_with_a_return_value(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    regs_of = arch_by_name(arch)

    def skip(regs: Any, proto: Any, syscall: Any, fd: int, op: int, arg: int) -> None:
        # the handler sees this architecture's registers by their names
        arch_calls.add((fd, op, getattr(regs, regs_of.arg_regs[1])))
        syscall.skip_syscall = True
        syscall.retval = 43

    await arch_session.plugins.syscalls.register(
        skip, "on_sys_ioctl_enter", comm_filter="send_syscall", arg_filters=[None, 0xABCD]
    )
    result = await arch_session.run("send_syscall ioctl 9 0xabcd")
    assert (result.stdout, result.exit_status) == (f"{RET} 43\n".encode(), 43)
    assert await arch_calls.wait(1) == [(9, 0xABCD, 0xABCD)]


async def test_change_an_argument(arch: str, arch_session: Session) -> None:
    def to_stdout(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int, arg: int) -> None:
        syscall.args[0] = 1  # fd 9 (closed) becomes stdout, a pipe: ENOTTY, not EBADF

    await arch_session.plugins.syscalls.register(
        to_stdout, "ioctl", comm_filter="send_syscall", arg_filters=[9]
    )
    result = await arch_session.run("send_syscall ioctl 9 0x5401")
    assert result.stdout == f"{RET} -25\n".encode()


async def test_change_a_return_value(arch: str, arch_session: Session, arch_calls: Calls) -> None:
    def fake_pid(regs: Any, proto: Any, syscall: Any) -> None:
        arch_calls.add(syscall.retval)
        syscall.retval = 4242

    await arch_session.plugins.syscalls.register(
        fake_pid, "on_sys_getpid_return", comm_filter="send_syscall"
    )
    result = await arch_session.run("send_syscall getpid")
    [real] = await arch_calls.wait(1)
    assert real > 1
    assert result.stdout == f"{RET} 4242\n".encode()


async def test_read_a_string_argument(arch: str, arch_session: Session, arch_calls: Calls) -> None:
    mem = arch_session.plugins.mem

    async def on_openat(
        regs: Any, proto: Any, syscall: Any, dfd: int, filename: int, flags: int, mode: int
    ) -> None:
        arch_calls.add(await mem.read_str(filename))

    await arch_session.plugins.syscalls.register(on_openat, "openat", comm_filter="cat")
    result = await arch_session.run("cat /etc/group")
    assert result.stdout == b"root:x:0:\n"
    assert "/etc/group" in await arch_calls.wait(1)


async def test_observed_string_after_a_64_bit_argument(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    """fanotify_mark(fd, flags, u64 mask, dfd, pathname): on a 32-bit ABI the
    mask takes a register pair, so the pathname the guest captures for an
    observe-only hook is in the sixth register, not the fifth."""
    mem = arch_session.plugins.mem

    async def watch(regs: Any, proto: Any, syscall: Any, *args: int) -> None:
        captured = syscall.strings[4]
        arch_calls.add((args[2], args[3], captured and captured.text, await mem.read_str(args[4])))

    await arch_session.plugins.syscalls.register(
        watch, "fanotify_mark", comm_filter="send_syscall", read_only=True
    )
    pair = "0 0" if arch_by_name(arch).word_size == 4 else "0"  # the mask's words
    # fd 3 is no fanotify fd: the call fails, but its arguments were captured
    await arch_session.run(f"send_syscall fanotify_mark 3 0 {pair} ffffff9c /etc/group")
    assert await arch_calls.wait(1) == [(0, -100, "/etc/group", "/etc/group")]


def _unknown_nr(session: Session) -> int:
    """A number of the guest's table without metadata (an unimplemented entry)."""
    table = session.plugins.syscalls.registry.prototypes
    assert table is not None
    unknown = [p.nr for p in table if not p.known]
    assert unknown, "every entry of the table has metadata"
    return unknown[0]


async def test_unknown_syscall_hook(arch: str, arch_session: Session, arch_calls: Calls) -> None:
    nr = _unknown_nr(arch_session)

    def unknown(regs: Any, proto: Any, syscall: Any) -> None:
        # on ARM the C library's own set_tls (ARM-private 0xf0005, beyond the
        # table) is an unknown syscall too: only the test's number is skipped
        if syscall.nr != nr:
            return
        arch_calls.add((syscall.nr, proto.known, syscall.args[0]))
        syscall.skip_syscall = True
        syscall.retval = 99

    await arch_session.plugins.syscalls.register(
        unknown, "on_unknown_sys_enter", comm_filter="send_syscall"
    )
    result = await arch_session.run(f"send_syscall {nr} 0x77; send_syscall getppid")
    assert await arch_calls.wait(1) == [(nr, False, 0x77)]
    lines = result.stdout.splitlines()
    assert lines[0] == f"{RET} 99".encode()
    assert int(lines[1].split()[-1]) > 0


async def test_all_syscall_hook_with_a_comm_filter(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    def every(regs: Any, proto: Any, syscall: Any) -> None:
        arch_calls.add((syscall.task.comm, syscall.name))

    await arch_session.plugins.syscalls.register(
        every, "on_all_sys_enter", comm_filter="send_syscall"
    )
    await arch_session.run("send_syscall getppid")
    got = await arch_calls.wait(1)
    assert {comm for comm, _ in got} == {"send_syscall"}
    names = [name for _, name in got]
    assert "sys_getppid" in names and "sys_write" in names and names[-1] == "sys_exit_group"


async def test_execve_argv_read_on_enter(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    mem = arch_session.plugins.mem

    async def on_execve(
        regs: Any, proto: Any, syscall: Any, filename: int, argv: int, envp: int
    ) -> None:
        arch_calls.add((await mem.read_str(filename), await mem.read_ptrlist(argv)))

    await arch_session.plugins.syscalls.register(on_execve, "execve", comm_filter="sh")
    await arch_session.run("exec /bin/send_syscall getpid 'two words' ''")
    [(path, argv)] = await arch_calls.wait(1)
    assert path == "/bin/send_syscall"
    assert argv == ["/bin/send_syscall", "getpid", "two words", ""]


async def test_fork_and_clone_children_are_seen(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    table = arch_session.plugins.syscalls.registry.prototypes
    assert table is not None
    children: list[int] = []

    def forked(regs: Any, proto: Any, syscall: Any) -> None:
        if syscall.retval > 0:
            children.append(syscall.retval)

    def child(regs: Any, proto: Any, syscall: Any) -> None:
        arch_calls.add(syscall.pid)

    for name in ("fork", "vfork", "clone", "clone3"):
        if table.by_name(name) is not None:
            await arch_session.plugins.syscalls.register(
                forked, f"on_sys_{name}_return", comm_filter="sh"
            )
    await arch_session.plugins.syscalls.register(
        child, "on_sys_getppid_enter", comm_filter="send_syscall"
    )
    await arch_session.run("sh -c 'send_syscall getppid & wait'")
    [pid] = await arch_calls.wait(1)
    assert pid in children, (pid, children)


async def test_unload_with_hooks_in_force(arch: str, arch_machine: Machine) -> None:
    plugins = Plugins()

    @plugins.syscalls.syscall("ioctl", comm_filter="send_syscall", arg_filters=[9, 0xABCD])
    def block(regs: Any, proto: Any, syscall: Any, fd: int, op: int, arg: int) -> None:
        syscall.skip_syscall = True
        syscall.retval = 43

    blocked = "send_syscall ioctl 9 0xabcd"
    try:
        with pytest.raises(PortalLost, match="unload"):
            async with Session(plugins, machine=arch_machine) as session:
                assert (await session.run(blocked)).stdout == f"{RET} 43\n".encode()
                async with asyncio.timeout(120):
                    while (await arch_machine.run("rmmod syscalls_async")).exit_status != 0:
                        await asyncio.sleep(0.2)
                    await session.portal.wait_failure()
                # unhooked, the call runs and fails with EBADF
                assert (await arch_machine.run(blocked)).stdout == f"{RET} -9\n".encode()
    finally:
        args = "$(cat /etc/syscalls_async.args 2>/dev/null)"  # mipsel: where its region is
        r = await arch_machine.run(f"lsmod | grep -q syscalls_async || insmod {MODULE} {args}")
        assert r.exit_status == 0, r.stderr
