"""Guest-side prefilters: every value and string kind, comm, pid, enabled,
all-syscall and unknown-syscall hooks.  ``getppid`` ignores its arguments,
so ``send_syscall getppid X`` puts any X in the first argument register."""

from __future__ import annotations

import asyncio

import pytest

from syscalls_async.machine import Machine
from syscalls_async.portal import (
    NR_ALL,
    NR_UNKNOWN,
    FilterKind,
    GuestFilter,
    HookSpec,
    Phase,
    Portal,
    Trap,
)
from syscalls_async.syscalls import syscall_nr

pytestmark = pytest.mark.guest

K = FilterKind
NEG1 = "ffffffffffffffff"

VALUE_CASES = [
    (GuestFilter(K.EXACT, 5), ["5", "6"], ["5"]),
    (GuestFilter(K.NOT_EQUAL, 5), ["5", "6"], ["6"]),
    (GuestFilter(K.GREATER, 5), ["5", "6", NEG1], ["6", NEG1]),
    (GuestFilter(K.GREATER, 5, signed=True), ["5", "6", NEG1], ["6"]),
    (GuestFilter(K.GREATER_EQUAL, 5), ["4", "5", "6"], ["5", "6"]),
    (GuestFilter(K.LESS, 5, signed=True), ["4", "5", NEG1], ["4", NEG1]),
    (GuestFilter(K.LESS_EQUAL, 5), ["4", "5", "6"], ["4", "5"]),
    (GuestFilter(K.RANGE, 0x10, 0x20), ["f", "10", "20", "21"], ["10", "20"]),
    (
        GuestFilter(K.RANGE, -2, 2, signed=True),
        ["fffffffffffffffe", "2", "3"],
        ["fffffffffffffffe", "2"],
    ),
    (GuestFilter(K.SUCCESS, signed=True), ["0", NEG1], ["0"]),
    (GuestFilter(K.ERROR, signed=True), ["0", NEG1], [NEG1]),
    (GuestFilter(K.BITMASK_SET, 5), ["5", "7", "4"], ["5", "7"]),
    (GuestFilter(K.BITMASK_CLEAR, 5), ["2", "4", "8"], ["2", "8"]),
    # an int argument: 32-bit signed, whatever the upper register half holds
    (
        GuestFilter(K.EXACT, -1, width=32, signed=True),
        ["ffffffff", "abcdffffffff", "fffffffe"],
        ["ffffffff", "abcdffffffff"],
    ),
    (GuestFilter(K.LESS, 0, width=32, signed=True), ["80000000", "17fffffff", "1"], ["80000000"]),
]

STRING_CASES = [
    (GuestFilter(K.STR_EXACT, text=b"/tmp/foo.txt"), ["/tmp/foo.txt"]),
    (GuestFilter(K.STR_CONTAINS, text=b"foo"), ["/tmp/foo.txt", "/etc/foo.conf"]),
    (GuestFilter(K.STR_STARTSWITH, text=b"/tmp/"), ["/tmp/foo.txt", "/tmp/bar.txt"]),
    (GuestFilter(K.STR_ENDSWITH, text=b".txt"), ["/tmp/foo.txt", "/tmp/bar.txt"]),
]
STRINGS = ["/tmp/foo.txt", "/etc/foo.conf", "/tmp/bar.txt", "zzz"]


async def _trapped_args(
    machine: Machine, portal: Portal, f: GuestFilter, values: list[str]
) -> list[int]:
    got: list[int] = []

    async def note(trap: Trap) -> None:
        got.append(trap.event.args[0])

    portal.handler = note
    await portal.set_hooks(
        [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm="send_syscall", args=(f,))]
    )
    await machine.run("; ".join(f"send_syscall getppid {v}" for v in values))
    return got


@pytest.mark.parametrize(("f", "values", "expected"), VALUE_CASES)
async def test_value_filters(
    machine: Machine, portal: Portal, f: GuestFilter, values: list[str], expected: list[str]
) -> None:
    got = await _trapped_args(machine, portal, f, values)
    assert got == [int(v, 16) for v in expected]


@pytest.mark.parametrize(("f", "expected"), STRING_CASES)
async def test_string_filters(
    machine: Machine, portal: Portal, f: GuestFilter, expected: list[str]
) -> None:
    strings: list[str] = []

    async def note(trap: Trap) -> None:
        strings.append(await trap.read_str(trap.event.args[0]))

    portal.handler = note
    await portal.set_hooks(
        [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm="send_syscall", args=(f,))]
    )
    await machine.run("; ".join(f"send_syscall getppid {v}" for v in STRINGS))
    assert strings == expected


