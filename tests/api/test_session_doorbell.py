"""A session sleeps while the guest idles and is woken by the guest's doorbell:
blocking hooks after idle never run into the guest's deadline."""

from __future__ import annotations

from typing import Any

from syscalls_async import Session
from syscalls_async.api import Plugins

ROUNDS = 20


async def test_hooked_calls_after_idle_are_answered_by_a_sleeping_session(
    plugins: Plugins, session: Session
) -> None:
    async def skip(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int) -> None:
        syscall.skip_syscall = True
        syscall.retval = 43

    await plugins.syscalls.register(
        skip, "on_sys_ioctl_enter", comm_filter="send_syscall", arg_filters=[None, 0xABCD]
    )
    assert session.portal.sleeps_on_bell
    for _ in range(ROUNDS):
        await session.portal.wait_asleep()
        r = await session.run("send_syscall ioctl 9 0xabcd")
        assert r.stdout == b"send_syscall: syscall returned 43\n"
    guest = session.stats.guest
    assert guest.deadline_expired == 0 and guest.no_slot == 0 and guest.host_lost == 0
    assert guest.bells >= 1
    assert session.portal.bell_counters.fallback_wakeups == 0
    assert session.stats.events == ROUNDS
