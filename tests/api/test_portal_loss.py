"""Losing the portal ends the session: no command runs as if it were hooked."""

from __future__ import annotations

import asyncio
import mmap
import os
import struct
from typing import Any

import pytest

from syscalls_async import PortalLost, Session
from syscalls_async.api import Plugins
from syscalls_async.machine import Machine
from syscalls_async.portal import Portal
from syscalls_async.portal.abi import C, ffi

MODULE = "/lib/modules/syscalls_async.ko"
BLOCKED = "send_syscall ioctl 9 0xabcd"
MAGIC_OFF = C.SA_GUEST_OFF + ffi.offsetof("struct sa_guest_header", "magic")


def _block(plugins: Plugins) -> None:
    @plugins.syscalls.syscall("on_sys_ioctl_enter", arg_filters=[None, 0xABCD])
    def block(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int) -> None:
        syscall.skip_syscall = True
        syscall.retval = 43


async def _lose_and_check(session: Session, machine: Machine) -> None:
    """The portal is being lost: the session fails, later runs raise unrun."""
    async with asyncio.timeout(30):
        await session.portal.wait_failure()
    await machine.run("rm -f /tmp/sa_ran")
    with pytest.raises(PortalLost):
        await session.run(f"touch /tmp/sa_ran; {BLOCKED}")
    assert (await machine.run("test -e /tmp/sa_ran")).exit_status == 1, "the command ran"


async def test_rmmod_in_the_guest_ends_the_session(machine: Machine, plugins: Plugins) -> None:
    _block(plugins)
    try:
        with pytest.raises(PortalLost, match="unload"):
            async with Session(plugins, machine=machine) as session:
                r = await session.run(BLOCKED)
                assert r.stdout == b"send_syscall: syscall returned 43\n"
                async with asyncio.timeout(60):
                    while (await machine.run("rmmod syscalls_async")).exit_status != 0:
                        await asyncio.sleep(0.2)
                # unhooked, the call would run and fail with EBADF
                assert (await machine.run(BLOCKED)).stdout.endswith(b" -9\n")
                await _lose_and_check(session, machine)
    finally:
        r = await machine.run(f"lsmod | grep -q syscalls_async || insmod {MODULE}")
        assert r.exit_status == 0, r.stderr


async def test_an_overwritten_magic_ends_the_session(machine: Machine, plugins: Plugins) -> None:
    _block(plugins)
    fd = os.open(machine.shm_path, os.O_RDWR)
    try:
        mm = mmap.mmap(fd, C.SA_GUEST_SIZE, mmap.MAP_SHARED)
    finally:
        os.close(fd)
    magic = mm[MAGIC_OFF : MAGIC_OFF + 8]
    try:
        with pytest.raises(PortalLost, match="magic"):
            async with Session(plugins, machine=machine) as session:
                assert (await session.run(BLOCKED)).stdout.endswith(b" 43\n")
                # what a hostile guest (or a broken module) could write
                struct.pack_into("<Q", mm, MAGIC_OFF, 0x4141414141414141)
                await _lose_and_check(session, machine)
    finally:
        mm[MAGIC_OFF : MAGIC_OFF + 8] = magic
        mm.close()
    # the module was never gone: a new host attaches and clears the old table
    async with Portal(machine.shm_path) as portal:
        assert portal.hooks == ()
    assert (await machine.run(BLOCKED)).stdout.endswith(b" -9\n")


async def test_reattach_puts_the_hooks_back_when_the_module_returns(
    machine: Machine, plugins: Plugins
) -> None:
    _block(plugins)
    try:
        async with Session(plugins, machine=machine, reattach=60) as session:
            assert (await session.run(BLOCKED)).stdout.endswith(b" 43\n")
            first = session.portal
            running = asyncio.create_task(session.run("sleep 30"))
            async with asyncio.timeout(60):
                while (await machine.run("rmmod syscalls_async")).exit_status != 0:
                    await asyncio.sleep(0.2)
                await first.wait_failure()
                # it ran partly unhooked: stopped and said so
                with pytest.raises(PortalLost, match="while the command ran"):
                    await running
            # started while no module is there: waits for the hooks instead of running
            waiting = asyncio.create_task(session.run(BLOCKED))
            assert (await machine.run(f"insmod {MODULE}")).exit_status == 0
            assert (await waiting).stdout.endswith(b" 43\n")
            assert session.portal is not first and session.failure is None
            assert (await session.run(BLOCKED)).stdout.endswith(b" 43\n")
            assert session.stats.guest.events >= 3
    finally:
        r = await machine.run(f"lsmod | grep -q syscalls_async || insmod {MODULE}")
        assert r.exit_status == 0, r.stderr
