"""`syscalls-async run` killed by a signal leaves no QEMU, shared memory or temp dir.

Each test boots its own guest in a child `syscalls-async run`, waits until a
hook of its plugin fires (the guest is up and hooked), sends the signal and
waits for every trace of the run to disappear.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import sys
from pathlib import Path

import pytest

WAIT = 120.0

PLUGIN = """
from syscalls_async import plugins

@plugins.syscalls.syscall("on_sys_getppid_enter", comm_filter="send_syscall")
async def up(regs, proto, syscall):
    print("hooked", flush=True)
"""


def _children(pid: int) -> dict[int, str]:
    """Child pid -> comm, read from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if int(rest.split()[1]) == pid:
            found[int(entry.name)] = comm
    return found


def _wait_exit(pidfd: int, within: float) -> bool:
    """True once the process behind ``pidfd`` has ended (False after ``within`` s)."""
    readable, _, _ = select.select([pidfd], [], [], within)
    return bool(readable)


async def _gone(paths: list[Path], within: float) -> list[Path]:
    """Wait until none of ``paths`` exists; return those still there after ``within`` s."""
    try:
        async with asyncio.timeout(within):
            while any(p.exists() for p in paths):
                await asyncio.sleep(0.05)
    except TimeoutError:
        pass
    return [p for p in paths if p.exists()]


async def _start(tmpdir: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syscalls_async.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(tmpdir)},
    )


async def _signal_leaves_nothing(
    proc: asyncio.subprocess.Process, tmpdir: Path, signum: signal.Signals, status: int
) -> None:
    """Send ``signum`` to the running CLI; its exit ``status``, then nothing of it left."""
    assert proc.stderr is not None
    qemu = [pid for pid, comm in _children(proc.pid).items() if comm.startswith("qemu")]
    assert len(qemu) == 1, _children(proc.pid)
    pidfd = os.pidfd_open(qemu[0])
    shm = list(Path("/dev/shm").glob(f"syscalls-async-{proc.pid}-*"))
    temp = list(tmpdir.iterdir())
    assert len(shm) == 1 and len(temp) == 1, (shm, temp)

    proc.send_signal(signum)
    async with asyncio.timeout(WAIT):
        assert await proc.wait() == status, await proc.stderr.read()
    try:
        assert _wait_exit(pidfd, WAIT), f"QEMU {qemu[0]} still runs"
    finally:
        os.close(pidfd)
    assert await _gone(shm + temp, WAIT) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
async def test_signal_of_run_leaves_nothing_behind(tmp_path: Path, signum: signal.Signals) -> None:
    plugin = tmp_path / "up.py"
    plugin.write_text(PLUGIN)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = await _start(
        tmpdir, "run", "--smp", "1", str(plugin), "--", "sh", "-c",
        "send_syscall getppid; sleep 1000",
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(WAIT):
            line = await proc.stdout.readline()
        assert line == b"hooked\n", (line, await proc.stderr.read())
        status = -signum if signum == signal.SIGKILL else 128 + signum
        await _signal_leaves_nothing(proc, tmpdir, signum, status)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_ctrl_c_of_exec_leaves_nothing_behind(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    log = tmp_path / "console.log"
    proc = await _start(
        tmpdir, "exec", "--smp", "1", "--console-log", str(log), "--", "sh", "-c",
        "echo guest-up > /dev/console; sleep 1000",
    )  # fmt: skip
    try:
        # exec prints nothing before the command ends: the console log says the guest is up
        async with asyncio.timeout(WAIT):
            while not (log.exists() and b"guest-up" in log.read_bytes()):
                await asyncio.sleep(0.1)
        await _signal_leaves_nothing(proc, tmpdir, signal.SIGINT, 130)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
