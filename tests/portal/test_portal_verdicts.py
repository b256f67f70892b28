"""Verdicts: skip with a return value, change an argument, change a return value."""

from __future__ import annotations

import pytest

from syscalls_async.machine import Machine
from syscalls_async.portal import FilterKind, GuestFilter, HookSpec, Phase, Portal, Trap
from syscalls_async.syscalls import syscall_nr

pytestmark = pytest.mark.guest


async def test_skip_ioctl_returns_43_then_minus_9_when_removed(
    machine: Machine, portal: Portal, make_recorder: type
) -> None:
    async def skip(trap: Trap) -> None:
        assert trap.event.args[:2] == (9, 0xABCD)
        trap.skip(43)

    rec = make_recorder(skip)
    portal.handler = rec
    cmd = GuestFilter(FilterKind.EXACT, 0xABCD, width=32)
    await portal.set_hooks(
        [
            HookSpec(
                id=1, nr=syscall_nr(portal.syscalls, "ioctl"), comm="send_syscall", args=(None, cmd)
            )
        ]
    )
    assert portal.hooked_entries() == 1  # only what some hook needs
    r = await machine.run("send_syscall ioctl 9 0xabcd")
    assert r.stdout == b"send_syscall: syscall returned 43\n"
    assert len(rec.traps) == 1 and rec.traps[0].hook_ids == (1,)

    await portal.set_hooks([])
    r = await machine.run("send_syscall ioctl 9 0xabcd")
    assert r.stdout == b"send_syscall: syscall returned -9\n"
    assert len(rec.traps) == 1


async def test_guest_side_filter_keeps_other_calls_away(
    machine: Machine, portal: Portal, make_recorder: type
) -> None:
    rec = make_recorder()
    portal.handler = rec
    # int argument compared as 32-bit even with garbage in the upper half
    cmd = GuestFilter(FilterKind.EXACT, 0xABCD, width=32)
    await portal.set_hooks(
        [
            HookSpec(
                id=1, nr=syscall_nr(portal.syscalls, "ioctl"), comm="send_syscall", args=(None, cmd)
            )
        ]
    )
    r = await machine.run("send_syscall ioctl 9 0xabce; send_syscall ioctl 9 0x10000abcd")
    assert r.stdout.count(b"returned -9") == 2
    assert len(rec.traps) == 1
    assert rec.traps[0].event.args[1] == 0x10000ABCD


async def test_return_hook_changes_the_return_value(
    machine: Machine, portal: Portal, make_recorder: type
) -> None:
    async def change(trap: Trap) -> None:
        assert trap.event.phase is Phase.RETURN
        assert trap.event.retval == trap.event.tgid
        trap.set_retval(1234567)

    rec = make_recorder(change)
    portal.handler = rec
    await portal.set_hooks(
        [
            HookSpec(
                id=5,
                nr=syscall_nr(portal.syscalls, "getpid"),
                enter=False,
                ret=True,
                comm="send_syscall",
            )
        ]
    )
    r = await machine.run("send_syscall getpid")
    assert r.stdout == b"send_syscall: syscall returned 1234567\n"
    assert [t.hook_ids for t in rec.traps] == [(5,)]


async def test_enter_hook_changes_the_path_argument_of_openat(
    machine: Machine, portal: Portal, make_recorder: type
) -> None:
    # arg 3 (mode) is a pointer to the other path: the handler points arg 1 at it
    async def redirect(trap: Trap) -> None:
        assert await trap.read_str(trap.event.args[1]) == "/tmp/sa_missing"
        trap.set_arg(1, trap.event.args[3])

    rec = make_recorder(redirect)
    portal.handler = rec
    await machine.run("echo there > /tmp/sa_present")
    path = GuestFilter(FilterKind.STR_ENDSWITH, text=b"sa_missing")
    await portal.set_hooks(
        [
            HookSpec(
                id=1,
                nr=syscall_nr(portal.syscalls, "openat"),
                comm="send_syscall",
                args=(None, path),
            )
        ]
    )
    r = await machine.run("send_syscall openat ffffff9c /tmp/sa_missing 0 /tmp/sa_present")
    assert r.stdout == b"send_syscall: syscall returned 3\n"
    await portal.set_hooks([])
    r = await machine.run("send_syscall openat ffffff9c /tmp/sa_missing 0 /tmp/sa_present")
    assert r.stdout == b"send_syscall: syscall returned -2\n"
    assert len(rec.traps) == 1


async def test_restart_codes_never_reach_the_task(
    machine: Machine, portal: Portal, make_recorder: type
) -> None:
    async def bad(trap: Trap) -> None:
        trap.skip(-512)  # -ERESTARTSYS

    portal.handler = make_recorder(bad)
    await portal.set_hooks(
        [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm="send_syscall")]
    )
    r = await machine.run("send_syscall getppid")
    assert r.stdout == b"send_syscall: syscall returned -4\n"  # -EINTR
