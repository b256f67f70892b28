"""32-bit programs on the x86_64 guest: calls through the ia32 entry are hooked too.

The guest image carries two static i386 programs (``guest/ia32/``):
``send_syscall32`` issues one raw call through ``int 0x80`` with the kernel's
ia32 numbers, ``cat32`` goes through the C library (the vDSO's fast path,
``do_fast_syscall_32``).  Their calls come with ``syscall.abi == "ia32"``,
``nr`` in the ia32 table (openat 295, native 257), the arguments from ebx,
ecx, edx, esi, edi, ebp, and the names and prototypes of the ia32 table.
"""

from __future__ import annotations

from typing import Any

from syscalls_async import Session, ValueFilter
from syscalls_async.api.trace import Tracer, TraceRecord

RET32 = "send_syscall32: syscall returned"
OPENAT_IA32, OPENAT_X64 = 295, 257


async def test_openat_of_both_abis_with_path_abi_and_numbers(session: Session, calls: Any) -> None:
    plugins = session.plugins

    async def opened(regs: Any, proto: Any, syscall: Any, dfd: int, filename: int, *_: Any) -> None:
        path = await plugins.mem.read_str(filename)
        if path.startswith("/etc/"):
            calls.add(
                (syscall.task.comm, syscall.abi, syscall.nr, proto.nr, proto.compat,
                 syscall.name, dfd, path, regs.pc == syscall.pc)
            )  # fmt: skip

    await plugins.syscalls.register(opened, "openat")
    result = await session.run(
        "send_syscall32 openat ffffff9c /etc/passwd 0; cat32 /etc/group >/dev/null; "
        "send_syscall openat ffffffffffffff9c /etc/passwd 0"
    )
    assert result.stdout.count(b"syscall returned 3") == 2, result
    got = await calls.wait(3)
    assert got == [
        ("send_syscall32", "ia32", OPENAT_IA32, OPENAT_IA32, True, "sys_openat", -100,
         "/etc/passwd", True),
        ("cat32", "ia32", OPENAT_IA32, OPENAT_IA32, True, "sys_openat", -100, "/etc/group",
         True),
        ("send_syscall", "x86_64", OPENAT_X64, OPENAT_X64, False, "sys_openat", -100,
         "/etc/passwd", True),
    ]  # fmt: skip


async def test_ia32_registers_hold_the_arguments(session: Session, calls: Any) -> None:
    def seen(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add(
            ([regs.ebx, regs.ecx, regs.edx, regs.esi], syscall.args[:4], regs.orig_eax, proto.names)
        )

    await session.plugins.syscalls.register(seen, "lseek", comm_filter="send_syscall32")
    await session.run("send_syscall32 lseek 9 1234 1")
    [(regs, args, nr, names)] = await calls.wait(1)
    assert regs[:3] == args[:3] == [9, 0x1234, 1]
    assert nr == 19  # lseek in the ia32 table (8 natively)
    assert names == ("fd", "offset", "whence")


async def test_skip_with_a_return_value(session: Session) -> None:
    def skip(regs: Any, proto: Any, syscall: Any) -> None:
        syscall.skip_syscall = True
        syscall.retval = 4242

    await session.plugins.syscalls.register(skip, "getpid", comm_filter="send_syscall32")
    result = await session.run("send_syscall32 getpid")
    assert result.stdout == f"{RET32} 4242\n".encode()


async def test_argument_change_through_the_ia32_register(session: Session) -> None:
    def shorten(regs: Any, proto: Any, syscall: Any, fd: int, buf: int, count: int) -> None:
        assert count == 5
        regs.edx = 2  # write's third argument, the count

    await session.plugins.syscalls.register(
        shorten, "write", comm_filter="send_syscall32", arg_filters=[1, None, 5]
    )
    result = await session.run("send_syscall32 write 1 hello 5")
    assert result.stdout == f"he{RET32} 2\n".encode()


async def test_return_value_change(session: Session, calls: Any) -> None:
    def fake(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.retval, regs.eax))
        syscall.retval = 777

    await session.plugins.syscalls.register(
        fake, "on_sys_getpid_return", comm_filter="send_syscall32"
    )
    result = await session.run("send_syscall32 getpid")
    [(real, eax)] = await calls.wait(1)
    assert real > 1 and eax == real
    assert result.stdout == f"{RET32} 777\n".encode()


async def test_signed_filters_compare_32_bit_values(session: Session, calls: Any) -> None:
    # off_t is 64-bit natively, 32-bit on ia32: -1 there is 0xffffffff
    def seen(regs: Any, proto: Any, syscall: Any, fd: int, offset: int, whence: int) -> None:
        calls.add((syscall.abi, syscall.args[1], offset))

    await session.plugins.syscalls.register(seen, "lseek", arg_filters=[9, ValueFilter.exact(-1)])
    await session.run(
        "send_syscall32 lseek 9 ffffffff 0; send_syscall32 lseek 9 fffffffe 0; "
        "send_syscall lseek 9 ffffffffffffffff 0"
    )
    assert await calls.wait(2) == [("ia32", 0xFFFFFFFF, -1), ("x86_64", 2**64 - 1, -1)]