async def test_return_value_filter(machine: Machine, portal: Portal) -> None:
    got: list[tuple[int, tuple[int, ...]]] = []

    async def note(trap: Trap) -> None:
        got.append((trap.event.retval, trap.hook_ids))

    portal.handler = note
    nr = syscall_nr(portal.syscalls, "ioctl")
    await portal.set_hooks(
        [
            HookSpec(
                id=10,
                nr=nr,
                enter=False,
                ret=True,
                comm="send_syscall",
                retval=GuestFilter(K.ERROR, signed=True),
            ),
            HookSpec(
                id=11,
                nr=nr,
                enter=False,
                ret=True,
                comm="send_syscall",
                retval=GuestFilter(K.EXACT, -25, signed=True),
            ),
        ]
    )
    await machine.run("send_syscall ioctl 9 0; send_syscall ioctl 1 5401")
    # ioctl on a bad fd: -EBADF; TCGETS on a pipe: -ENOTTY (-25)
    assert got == [(-9, (10,)), (-25, (10, 11))]


async def test_comm_pid_and_enabled(machine: Machine, portal: Portal) -> None:
    got: list[tuple[int, ...]] = []

    async def note(trap: Trap) -> None:
        got.append(trap.hook_ids)

    portal.handler = note
    await machine.run("rm -f /tmp/sa_pid /tmp/sa_go; mkfifo /tmp/sa_go")
    task = asyncio.create_task(
        machine.run(
            "sh -c 'echo $$ > /tmp/sa_pid; read x < /tmp/sa_go; exec send_syscall getppid 77'"
        )
    )
    async with asyncio.timeout(30):
        while not (pid := (await machine.run("cat /tmp/sa_pid 2>/dev/null")).stdout.strip()):
            pass
    nr = syscall_nr(portal.syscalls, "getppid")
    await portal.set_hooks(
        [
            HookSpec(id=1, nr=nr, pid=int(pid)),
            HookSpec(id=2, nr=nr, pid=int(pid) + 1000),
            HookSpec(id=3, nr=nr, comm="send_syscall"),
            HookSpec(id=4, nr=nr, comm="send_syscal"),
            HookSpec(id=5, nr=nr, comm="send_syscall", enabled=False),
        ]
    )
    await machine.run("echo go > /tmp/sa_go")
    r = await task
    assert b"syscall returned" in r.stdout
    assert got == [(1, 3)]


async def test_all_syscalls_hook(machine: Machine, portal: Portal) -> None:
    names: list[tuple[str, Phase]] = []

    async def note(trap: Trap) -> None:
        names.append((portal.syscalls[trap.event.nr].name, trap.event.phase))

    portal.handler = note
    await portal.set_hooks([HookSpec(id=1, nr=NR_ALL, enter=True, ret=True, comm="send_syscall")])
    assert portal.hooked_entries() > 300
    r = await machine.run("send_syscall getppid")
    assert b"syscall returned" in r.stdout
    await portal.set_hooks([])
    assert portal.hooked_entries() == 0
    assert ("sys_getppid", Phase.ENTER) in names and ("sys_getppid", Phase.RETURN) in names
    assert ("sys_exit_group", Phase.ENTER) in names
    assert ("sys_write", Phase.RETURN) in names


# An entry of the shared stub of unimplemented syscalls (nfsservctl): no
# metadata, not traceable by ftrace, caught by the module another way.
NI = 180


async def test_unknown_syscalls_hook(machine: Machine, portal: Portal) -> None:
    # every entry without metadata: the ni stub's and any other (all skipped)
    unknown = [m.nr for m in portal.syscalls if not m.known]
    assert NI in unknown
    seen: list[tuple[int, Phase]] = []

    async def skip(trap: Trap) -> None:
        seen.append((trap.event.nr, trap.event.phase))
        if trap.event.phase is Phase.ENTER:
            trap.skip(7)

    portal.handler = skip
    await portal.set_hooks(
        [HookSpec(id=1, nr=NR_UNKNOWN, enter=True, ret=True, comm="send_syscall")]
    )
    r = await machine.run(
        "; ".join(f"send_syscall {nr}" for nr in unknown) + "; send_syscall getppid"
    )
    lines = r.stdout.splitlines()
    assert lines[:-1] == [b"send_syscall: syscall returned 7"] * len(unknown)
    assert int(lines[-1].split()[-1]) > 0
    assert seen == [(nr, p) for nr in unknown for p in (Phase.ENTER, Phase.RETURN)]
    await portal.set_hooks([])
    assert portal.hooked_entries() == 0
    r = await machine.run(f"send_syscall {NI}")
    assert r.stdout == b"send_syscall: syscall returned -38\n"  # ENOSYS


