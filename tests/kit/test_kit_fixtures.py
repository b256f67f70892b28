"""The testing kit's guest fixtures used as a plugin author would (real guest).

Nothing here comes from the project's own conftest: ``syscalls_session`` and
``syscalls_machine`` are the pytest plugin's, as in a user's project.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from syscalls_async import HandlerError, Session, plugins
from syscalls_async.api import Plugins
from syscalls_async.machine import Machine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SKIP_IOCTL = "send_syscall ioctl 9 0xabcd"

pytestmark = pytest.mark.guest


async def test_a_plugin_file_on_the_session(
    syscalls_session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    syscalls_session.load_plugin_file(EXAMPLES / "skip_ioctl.py")
    result = await syscalls_session.run(SKIP_IOCTL)
    assert result.stdout == b"send_syscall: syscall returned 43\n"
    assert syscalls_session.stats.handler_calls == 1
    assert "skipped, returning 43" in capsys.readouterr().out


async def test_the_previous_tests_hooks_are_gone(
    syscalls_session: Session, syscalls_machine: Machine
) -> None:
    assert syscalls_session.machine is syscalls_machine
    assert plugins.syscalls.hooks == []
    result = await syscalls_session.run(SKIP_IOCTL)
    assert result.stdout == b"send_syscall: syscall returned -9\n"  # EBADF: the real ioctl ran


async def test_expected_handler_failures_use_a_session_of_their_own(
    syscalls_machine: Machine,
) -> None:
    own = Plugins()

    @own.syscalls.syscall("on_sys_ioctl_enter", comm_filter="send_syscall")
    def broken(regs: object, proto: object, syscall: object) -> None:
        raise RuntimeError("plugin bug")

    with pytest.raises(HandlerError, match="plugin bug"):
        async with Session(own, machine=syscalls_machine, fail_fast=True) as session:
            await session.run(SKIP_IOCTL)
