"""Hooks on the real guest: registration forms, verdicts, order, control."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from syscalls_async import HandlerError, RegistrationError, Session
from syscalls_async.api import Plugins
from syscalls_async.machine import Image, Machine

RET = "send_syscall: syscall returned"


async def test_hook_declared_before_the_session_is_live_for_the_first_command(
    machine: Machine, plugins: Plugins
) -> None:
    @plugins.syscalls.syscall(
        "on_sys_ioctl_enter", comm_filter="send_syscall", arg_filters=[None, 0xABCD]
    )
    def skip(regs: Any, proto: Any, syscall: Any, fd: int, op: int, arg: int) -> None:
        assert (fd, op) == (9, 0xABCD)
        syscall.skip_syscall = True
        syscall.retval = 43

    async with Session(plugins, machine=machine) as session:
        result = await session.run("send_syscall ioctl 9 0xabcd")
        assert (result.stdout, result.exit_status) == (f"{RET} 43\n".encode(), 43)
        await plugins.syscalls.unregister(skip)
        result = await session.run("send_syscall ioctl 9 0xabcd")
        assert result.stdout == f"{RET} -9\n".encode()


async def test_name_forms_name_the_same_syscall(session: Session, calls: Any) -> None:
    for form in ("sys_getpid", "getpid", "_sys_getpid", "on_sys_getpid_enter"):

        def handler(regs: Any, proto: Any, syscall: Any, form: str = form) -> None:
            calls.add((form, syscall.name, proto.name))

        await session.plugins.syscalls.register(handler, form, comm_filter="send_syscall")
    await session.run("send_syscall getpid")
    got = await calls.wait(4)
    assert [g[0] for g in got] == ["sys_getpid", "getpid", "_sys_getpid", "on_sys_getpid_enter"]
    assert {g[1:] for g in got} == {("sys_getpid", "sys_getpid")}


async def test_return_hook_changes_what_the_program_sees(session: Session, calls: Any) -> None:
    async def fake_pid(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add(syscall.retval)
        syscall.retval = 4242

    await session.plugins.syscalls.register(
        fake_pid, "on_sys_getpid_return", comm_filter="send_syscall"
    )
    result = await session.run("send_syscall getpid")
    [real] = await calls.wait(1)
    assert real > 1
    assert result.stdout == f"{RET} 4242\n".encode()


async def test_enter_hook_changes_an_argument(session: Session) -> None:
    async def to_stdout(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int, arg: int) -> None:
        syscall.args[0] = 1  # fd 9 (closed) becomes stdout, a pipe: ENOTTY instead of EBADF

    await session.plugins.syscalls.register(
        to_stdout, "ioctl", comm_filter="send_syscall", arg_filters=[9]
    )
    result = await session.run("send_syscall ioctl 9 0x5401")
    assert result.stdout == f"{RET} -25\n".encode()


async def test_return_hooks_run_after_a_skip_and_see_its_value(
    session: Session, calls: Any
) -> None:
    def skip(regs: Any, proto: Any, syscall: Any, fd: int, offset: int, whence: int) -> None:
        syscall.skip_syscall = True
        syscall.retval = 777

    def after(regs: Any, proto: Any, syscall: Any, fd: int, offset: int, whence: int) -> None:
        calls.add(syscall.retval)

    await session.plugins.syscalls.register(skip, "lseek", comm_filter="send_syscall")
    await session.plugins.syscalls.register(
        after, "lseek", on_return=True, comm_filter="send_syscall"
    )
    result = await session.run("send_syscall lseek 9 0 0")
    assert await calls.wait(1) == [777]
    assert result.stdout == f"{RET} 777\n".encode()


async def test_handlers_run_in_order_and_see_each_others_changes(
    session: Session, calls: Any
) -> None:
    def first(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int, arg: int) -> None:
        calls.add(("first", cmd))
        syscall.args[1] = 0x1234

    async def second(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int, arg: int) -> None:
        calls.add(("second", cmd, syscall.args[1], regs.rsi))
        syscall.skip_syscall = True
        syscall.retval = 5

    def third(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int, arg: int) -> None:
        calls.add(("third", syscall.skip_syscall, syscall.retval))
        syscall.retval += 1

    for h in (first, second, third):
        await session.plugins.syscalls.register(h, "ioctl", comm_filter="send_syscall")
    result = await session.run("send_syscall ioctl 9 0xabcd")
    assert await calls.wait(3) == [
        ("first", 0xABCD),
        ("second", 0x1234, 0x1234, 0x1234),
        ("third", True, 5),
    ]
    assert result.stdout == f"{RET} 6\n".encode()


async def test_getpid_hook_fires_and_regs_are_readable(session: Session, calls: Any) -> None:
    def h(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add(
            (
                regs.orig_rax,
                regs.pc == syscall.pc,
                regs.sp == syscall.sp,
                syscall.argc,
                syscall.task.comm,
                syscall.pid == syscall.task.tgid,
                proto.nargs,
            )
        )

    await session.plugins.syscalls.register(h, "getpid", comm_filter="send_syscall")
    await session.run("send_syscall getpid")
    [(nr, pc_ok, sp_ok, argc, comm, pid_ok, nargs)] = await calls.wait(1)
    assert (nr, pc_ok, sp_ok, argc, comm, pid_ok, nargs) == (
        39,
        True,
        True,
        0,
        "send_syscall",
        True,
        0,
    )


async def test_disable_then_enable_proven_by_counts(session: Session, calls: Any) -> None:
    def count(regs: Any, proto: Any, syscall: Any) -> None:
        calls.add(syscall.nr)

    api = session.plugins.syscalls
    await api.register(count, "getppid", comm_filter="send_syscall")
    await session.run("send_syscall getppid; send_syscall getppid")
    assert len(calls) == 2
    await api.disable_syscall("count")
    await session.run("send_syscall getppid; send_syscall getppid")
    assert len(calls) == 2
    await api.enable_syscall(count)
    await session.run("send_syscall getppid")
    assert len(calls) == 3


async def test_a_failing_handler_is_logged_counted_and_the_guest_goes_on(
    session: Session, calls: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int, arg: int) -> None:
        syscall.skip_syscall = True
        syscall.retval = 11
        raise RuntimeError("handler bug")

    def later(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int, arg: int) -> None:
        calls.add(syscall.retval)

    await session.plugins.syscalls.register(broken, "ioctl", comm_filter="send_syscall")
    await session.plugins.syscalls.register(later, "ioctl", comm_filter="send_syscall")
    with caplog.at_level(logging.ERROR, logger="syscalls"):
        result = await session.run("send_syscall ioctl 9 0xabcd")
    assert result.stdout == f"{RET} 11\n".encode()  # the verdict so far was applied
    assert await calls.wait(1) == [11]
    assert session.stats.handler_errors == 1
    [record] = [r for r in caplog.records if "broken" in r.getMessage()]
    assert "sys_ioctl enter by send_syscall" in record.getMessage()
    assert record.exc_info and "handler bug" in str(record.exc_info[1])
    assert (await session.run("echo still here")).stdout == b"still here\n"


async def test_a_slow_handler_is_cancelled_at_its_deadline(
    machine: Machine, plugins: Plugins
) -> None:
    import asyncio

    async def slow(regs: Any, proto: Any, syscall: Any) -> None:
        syscall.skip_syscall = True
        syscall.retval = 3
        await asyncio.sleep(3600)

    async with Session(plugins, machine=machine, handler_timeout=0.5) as session:
        await plugins.syscalls.register(slow, "getppid", comm_filter="send_syscall")
        result = await session.run("send_syscall getppid")
        assert result.stdout == f"{RET} 3\n".encode()
        assert session.stats.handler_timeouts == 1


async def test_fail_fast_ends_the_session_with_the_handler_error(
    machine: Machine, plugins: Plugins
) -> None:
    def broken(regs: Any, proto: Any, syscall: Any) -> None:
        raise ValueError("first failure")

    with pytest.raises(HandlerError) as info:
        async with Session(plugins, machine=machine, fail_fast=True) as session:
            await plugins.syscalls.register(broken, "getppid", comm_filter="send_syscall")
            await session.run("send_syscall getppid")
    assert isinstance(info.value.__cause__, ValueError)
    assert (await machine.run("echo guest fine")).stdout == b"guest fine\n"


async def test_registration_errors_are_raised_at_registration(session: Session) -> None:
    api = session.plugins.syscalls
    with pytest.raises(RegistrationError, match="did you mean openat"):
        api.syscall("opnat")(lambda r, p, s: None)
    with pytest.raises(RegistrationError, match="ioctl has 3 arguments"):
        api.syscall("ioctl", arg_filters=[None, None, None, 1])(lambda r, p, s, *a: None)
    with pytest.raises(RegistrationError, match="15 bytes"):
        api.syscall("ioctl", comm_filter="a_very_long_command_name")(lambda r, p, s, *a: None)
    with pytest.raises(RegistrationError, match="callable"):
        api.syscall("ioctl")(42)  # type: ignore[arg-type]
    with pytest.raises(RegistrationError, match="ValueFilter"):
        api.syscall("ioctl", arg_filters=["9"])(lambda r, p, s, *a: None)
    assert list(api.registry) == []


async def test_prototypes_come_from_the_guest_kernel(session: Session) -> None:
    api = session.plugins.syscalls
    proto = api.get_syscall_info_by_name("sys_openat")
    assert proto is not None
    assert (proto.name, proto.nargs, proto.names) == (
        "sys_openat",
        4,
        ("dfd", "filename", "flags", "mode"),
    )
    assert proto.types[1] == "const char *"
    assert api.get_syscall_info_by_name("_sys_openat") == proto
    assert api.get_syscall_info_by_name("no_such_syscall") is None


async def test_a_decorator_is_checked_at_once_against_the_cached_prototypes(
    cached_image: Image, session: Session
) -> None:
    """A session that booted its own guest cached its prototypes for the image; a fresh
    plugins object (as in a new process, before any session) validates against that cache."""
    fresh = Plugins()
    with pytest.raises(RegistrationError, match="did you mean openat"):
        fresh.syscalls.syscall("opnat")(lambda r, p, s: None)
    proto = fresh.syscalls.get_syscall_info_by_name("openat")
    assert proto is not None and proto.nargs == 4