async def test_a_hook_on_one_unimplemented_syscall(machine: Machine, portal: Portal) -> None:
    seen: list[tuple[int, int, Phase]] = []

    async def note(trap: Trap) -> None:
        seen.append((trap.event.nr, trap.event.args[0], trap.event.phase))
        if trap.event.phase is Phase.RETURN:
            assert trap.event.retval == -38
            trap.set_retval(trap.event.args[0] + 1)

    portal.handler = note
    await portal.set_hooks([HookSpec(id=1, nr=NI, enter=True, ret=True, comm="send_syscall")])
    assert portal.hooked_entries() == 1  # the stub, shared by every unimplemented nr
    # another nr of the same stub is let through untouched
    r = await machine.run(f"send_syscall {NI} 0x41; send_syscall 181 0x41")
    assert r.stdout.splitlines() == [
        b"send_syscall: syscall returned 66",  # 0x42
        b"send_syscall: syscall returned -38",
    ]
    assert seen == [(NI, 0x41, Phase.ENTER), (NI, 0x41, Phase.RETURN)]
    await portal.set_hooks([])
    assert portal.hooked_entries() == 0


async def test_metadata_marks_unhookable_entries(machine: Machine, portal: Portal) -> None:
    unhookable = [m for m in portal.syscalls if not m.hookable]
    r = await machine.run("dmesg")
    if unhookable:
        assert f"{len(unhookable)} syscall entries cannot be hooked".encode() in r.stdout
    assert all(not m.known for m in unhookable)
    assert portal.syscalls[syscall_nr(portal.syscalls, "getppid")].hookable
    # entries of the ni stub are hookable: on this kernel nothing is left out
    assert portal.syscalls[NI].hookable and not portal.syscalls[NI].known
    assert b"unimplemented syscall entries caught at their shared stub" in r.stdout
    assert unhookable == []


# The guest's gate (kernel/hooks.c, sa_gate_rejects): when every hook filters
# on pid or comm, calls of other tasks are let through before the wrapper.
# These show it never rejects a call some hook of the table matches.


async def test_a_return_hook_sees_the_comm_the_call_gave_the_task(
    machine: Machine, portal: Portal
) -> None:
    # execve changes comm from "sh" to "send_syscall" between its entry and
    # its return: a gate that judged the return phase by the comm at entry
    # would let this call through unhooked
    seen: list[tuple[Phase, int]] = []

    async def note(trap: Trap) -> None:
        seen.append((trap.event.phase, trap.event.pid))

    portal.handler = note
    nr = syscall_nr(portal.syscalls, "execve")
    await portal.set_hooks([HookSpec(id=1, nr=nr, enter=False, ret=True, comm="send_syscall")])
    r = await machine.run("exec send_syscall getppid")
    assert b"syscall returned" in r.stdout
    assert [phase for phase, _ in seen] == [Phase.RETURN]


async def test_a_hook_without_task_filters_is_never_gated(machine: Machine, portal: Portal) -> None:
    got: list[tuple[int, ...]] = []

    async def note(trap: Trap) -> None:
        got.append(trap.hook_ids)

    portal.handler = note
    nr = syscall_nr(portal.syscalls, "getppid")
    await portal.set_hooks(
        [
            HookSpec(id=1, nr=nr, comm="nobody"),
            HookSpec(id=2, nr=nr, args=(GuestFilter(K.EXACT, 0x88),)),
        ]
    )
    r = await machine.run("send_syscall getppid 88")  # hex
    assert b"syscall returned" in r.stdout
    assert got == [(2,)]


async def test_more_task_filtered_hooks_than_the_gate_holds(
    machine: Machine, portal: Portal
) -> None:
    # the gate remembers at most 8 hooks; with more it is off, and the last
    # hook (the one that matches) still traps
    got: list[tuple[int, ...]] = []

    async def note(trap: Trap) -> None:
        got.append(trap.hook_ids)

    portal.handler = note
    nr = syscall_nr(portal.syscalls, "getppid")
    others = [HookSpec(id=i, nr=nr, comm=f"other{i}") for i in range(1, 9)]
    await portal.set_hooks([*others, HookSpec(id=9, nr=nr, comm="send_syscall")])
    r = await machine.run("send_syscall getppid")
    assert b"syscall returned" in r.stdout
    assert got == [(9,)]
