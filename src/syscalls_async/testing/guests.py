"""One booted guest per architecture, shared by a whole test session.

Booting is the slow part of a real-guest test (seconds for x86_64, tens of
seconds for other architectures under TCG), so the testing kit's
``syscalls_guests`` fixture keeps one :class:`GuestPool` for the session: the
first test that asks for an architecture boots it (building its image if
needed), every later test gets the same machine, and all of them are stopped
at the end.  A boot that failed is not retried: every later ``get`` of that
architecture raises the same error at once, so one broken architecture costs
one boot, not one per test.

Example::

    async def test_getpid_on_arm(syscalls_guests):
        machine = await syscalls_guests.get("aarch64")
        assert (await machine.run("uname -m")).stdout == b"aarch64\\n"
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..machine import Image, Machine, build_image
from ..machine.targets import target_for

log = logging.getLogger("syscalls.testing")


class GuestPool:
    """Booted machines by architecture name, booted on first :meth:`get`."""

    def __init__(self, *, smp: int = 2) -> None:
        self.smp = smp
        self._machines: dict[str, Machine] = {}
        self._failed: dict[str, BaseException] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        #: seconds each architecture took to boot (image build not included)
        self.boot_seconds: dict[str, float] = {}

    async def get(self, arch: str, image: Image | None = None) -> Machine:
        """The session's guest of ``arch``, booted now if it is the first ask."""
        target = target_for(arch)
        async with self._locks.setdefault(target.name, asyncio.Lock()):
            if target.name in self._failed:
                raise self._failed[target.name]
            machine = self._machines.get(target.name)
            if machine is None:
                try:
                    machine = await self._boot(target.name, image)
                except BaseException as exc:
                    self._failed[target.name] = exc
                    raise
                self._machines[target.name] = machine
            return machine

    async def _boot(self, arch: str, image: Image | None) -> Machine:
        if image is None:
            image = await asyncio.to_thread(build_image, arch=arch)
        machine = Machine(image, smp=self.smp, arch=arch)
        start = time.monotonic()
        await machine.__aenter__()
        self.boot_seconds[arch] = time.monotonic() - start
        log.info("the %s guest booted in %.1f s", arch, self.boot_seconds[arch])
        return machine

    async def aclose(self) -> None:
        """Stop every guest the pool booted."""
        machines, self._machines = self._machines, {}
        for machine in machines.values():
            await machine.aclose()
