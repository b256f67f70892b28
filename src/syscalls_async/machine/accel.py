"""Choosing QEMU's accelerator: KVM where it really works, TCG otherwise.

Opening ``/dev/kvm`` is not proof enough: on some nested hosts KVM creates a
VM and runs real-mode code but the Linux kernel never prints a line.  So the
probe boots the guest kernel under KVM and waits for its first console line.
The answer is cached per host boot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from ..errors import SetupError
from .image import cache_dir
from .reaper import die_with_parent

log = logging.getLogger("syscalls.machine")

PROBE_TIMEOUT = 8.0
_decided: str | None = None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


async def _kernel_speaks_under_kvm(qemu: str, kernel: str) -> bool:
    proc = await asyncio.create_subprocess_exec(
        qemu,
        "-accel",
        "kvm",
        "-cpu",
        "host",
        "-m",
        "256",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "stdio",
        "-kernel",
        kernel,
        "-append",
        "console=ttyS0 earlyprintk=ttyS0 panic=-1",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=die_with_parent(),  # the probe must not outlive a killed host either
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            while line := await proc.stdout.readline():
                if b"Linux version" in line:
                    return True
        return False
    except TimeoutError:
        return False
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def choose_accel(qemu: str, kernel: str) -> str:
    """``kvm`` or ``tcg``; ``$SYSCALLS_ASYNC_ACCEL`` overrides the probe."""
    global _decided
    forced = os.environ.get("SYSCALLS_ASYNC_ACCEL")
    if forced:
        if forced not in ("kvm", "tcg"):
            raise SetupError(f"SYSCALLS_ASYNC_ACCEL must be 'kvm' or 'tcg', not {forced!r}")
        return forced
    if _decided is not None:
        return _decided
    marker = cache_dir() / f"accel-{_boot_id()}"
    if marker.exists():
        _decided = marker.read_text().strip()
        return _decided
    accel = "tcg"
    if os.access("/dev/kvm", os.R_OK | os.W_OK) and await _kernel_speaks_under_kvm(qemu, kernel):
        accel = "kvm"
    log.info("accelerator: %s", accel)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(accel)
    _decided = accel
    return accel
