"""QEMU dying or the guest panicking under a session: said plainly, and closing is immediate.

Each test boots its own guest (it is killed or panicked).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from syscalls_async import GuestPanic, MachineError, Session
from syscalls_async.api import Plugins
from syscalls_async.machine import Image

#: closing must not wait for a guest that cannot answer (it used to take 5 s)
CLOSE_WITHIN = 2.0


@pytest.mark.parametrize("fault", ["kill -9 qemu", "kernel panic"])
async def test_closing_a_session_whose_guest_died_is_immediate(image: Image, fault: str) -> None:
    plugins = Plugins()

    async def seen(regs: Any, proto: Any, syscall: Any) -> None:
        pass

    plugins.syscalls.syscall("on_sys_getppid_enter")(seen)
    session = Session(plugins, image=image, smp=1)
    await session.__aenter__()
    try:
        assert session.machine is not None
        pid, shm = session.machine.pid, session.machine.shm_path
        tmp = session.machine.console.log_path.parent
        assert pid is not None
        if fault == "kill -9 qemu":
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(MachineError) as info:
                async with asyncio.timeout(30):
                    await session.run("sleep 100")
            # QEMU's death is named, not the command channel it closed
            assert str(info.value).startswith("QEMU was killed by signal 9 (SIGKILL)")
        else:
            with pytest.raises(GuestPanic):
                async with asyncio.timeout(30):
                    await session.run("echo c > /proc/sysrq-trigger; sleep 100")
    finally:
        async with asyncio.timeout(CLOSE_WITHIN):
            await session.__aexit__(None, None, None)
    assert not Path(f"/proc/{pid}").exists()
    assert not shm.exists() and not tmp.exists()


def test_a_command_timeout_is_one_clean_line() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "syscalls_async.cli",
            "exec",
            "--smp",
            "1",
            "--timeout",
            "2",
            "--",
            "sleep",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 124  # as timeout(1); issue 9 changed it from 1
    assert proc.stderr == "syscalls-async: command 'sleep 100' did not finish within 2 s\n"
