"""The machine's whole life: failures are raised, and nothing is left behind."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from syscalls_async import GuestPanic, MachineError
from syscalls_async.machine import Image, Machine


def _leftovers(machine: Machine, pid: int | None, shm: Path, tmp: Path) -> list[str]:
    found = []
    if pid is not None and Path(f"/proc/{pid}").exists():
        found.append(f"qemu process {pid}")
    if shm.exists():
        found.append(f"shared memory {shm}")
    if tmp.exists():
        found.append(f"temp dir {tmp}")
    return found


def _open_sockets() -> set[str]:
    fds = Path("/proc/self/fd")
    out = set()
    for fd in fds.iterdir():
        try:
            out.add(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile (the listing's own fd)
    return {target for target in out if target.startswith("socket:")}


async def test_normal_exit_leaves_nothing(image: Image) -> None:
    async with Machine(image, smp=1) as m:
        pid, shm, tmp = m.pid, m.shm_path, m.console.log_path.parent
        assert shm.stat().st_mode & 0o777 == 0o600
        assert (await m.run("true")).exit_status == 0
        bell = os.readlink(f"/proc/self/fd/{m.doorbell_fd}")
        assert bell in _open_sockets()
    assert _leftovers(m, pid, shm, tmp) == []
    assert bell not in _open_sockets()  # the doorbell's socket is closed too


async def test_exception_in_body_leaves_nothing(image: Image) -> None:
    with pytest.raises(ZeroDivisionError):
        async with Machine(image, smp=1) as m:
            pid, shm, tmp = m.pid, m.shm_path, m.console.log_path.parent
            1 / 0  # noqa: B018
    assert _leftovers(m, pid, shm, tmp) == []


def _our_shm() -> set[str]:
    # only this process's files: other processes on the host boot guests too
    return {n for n in os.listdir("/dev/shm") if n.startswith(f"syscalls-async-{os.getpid()}-")}


async def test_cancellation_during_boot_leaves_nothing(image: Image) -> None:
    before = _our_shm()
    m = Machine(image, smp=1)
    seen: dict[str, object] = {}

    async def boot() -> None:
        async with m:
            raise AssertionError("boot should have been cancelled")

    task = asyncio.create_task(boot())
    # cancel once QEMU runs and the kernel is printing, well before ready
    async with asyncio.timeout(60):
        while m._console is None:
            await asyncio.sleep(0)
        with m.console.subscribe() as lines:
            assert await lines.get() is not None
    seen.update(pid=m.pid, tmp=m.console.log_path.parent)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen["pid"] is not None and not Path(f"/proc/{seen['pid']}").exists()
    assert not Path(str(seen["tmp"])).exists()
    assert _our_shm() - before == set()


async def test_kernel_panic_raises_instead_of_hanging(image: Image) -> None:
    async with Machine(image, smp=1) as m:
        pid, shm, tmp = m.pid, m.shm_path, m.console.log_path.parent
        with pytest.raises(GuestPanic) as info:
            async with asyncio.timeout(20):
                await m.run("echo c > /proc/sysrq-trigger; sleep 100")
        assert "panic" in str(info.value).lower()
        assert "sysrq" in info.value.console_tail.lower()
        # the machine stays failed: later commands raise at once
        with pytest.raises(MachineError):
            await m.run("true")
    assert _leftovers(m, pid, shm, tmp) == []


async def test_boot_failure_is_reported_with_qemu_error(image: Image) -> None:
    with pytest.raises(MachineError, match="QEMU exited"):
        async with Machine(image, smp=10000, boot_timeout=60):
            pass
