"""Failure policies on the real guest: a handler that raises before its verdict.

By default the call runs (the failure is logged and counted); with
``on_error="fail_closed"`` on the session, or ``FailClosed(errno)`` on the
hook, the guest program sees ``-errno`` instead.  The CLI's ``--fail-closed``
is the session's policy.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from syscalls_async import FailClosed, Session
from syscalls_async.api import Plugins
from syscalls_async.machine import Machine

RET = "send_syscall: syscall returned"
ROOT = Path(__file__).resolve().parents[2]


def broken(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int, arg: int) -> None:
    # as a handler whose print raised BrokenPipeError before it set skip_syscall
    raise BrokenPipeError("print failed before the verdict")


@pytest.mark.parametrize(
    ("session_policy", "hook_policy", "seen"),
    [
        ("continue", None, -errno.EBADF),  # the call ran: fd 9 is not open
        ("fail_closed", None, -errno.EPERM),
        ("continue", FailClosed(errno.EACCES), -errno.EACCES),
        ("fail_closed", "continue", -errno.EBADF),
    ],
)
async def test_a_handler_that_raises_before_its_verdict(
    machine: Machine, plugins: Plugins, session_policy: Any, hook_policy: Any, seen: int
) -> None:
    async with Session(plugins, machine=machine, on_error=session_policy) as session:
        await plugins.syscalls.register(
            broken, "ioctl", comm_filter="send_syscall", arg_filters=[9], on_error=hook_policy
        )
        result = await session.run("send_syscall ioctl 9 0x5401")
        assert result.stdout == f"{RET} {seen}\n".encode()
        assert session.stats.handler_errors == 1
        assert session.stats.failed_closed == int(seen != -errno.EBADF)


async def test_a_handler_that_times_out_before_its_verdict_fails_closed(
    machine: Machine, plugins: Plugins
) -> None:
    import asyncio

    async def stuck(regs: Any, proto: Any, syscall: Any) -> None:
        await asyncio.Event().wait()  # never sets its verdict

    async with Session(
        plugins, machine=machine, handler_timeout=0.5, on_error=FailClosed(errno.EACCES)
    ) as session:
        await plugins.syscalls.register(stuck, "getppid", comm_filter="send_syscall")
        result = await session.run("send_syscall getppid")
        assert result.stdout == f"{RET} {-errno.EACCES}\n".encode()
        assert (session.stats.handler_timeouts, session.stats.failed_closed) == (1, 1)


@pytest.mark.guest
def test_run_fail_closed_on_the_command_line(tmp_path: Path) -> None:
    plugin = tmp_path / "raises.py"
    plugin.write_text(
        "from syscalls_async import plugins\n"
        "@plugins.syscalls.syscall('ioctl', comm_filter='send_syscall', arg_filters=[9])\n"
        "def broken(regs, proto, syscall, fd, cmd, arg):\n"
        "    raise BrokenPipeError('print failed before the verdict')\n"
    )
    argv = [sys.executable, "-m", "syscalls_async.cli", "run", "--fail-closed=EACCES"]
    argv += ["--stats", str(plugin), "--", "send_syscall", "ioctl", "9", "0x5401"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180)
    print(proc.stdout, proc.stderr)
    assert proc.stdout == f"{RET} -13\n"
    assert proc.returncode == 256 - errno.EACCES
    assert "failed_closed=1" in proc.stderr and "handler_errors=1" in proc.stderr
    assert "syscalls-async: portal scan: " in proc.stderr  # "c" or "python (why)"


class _ClosedPipe:
    """sys.stdout after ``| head -1`` exited: every write raises BrokenPipeError."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


async def test_the_file_access_example_refuses_shadow_when_its_print_fails(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example sets its verdict before it prints (it once printed first)."""
    from syscalls_async import plugins as global_plugins
    from syscalls_async.api import load_plugin_file

    load_plugin_file(ROOT / "examples" / "file_access.py")  # onto the global plugins
    try:
        async with Session(global_plugins, machine=machine) as session:
            await session.run("echo root:x:0 > /etc/sh.tmp && mv /etc/sh.tmp /etc/shadow")
            with monkeypatch.context() as m:
                m.setattr(sys, "stdout", _ClosedPipe())
                result = await session.run("cat /etc/shadow")
            errors = session.stats.handler_errors
    finally:
        global_plugins.syscalls.registry.clear()
        await machine.run("rm -f /etc/shadow")
    assert (result.exit_status, result.stdout) == (1, b"")
    assert b"can't open '/etc/shadow': Permission denied" in result.stderr
    assert errors >= 1  # the ALERT print failed, and was counted
