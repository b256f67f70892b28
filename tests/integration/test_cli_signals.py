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


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
async def test_signal_of_run_leaves_nothing_behind(tmp_path: Path, signum: signal.Signals) -> None:
    plugin = tmp_path / "up.py"
    plugin.write_text(PLUGIN)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syscalls_async.cli",
        "run",
        "--smp",
        "1",
        str(plugin),
        "--",
        "sh",
        "-c",
        "send_syscall getppid; sleep 1000",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(tmpdir)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(WAIT):
            line = await proc.stdout.readline()
        assert line == b"hooked\n", (line, await proc.stderr.read())

        qemu = [pid for pid, comm in _children(proc.pid).items() if comm.startswith("qemu")]
        assert len(qemu) == 1, _children(proc.pid)
        pidfd = os.pidfd_open(qemu[0])
        shm = list(Path("/dev/shm").glob(f"syscalls-async-{proc.pid}-*"))
        temp = list(tmpdir.iterdir())
        assert len(shm) == 1 and len(temp) == 1, (shm, temp)

        proc.send_signal(signum)
        async with asyncio.timeout(WAIT):
            status = await proc.wait()
        expected = -signum if signum == signal.SIGKILL else 128 + signum
        assert status == expected, await proc.stderr.read()
        try:
            assert _wait_exit(pidfd, WAIT), f"QEMU {qemu[0]} still runs"
        finally:
            os.close(pidfd)
        assert await _gone(shm + temp, WAIT) == []
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
