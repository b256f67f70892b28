"""Syscalls that do not return, return into new memory, or fork."""

from __future__ import annotations

import asyncio

import pytest

from syscalls_async.errors import TrapGone
from syscalls_async.machine import Machine
from syscalls_async.portal import HookSpec, Phase, Portal, Trap
from syscalls_async.syscalls import syscall_nr

pytestmark = pytest.mark.guest


async def test_getpid_without_arguments_is_trapped(
    machine: Machine, portal: Portal, make_recorder: type
) -> None:
    rec = make_recorder()
    portal.handler = rec
    await portal.set_hooks(
        [
            HookSpec(
                id=3,
                nr=syscall_nr(portal.syscalls, "getpid"),
                enter=True,
                ret=True,
                comm="send_syscall",
            )
        ]
    )
    r = await machine.run("send_syscall getpid")
    pid = int(r.stdout.split()[-1])
    phases = [(t.event.phase, t.event.nr, t.event.tgid) for t in rec.traps]
    nr = syscall_nr(portal.syscalls, "getpid")
    assert phases == [(Phase.ENTER, nr, pid), (Phase.RETURN, nr, pid)]
    assert rec.traps[1].event.retval == pid


async def test_exit_execve_and_fork_hooked_at_enter_and_return(
    machine: Machine, portal: Portal, make_recorder: type
) -> None:
    execs: list[tuple[Phase, int, str]] = []

    async def look(trap: Trap) -> None:
        if (
            trap.event.nr == syscall_nr(portal.syscalls, "execve")
            and trap.event.comm == "send_syscall"
        ):
            execs.append((trap.event.phase, trap.event.retval, (await trap.proc_info()).exe))

    rec = make_recorder(look)
    portal.handler = rec
    names = ["exit_group", "exit", "execve", "clone", "clone3", "fork", "vfork", "wait4"]
    await portal.set_hooks(
        [
            HookSpec(id=i, nr=syscall_nr(portal.syscalls, n), enter=True, ret=True)
            for i, n in enumerate(names)
        ]
    )
    for _ in range(3):
        r = await machine.run("(send_syscall getpid); send_syscall getppid & wait; echo done")
        assert r.stdout.endswith(b"done\n")
    await portal.set_hooks([])
    seen = {(portal.syscalls[t.event.nr].name, t.event.phase) for t in rec.traps}
    assert ("sys_exit_group", Phase.ENTER) in seen
    assert ("sys_exit_group", Phase.RETURN) not in seen
    assert ("sys_execve", Phase.RETURN) in seen
    assert ("sys_wait4", Phase.RETURN) in seen
    assert {("sys_clone", Phase.RETURN), ("sys_fork", Phase.RETURN)} & seen
    # execve returns into the new program: its return trap sees the new exe
    assert (Phase.RETURN, 0, "/bin/send_syscall") in execs
    assert portal.busy_slots() == 0
    r = await machine.run("dmesg")
    assert b"Call Trace" not in r.stdout and b"BUG" not in r.stdout


async def test_fatal_signal_ends_the_wait(machine: Machine, portal: Portal) -> None:
    trapped: asyncio.Queue[Trap] = asyncio.Queue()
    release = asyncio.Event()

    async def hold(trap: Trap) -> None:
        await trapped.put(trap)
        await release.wait()

    portal.handler = hold
    await portal.set_hooks(
        [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm="send_syscall")]
    )
    before = portal.guest_counters()
    run = asyncio.create_task(machine.run("send_syscall getppid; echo status=$?"))
    async with asyncio.timeout(30):
        trap = await trapped.get()
    await machine.run(f"kill -9 {trap.event.tgid}")
    r = await run
    assert r.stdout == b"status=137\n"  # killed while waiting for the host
    assert portal.guest_counters().fatal_signal == before.fatal_signal + 1
    with pytest.raises(TrapGone):
        await trap.read_bytes(trap.event.sp, 8)
    release.set()


async def test_a_restarted_sleep_says_so_and_pairs_every_enter(
    machine: Machine, portal: Portal
) -> None:
    rets: list[tuple[str, int]] = []
    restarted: list[tuple[str, int]] = []
    enters: list[str] = []
    sleeping = asyncio.Event()

    async def note(trap: Trap) -> None:
        name = portal.syscalls[trap.event.nr].name
        if trap.event.phase is Phase.RETURN:
            (restarted if trap.event.restarted else rets).append((name, trap.event.retval))
        else:
            enters.append(name)
            if name != "sys_restart_syscall":
                sleeping.set()

    portal.handler = note
    names = ["nanosleep", "clock_nanosleep", "restart_syscall"]
    await portal.set_hooks(
        [
            HookSpec(id=i, nr=syscall_nr(portal.syscalls, n), enter=True, ret=True, comm="sleep")
            for i, n in enumerate(names)
        ]
    )
    before = portal.guest_counters()
    run = asyncio.create_task(machine.run("sleep 2 & echo $! > /tmp/sa_sleep; wait; echo rc=$?"))
    async with asyncio.timeout(30):
        await sleeping.wait()
    await machine.run("kill -STOP $(cat /tmp/sa_sleep); kill -CONT $(cat /tmp/sa_sleep)")
    r = await run
    assert r.stdout == b"rc=0\n"
    # a restart code only ever shows as a restarted return, never as a result
    assert all(not -516 <= ret <= -512 for _, ret in rets), rets
    assert restarted and all(-516 <= ret <= -512 for _, ret in restarted), restarted
    # every enter got exactly one return: a result or "restarted"
    assert len(enters) == len(rets) + len(restarted), (enters, rets, restarted)
    after = portal.guest_counters()
    assert after.signal_returns >= before.signal_returns + len(restarted)
    assert after.restart_lost == before.restart_lost
    assert ("sys_restart_syscall", 0) in rets or any(ret == 0 for _, ret in rets)


async def test_a_task_killed_in_an_interrupted_call_gets_no_return_and_is_counted(
    machine: Machine, portal: Portal
) -> None:
    phases: list[Phase] = []
    entered = asyncio.Event()

    async def note(trap: Trap) -> None:
        phases.append(trap.event.phase)
        entered.set()

    portal.handler = note
    names = ["nanosleep", "clock_nanosleep"]
    await portal.set_hooks(
        [
            HookSpec(id=i, nr=syscall_nr(portal.syscalls, n), enter=True, ret=True, comm="sleep")
            for i, n in enumerate(names)
        ]
    )
    before = portal.guest_counters()
    pid = int((await machine.run("sleep 30 >/dev/null 2>&1 & echo $!")).stdout)
    async with asyncio.timeout(30):
        await entered.wait()
    # SIGKILL: the sleep comes back with a restart code, and the task dies
    # before the signal's delivery could decide anything
    await machine.run(f"kill -9 {pid}")
    async with asyncio.timeout(30):
        while portal.guest_counters().restart_lost == before.restart_lost:
            await asyncio.sleep(0.05)
    after = portal.guest_counters()
    assert after.restart_lost == before.restart_lost + 1
    assert after.signal_returns == before.signal_returns
    assert phases == [Phase.ENTER]
