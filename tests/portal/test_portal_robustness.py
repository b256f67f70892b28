"""The guest survives its host dying, and the module unloading under a shell."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from syscalls_async.errors import PortalError
from syscalls_async.machine import Machine
from syscalls_async.portal import NR_UNKNOWN, FilterKind, GuestFilter, HookSpec, Portal, Trap
from syscalls_async.syscalls import syscall_nr

pytestmark = pytest.mark.guest

DEADLINE_MS = 1000
MODULE = "/lib/modules/syscalls_async.ko"
NAME = "syscalls_async"
BAD = (b"Call Trace", b"BUG:", b"Oops", b"WARNING:", b"general protection")


async def _dmesg_lines(machine: Machine) -> list[bytes]:
    return (await machine.run("dmesg")).stdout.splitlines()


async def _skip_ioctl_works(machine: Machine, portal: Portal) -> None:
    async def skip(trap: Trap) -> None:
        trap.skip(43)

    portal.handler = skip
    cmd = GuestFilter(FilterKind.EXACT, 0xABCD, width=32)
    await portal.set_hooks(
        [
            HookSpec(
                id=1, nr=syscall_nr(portal.syscalls, "ioctl"), comm="send_syscall", args=(None, cmd)
            )
        ]
    )
    r = await machine.run("send_syscall ioctl 9 0xabcd")
    assert r.stdout == b"send_syscall: syscall returned 43\n"
    await portal.set_hooks([])


async def test_guest_tasks_continue_after_the_host_is_killed(machine: Machine) -> None:
    script = Path(__file__).with_name("hanging_host.py")
    host = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(machine.shm_path),
        str(DEADLINE_MS),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert host.stdout is not None
        async with asyncio.timeout(60):
            assert (await host.stdout.readline()).startswith(b"ready")
        run = asyncio.create_task(
            machine.run("send_syscall getppid; send_syscall getppid", timeout=60)
        )
        async with asyncio.timeout(60):
            assert (await host.stdout.readline()).startswith(b"trapped")
        host.kill()
        await host.wait()
        killed = time.monotonic()
        r = await run
    finally:
        if host.returncode is None:
            host.kill()
            await host.wait()
    # both calls ran unhooked with their real result once the deadline passed
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and all(int(x.split()[-1]) > 0 for x in lines)
    assert time.monotonic() - killed < 30
    async with Portal(machine.shm_path) as portal:
        counters = portal.guest_counters()
        assert counters.deadline_expired >= 1
        assert portal.busy_slots() == 0
        await _skip_ioctl_works(machine, portal)


async def test_load_hook_unhook_unload_with_a_shell_in_wait4(machine: Machine) -> None:
    before = len(await _dmesg_lines(machine))
    waits: list[Trap] = []
    in_wait = asyncio.Event()

    async def note(trap: Trap) -> None:
        if trap.event.comm == "sh":
            waits.append(trap)
            in_wait.set()

    async with Portal(machine.shm_path, note) as portal:
        await portal.set_hooks(
            [
                HookSpec(
                    id=1, nr=syscall_nr(portal.syscalls, "wait4"), enter=True, ret=True, comm="sh"
                )
            ]
        )
        shell = asyncio.create_task(machine.run("sleep 4; echo slept", timeout=60))
        async with asyncio.timeout(30):
            await in_wait.wait()
        await portal.set_hooks([])
        # the shell sleeps inside the hooked wait4: unloading must wait for it
        early = await machine.run(f"rmmod {NAME}; echo rc=$?")
        assert early.stdout == b"rc=1\n", "rmmod must refuse while a task is inside"
    assert (await shell).stdout == b"slept\n"
    async with asyncio.timeout(60):
        # the guest has nothing to wait on: retry until the shell left wait4
        while (await machine.run(f"rmmod {NAME}")).exit_status != 0:
            await asyncio.sleep(0.2)
    r = await machine.run(f"insmod {MODULE}")
    assert r.exit_status == 0, r.stderr

    # hooks in force while unloading: the portal notices, the guest is fine
    async with Portal(machine.shm_path) as portal:
        await portal.set_hooks(
            [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm="send_syscall")]
        )
        r = await machine.run(f"rmmod {NAME}; send_syscall getppid")
        assert b"syscall returned" in r.stdout
        async with asyncio.timeout(10):
            await portal.wait_failure()
        with pytest.raises(PortalError):
            await portal.set_hooks([])
    r = await machine.run(f"insmod {MODULE}")
    assert r.exit_status == 0, r.stderr
    async with Portal(machine.shm_path) as portal:
        await _skip_ioctl_works(machine, portal)
    new = (await _dmesg_lines(machine))[before:]
    assert not [line for line in new if any(b in line for b in BAD)], new


async def test_a_reloaded_module_never_takes_answers_left_by_the_old_one(
    machine: Machine,
) -> None:
    async def skips(value: int, runs: int) -> list[bytes]:
        async def skip(trap: Trap) -> None:
            trap.skip(value)

        async with Portal(machine.shm_path, skip) as portal:
            await portal.set_hooks(
                [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm="send_syscall")]
            )
            r = await machine.run("; ".join(["send_syscall getppid"] * runs))
        return [line.split()[-1] for line in r.stdout.splitlines()]

    assert await skips(111, 4) == [b"111"] * 4
    async with asyncio.timeout(60):
        while (await machine.run(f"rmmod {NAME}")).exit_status != 0:
            await asyncio.sleep(0.2)
    assert (await machine.run(f"insmod {MODULE}")).exit_status == 0
    # same slots, same message counts: the old verdicts are still in the region
    assert await skips(222, 12) == [b"222"] * 12


async def test_unload_with_a_task_trapped_in_an_unimplemented_syscall(machine: Machine) -> None:
    # nr 180 (nfsservctl) is an entry of the ni stub, caught without ftrace
    before = len(await _dmesg_lines(machine))
    trapped = asyncio.Event()
    release = asyncio.Event()

    async def hold(trap: Trap) -> None:
        trapped.set()
        await release.wait()
        trap.skip(5)

    async with Portal(machine.shm_path, hold, deadline_ms=60_000) as portal:
        await portal.set_hooks([HookSpec(id=1, nr=NR_UNKNOWN, comm="send_syscall")])
        run = asyncio.create_task(machine.run("send_syscall 180", timeout=60))
        async with asyncio.timeout(30):
            await trapped.wait()
        early = await machine.run(f"rmmod {NAME}; echo rc=$?")
        assert early.stdout == b"rc=1\n", "rmmod must refuse while a task is inside"
        release.set()
        assert (await run).stdout == b"send_syscall: syscall returned 5\n"
        # the stub still hooked while unloading; afterwards it is itself again
        async with asyncio.timeout(60):
            while (await machine.run(f"rmmod {NAME}")).exit_status != 0:
                await asyncio.sleep(0.2)
        r = await machine.run("send_syscall 180")
        assert r.stdout == b"send_syscall: syscall returned -38\n"
        async with asyncio.timeout(10):
            await portal.wait_failure()
    r = await machine.run(f"insmod {MODULE}")
    assert r.exit_status == 0, r.stderr
    async with Portal(machine.shm_path) as portal:
        await _skip_ioctl_works(machine, portal)
    new = (await _dmesg_lines(machine))[before:]
    assert not [line for line in new if any(b in line for b in BAD)], new
