"""What outlives a SIGKILLed host process: nothing (machine/reaper.py, no guest).

A helper Python process plays the host: it starts a child with
``die_with_parent`` and a :class:`Reaper` for two paths, says so, and is then
killed with SIGKILL.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from syscalls_async.machine.reaper import die_with_parent

WAIT = 30.0

HOST = """
import asyncio, subprocess, sys
from pathlib import Path

from syscalls_async.machine.reaper import die_with_parent
from syscalls_async.machine.reaper import Reaper, die_with_parent

async def main():
    child = subprocess.Popen(["sleep", "1000"], preexec_fn=die_with_parent())
    reaper = await Reaper.start([Path(sys.argv[1]), Path(sys.argv[2])])
    print(child.pid, reaper.pid, flush=True)
    await asyncio.sleep(1000)

asyncio.run(main())
"""


def _ended(pid: int, within: float = WAIT) -> bool:
    fd = os.pidfd_open(pid)
    try:
        return bool(select.select([fd], [], [], within)[0])
    finally:
        os.close(fd)


def test_sigkill_of_the_host_ends_its_child_and_removes_its_paths(tmp_path: Path) -> None:
    folder, file = tmp_path / "dir", tmp_path / "file"
    folder.mkdir()
    (folder / "inside").write_text("x")
    file.write_text("y")
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, str(folder), str(file)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert host.stdout is not None
        child, reaper = map(int, host.stdout.readline().split())
        assert folder.exists() and file.exists()
        host.send_signal(signal.SIGKILL)
        assert host.wait(WAIT) == -signal.SIGKILL
        assert _ended(child), "the child outlived its parent"
        assert _ended(reaper), "the reaper did not finish"
        assert not folder.exists() and not file.exists()
    finally:
        host.kill()
        host.wait()


def test_a_child_whose_parent_is_already_gone_kills_itself() -> None:
    # as if the parent had died before prctl: the child's parent is not the expected one
    preexec = die_with_parent(parent=os.getppid())
    child = subprocess.run(["sleep", "1000"], preexec_fn=preexec, timeout=WAIT, check=False)
    assert child.returncode == -signal.SIGKILL
