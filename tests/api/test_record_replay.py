"""Record a session on the real guest, replay it without one (issue 9, deliverable 4)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from syscalls_async import Plugin, Session
from syscalls_async.api import Plugins
from syscalls_async.api.record import RecordedVerdict, read_recording
from syscalls_async.machine import Machine, qemu
from syscalls_async.testing import replay


class Guard(Plugin):
    """Refuses cat's opens of /etc/shadow after reading the path; watches the results."""

    def __init__(self, plugins: Plugins, refuse_with: int = errno.EACCES) -> None:
        self.plugins = plugins
        self.refuse_with = refuse_with
        self.output: list[str] = []
        plugins.syscalls.syscall("on_sys_openat_enter", comm_filter="cat")(self.on_open)
        plugins.syscalls.syscall(
            "on_sys_openat_return", comm_filter="cat", read_only=True
        )(self.opened)  # fmt: skip

    async def on_open(self, regs: Any, proto: Any, syscall: Any, dfd: int, filename: int,
                      flags: int, mode: int) -> None:  # fmt: skip
        path = await self.plugins.mem.read_str(filename)
        if path == "/etc/shadow":
            syscall.skip_syscall = True
            syscall.retval = -self.refuse_with
        self.output.append(f"open {path}")

    async def opened(self, regs: Any, proto: Any, syscall: Any, dfd: int, filename: int,
                     flags: int, mode: int) -> None:  # fmt: skip
        path = await self.plugins.mem.read_str(filename)  # the guest's capture
        self.output.append(f"opened {path} = {syscall.retval}")


async def test_a_recorded_session_replays_the_same_without_a_guest(
    machine: Machine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cat.rec"
    live = Guard(Plugins())
    async with Session(live.plugins, machine=machine, record=path) as session:
        result = await session.run("cat /etc/hostname /etc/shadow")
    assert result.exit_status == 1 and b"Permission denied" in result.stderr
    assert live.output[0] == "open /etc/hostname"
    assert "open /etc/shadow" in live.output and "opened /etc/shadow = -13" in live.output

    rec = read_recording(path)
    assert rec.complete and rec.header.kernel_release == machine.image.kernel_release
    blocking = [r for r in rec.events if not r.event.observed]
    assert [r.verdict for r in blocking if r.verdict.skipped] == [
        RecordedVerdict(True, -errno.EACCES)
    ]

    def no_machine(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("replay created a Machine")

    monkeypatch.setattr(qemu.Machine, "__init__", no_machine)
    again = Guard(Plugins())
    report = await replay(path, again.plugins)
    assert report.same, report.summary()
    assert again.output == live.output
    assert report.events == len(rec.events) and report.observed == len(rec.events) - len(blocking)

    changed = Guard(Plugins(), refuse_with=errno.EPERM)
    report = await replay(path, changed.plugins)
    (divergence,) = report.divergences
    assert divergence.event.startswith("openat enter by cat[")
    assert divergence.recorded == RecordedVerdict(True, -errno.EACCES)
    assert divergence.replayed == RecordedVerdict(True, -errno.EPERM)
    assert "1 divergence(s)" in report.summary()
