"""plugins.mem, plugins.portal and plugins.OSI from inside handlers on the real guest."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from syscalls_async import GuestMemoryError, HandlerContextError, RequestTooLarge, Session, plugins


async def test_read_str_and_ptrlist_of_execve(session: Session, calls: Any) -> None:
    async def on_execve(
        regs: Any, proto: Any, syscall: Any, filename: int, argv: int, envp: int
    ) -> None:
        calls.add((await plugins.mem.read_str(filename), await plugins.mem.read_ptrlist(argv)))

    await session.plugins.syscalls.register(on_execve, "execve", comm_filter="sh")
    await session.run("exec /bin/send_syscall getpid 'two words' ''")
    [(path, argv)] = await calls.wait(1)
    assert path == "/bin/send_syscall"
    assert argv == ["/bin/send_syscall", "getpid", "two words", ""]


async def test_writes_to_guest_memory_are_seen_by_the_program(session: Session) -> None:
    async def swap_path(
        regs: Any, proto: Any, syscall: Any, dfd: int, filename: int, flags: int, mode: int
    ) -> None:
        if await plugins.mem.read_str(filename) == "/tmp/apple":
            await plugins.mem.write_str(filename, "/tmp/lemon")

    await session.run("echo APPLE > /tmp/apple; echo LEMON > /tmp/lemon")
    await session.plugins.syscalls.register(swap_path, "openat", comm_filter="cat")
    result = await session.run("cat /tmp/apple")
    assert result.stdout == b"LEMON\n"


async def test_typed_reads_and_writes(session: Session, calls: Any) -> None:
    async def on_write(regs: Any, proto: Any, syscall: Any, fd: int, buf: int, count: int) -> None:
        data = await plugins.mem.read_bytes(buf, count)
        ints = (
            await plugins.mem.read_int(buf),
            await plugins.mem.read_long(buf),
            await plugins.mem.read_ptr(buf),
        )
        await plugins.mem.write_int(buf, -2)
        await plugins.mem.write_long(buf + 4, 0x0102030405060708)
        calls.add((data, ints))

    await session.plugins.syscalls.register(
        on_write, "write", comm_filter="send_syscall", arg_filters=[1, None, 12]
    )
    # write(1, "ABCDEFGHIJKL", 12): the handler rewrites the buffer before the kernel copies it
    result = await session.run("send_syscall write 1 ABCDEFGHIJKL 0xc")
    [(data, (i32, i64, ptr))] = await calls.wait(1)
    assert data == b"ABCDEFGHIJKL"
    assert i32 == struct.unpack("<i", b"ABCD")[0]
    assert i64 == struct.unpack("<q", b"ABCDEFGH")[0]
    assert ptr == struct.unpack("<Q", b"ABCDEFGH")[0]
    assert result.stdout.startswith(struct.pack("<i", -2) + struct.pack("<Q", 0x0102030405060708))


async def test_bad_addresses_raise_guest_memory_error_with_the_address(
    session: Session, calls: Any
) -> None:
    async def probe(regs: Any, proto: Any, syscall: Any) -> None:
        for call in (
            plugins.mem.read_str(0x10),
            plugins.mem.read_bytes(0xDEAD0000, 8),
            plugins.mem.write_bytes(0x20, b"x"),
        ):
            try:
                await call
            except GuestMemoryError as exc:
                calls.add(exc.addr)
        try:
            await plugins.mem.read_bytes(0x1000, 1 << 40)
        except RequestTooLarge as exc:
            calls.add(str(exc))

    await session.plugins.syscalls.register(probe, "getppid", comm_filter="send_syscall")
    result = await session.run("send_syscall getppid")
    assert result.exit_status != 255
    got = await calls.wait(4)
    assert got[:3] == [0x10, 0xDEAD0000, 0x20]
    assert "more than" in got[3]


async def test_memory_calls_outside_a_handler_say_why_they_fail() -> None:
    with pytest.raises(HandlerContextError, match="inside a syscall handler"):
        await plugins.mem.read_str(0x1000)


async def test_process_information_of_the_calling_task(session: Session, calls: Any) -> None:
    async def info(regs: Any, proto: Any, syscall: Any) -> None:
        proc = await plugins.portal.get_proc()
        osi = await plugins.OSI.get_proc()
        maps = await plugins.portal.get_mappings()
        binary = [m for m in maps if m.path == "/bin/send_syscall"]
        magic = await plugins.mem.read_bytes(binary[0].start, 4)
        fds = await plugins.portal.get_fds()
        procs = await plugins.portal.get_proc_list()
        calls.add((syscall.pid, proc, osi, binary, magic, fds, procs))

    await session.plugins.syscalls.register(info, "getppid", comm_filter="send_syscall")
    result = await session.run("cd /tmp && exec 5</etc/passwd && exec send_syscall getppid")
    [(pid, proc, osi, binary, magic, fds, procs)] = await calls.wait(1)
    ppid = int(result.stdout.split()[-1])
    assert (proc.pid, proc.tgid, proc.ppid, proc.comm) == (pid, pid, ppid, "send_syscall")
    assert (proc.exe, proc.cwd, proc.argv) == (
        "/bin/send_syscall",
        "/tmp",
        ("send_syscall", "getppid"),
    )
    assert (osi.name, osi.pid, osi.ppid, osi.args, osi.exe) == (
        "send_syscall",
        pid,
        ppid,
        ("send_syscall", "getppid"),
        "/bin/send_syscall",
    )
    assert magic == b"\x7fELF"
    assert binary[0].perms.startswith("r") and binary[0].offset == 0
    assert any(m.perms[2] == "x" for m in binary)
    assert {f.fd: f.path for f in fds}.get(5) == "/etc/passwd"
    assert any(p.pid == pid and p.comm == "send_syscall" for p in procs)
    assert any(p.pid == 1 for p in procs)
