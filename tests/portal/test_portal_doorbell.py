"""The doorbell on the real guest: an idle host sleeps in the event loop and
the module wakes it; no wake-up is lost (none is found by the fallback timer)."""

from __future__ import annotations

import pytest

from syscalls_async.machine import Machine
from syscalls_async.portal import FilterKind, GuestFilter, HookSpec, Portal, Trap
from syscalls_async.syscalls import syscall_nr

pytestmark = pytest.mark.guest

ROUNDS = 20


async def skip(trap: Trap) -> None:
    trap.skip(43)


async def test_the_module_found_its_bell_and_the_host_sleeps_on_it(
    machine: Machine, portal: Portal
) -> None:
    assert portal.sleeps_on_bell
    await portal.wait_asleep()  # fails the test (pytest-timeout) if it never sleeps


async def test_a_sleeping_host_answers_every_call_after_idle(machine: Machine) -> None:
    # a short guest deadline: a lost wake-up would have to wait for the host's
    # fallback tick (a quarter of it) and shows in fallback_wakeups
    async with Portal(machine.shm_path, skip, deadline_ms=5000, doorbell=machine.doorbell_fd) as p:
        cmd = GuestFilter(FilterKind.EXACT, 0xABCD, width=32)
        nr = syscall_nr(p.syscalls, "ioctl")
        await p.set_hooks([HookSpec(id=1, nr=nr, comm="send_syscall", args=(None, cmd))])
        before = p.guest_counters()
        for _ in range(ROUNDS):
            await p.wait_asleep()
            r = await machine.run("send_syscall ioctl 9 0xabcd")
            assert r.stdout == b"send_syscall: syscall returned 43\n"
        gained = p.guest_counters() - before
        bell = p.bell_counters
        assert gained.events == gained.verdicts == ROUNDS
        assert gained.deadline_expired == 0 and gained.host_lost == 0
        assert bell.fallback_wakeups == 0
        # the host slept before every call; a liveness tick may have had it
        # awake at the moment of the call (then its last look found the event)
        assert gained.bells >= 1
        assert bell.bell_wakeups + bell.sleeps_averted >= ROUNDS