async def test_all_syscall_hook_with_comm_filter_sees_the_ia32_calls(
    session: Session, calls: Any
) -> None:
    def every(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.abi, syscall.name, syscall.nr))

    await session.plugins.syscalls.register(every, "on_all_sys_enter", comm_filter="send_syscall32")
    await session.run("send_syscall32 getppid")
    got = await calls.wait(1)
    assert {abi for abi, _, _ in got} == {"ia32"}
    # the process's whole life from the execve return on, by ia32 numbers
    assert ("ia32", "sys_getppid", 64) in got
    assert ("ia32", "sys_write", 4) in got
    assert got[-1] == ("ia32", "sys_exit_group", 252)


async def test_an_observe_only_hook_gets_the_ia32_call_with_its_string(
    session: Session, calls: Any
) -> None:
    def watch(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.abi, syscall.nr, syscall.observed, syscall.strings[1].text))

    await session.plugins.syscalls.register(watch, "openat", comm_filter="cat32", read_only=True)
    await session.run("cat32 /etc/passwd >/dev/null")
    assert (await calls.wait(1))[0] == ("ia32", OPENAT_IA32, True, "/etc/passwd")


async def test_tracer_shows_ia32_calls_by_their_names(session: Session) -> None:
    records: list[TraceRecord] = []
    tracer = Tracer(session.plugins, comm="cat32", syscalls=["openat", "read"], emit=records.append)
    await tracer.start()
    await session.run("cat32 /etc/group /no/such >/dev/null")
    await tracer.stop()
    opens = [r for r in records if r.name == "sys_openat"]
    assert [(r.abi, r.nr, r.args[:2], r.retval) for r in opens] == [
        ("ia32", OPENAT_IA32, [-100, "/etc/group"], 3),
        ("ia32", OPENAT_IA32, [-100, "/no/such"], -2),
    ]
    assert opens[1].format(pid_prefix=False) == (
        '[ia32] openat(AT_FDCWD, "/no/such", O_RDONLY) = -1 ENOENT (No such file or directory)'
    )
    assert any(r.name == "sys_read" and r.abi == "ia32" for r in records)


async def test_unknown_syscall_hooks_see_ia32_numbers_without_a_syscall(
    session: Session, calls: Any
) -> None:
    # 17 is unimplemented in the ia32 table (the shared stub; pread64 natively),
    # 1000 lies beyond it: the entry code calls the same stub for both
    table = session.plugins.syscalls.registry.prototypes
    assert table is not None and not table.for_abi(True).by_nr(17).known

    def unknown(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.abi, syscall.nr, proto.known, syscall.args[0]))
        syscall.skip_syscall = True
        syscall.retval = 99

    await session.plugins.syscalls.register(
        unknown, "on_unknown_sys_enter", comm_filter="send_syscall32"
    )
    result = await session.run(
        "send_syscall32 17 77; send_syscall32 1000 78; send_syscall32 getppid"
    )
    assert await calls.wait(2) == [("ia32", 17, False, 0x77), ("ia32", 1000, False, 0x78)]
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"{RET32} 99".encode()] * 2
    assert int(lines[2].split()[-1]) > 0  # getppid has a name: not an unknown syscall


async def test_an_interrupted_ia32_call_ends_in_eintr_from_the_handler_frame(
    session: Session, calls: Any
) -> None:
    # interrupt32: a 32-bit read on an empty pipe that a SIGALRM handler interrupts
    def note(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.abi, syscall.phase, syscall.retval, syscall.restarted))

    await session.plugins.syscalls.register(
        note, "read", on_enter=True, on_return=True, comm_filter="interrupt32"
    )
    r = await session.run("interrupt32 read")
    assert r.stdout == b"interrupt: read returned -4, signals 1\n"
    assert await calls.wait(2) == [("ia32", "enter", 0, False), ("ia32", "return", -4, False)]


async def test_a_restarted_ia32_call_says_so_and_its_rerun_is_a_new_pair(
    session: Session, calls: Any
) -> None:
    def note(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add((syscall.phase, syscall.retval, syscall.restarted))

    await session.plugins.syscalls.register(
        note, "read", on_enter=True, on_return=True, comm_filter="interrupt32"
    )
    r = await session.run("interrupt32 read-restart")
    assert r.stdout == b"interrupt: read-restart returned 1, signals 1\n"
    assert await calls.wait(4) == [
        ("enter", 0, False), ("return", -512, True), ("enter", 0, False), ("return", 1, False),
    ]  # fmt: skip


async def test_a_return_hook_replaces_an_ia32_eintr_in_the_handler_frame(
    session: Session, calls: Any
) -> None:
    def replace(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add(syscall.retval)
        syscall.retval = 7

    await session.plugins.syscalls.register(
        replace, "on_sys_read_return", comm_filter="interrupt32"
    )
    r = await session.run("interrupt32 read")
    assert r.stdout == b"interrupt: read returned 7, signals 1\n"
    assert calls.items == [-4]
