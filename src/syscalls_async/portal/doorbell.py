"""The host end of the guest's doorbell: sleep in the event loop until rung.

The guest module rings (writes a byte to an I/O port that QEMU forwards to a
stream socket, ``kernel/doorbell.c``) only while the host's *sleeping* word in
the region holds a token.  The poller's side of the handshake
(:meth:`Doorbell.sleep`): write a new token, make the store visible before any
later load (a full barrier), look at every message source once more, and only
then wait for the socket to become readable, with a long *fallback* timeout
that exists for liveness only (the heartbeat, the portal-lost check).  Either
the host's last look sees the guest's message, or the guest sees the token and
rings: no wake-up is lost.  A timeout that finds news is counted as a lost
wake-up (``fallback_wakeups``) and logged.

The guest is not trusted: what it writes to the socket is read at most
:data:`DRAIN_LIMIT` bytes a wake-up and counted; a bell that wakes the host
without news is *spurious*, and after one the next wait is a plain timed sleep
of ``after_spurious`` seconds, so a guest ringing without pause costs the host
what the old sleeping poller cost, never a spin.

Example::

    bell = Doorbell(machine.doorbell_fd)   # a duplicate: the machine keeps its fd
    try:
        await bell.sleep(mm, news=lambda: counter_changed())
        print(bell.counters.bell_wakeups, bell.counters.fallback_wakeups)
    finally:
        bell.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import socket
import struct
import threading
from collections.abc import Callable

import msgspec

from .abi import C, ffi, store

log = logging.getLogger("syscalls.portal")

#: bytes read from the bell socket per wake-up at most (a flooding guest gets
#: no more of the host's time than that per wake-up)
DRAIN_LIMIT = 4096
SLEEPING_OFF = C.SA_HOST_OFF + ffi.offsetof("struct sa_host_header", "sleeping")
BELL_PORT_OFF = C.SA_GUEST_OFF + ffi.offsetof("struct sa_guest_header", "bell_port")
BELL_RUNG_OFF = C.SA_GUEST_OFF + ffi.offsetof("struct sa_guest_header", "bell_rung")
_U32 = struct.Struct("<I")
_fence = threading.Lock()


def full_barrier() -> None:
    """Order the stores before it against the loads after it.

    A plain store followed by a load of another address may be reordered by
    the CPU (x86-64's store buffer allows exactly that), which would let the
    host look at the slots before its sleeping word is visible to the guest.
    Taking and releasing a lock is a locked read-modify-write on x86-64 (glibc's
    semaphore and mutex fast paths), which is a full barrier there.
    """
    with _fence:
        pass


class BellCounters(msgspec.Struct):
    """How the poller slept and what woke it."""

    #: times the poller went to sleep on the bell
    sleeps: int = 0
    #: wake-ups by the guest's bell
    bell_wakeups: int = 0
    #: fallback timeouts with nothing new (liveness ticks: heartbeat, checks)
    timer_wakeups: int = 0
    #: fallback timeouts that found news nobody rang for: lost wake-ups (should stay 0)
    fallback_wakeups: int = 0
    #: sleeps given up because the last look before sleeping found news
    sleeps_averted: int = 0
    #: bell wake-ups that found nothing new (a guest ringing for no reason)
    spurious: int = 0
    #: timed sleeps (``after_spurious``) taken instead of a wait on the bell
    #: after a spurious one
    timed_sleeps: int = 0
    #: bytes read from the bell socket
    bytes: int = 0


class Doorbell:
    """A duplicate of the bell socket ``fd``; :meth:`close` closes only it.

    :param fallback: the longest sleep (seconds): liveness only.
    :param after_spurious: the timed sleep that follows a spurious bell.
    """

    def __init__(self, fd: int, *, fallback: float = 0.25, after_spurious: float = 0.004) -> None:
        self.fallback = fallback
        self.after_spurious = after_spurious
        self.counters = BellCounters()
        #: False once the socket closed (QEMU went): the poller polls instead
        self.alive = True
        self._sock = socket.socket(fileno=os.dup(fd))
        self._sock.setblocking(False)
        self._token = 0
        self._spurious = False
        self._asleep = asyncio.Event()

    def close(self) -> None:
        self._sock.close()

    async def wait_asleep(self) -> None:
        """Return once the poller sleeps on the bell (for tests and benchmarks)."""
        await self._asleep.wait()

    @property
    def asleep(self) -> bool:
        return self._asleep.is_set()

    def drain(self) -> int:
        """Read what the guest rang so far (at most :data:`DRAIN_LIMIT` bytes)."""
        try:
            data = self._sock.recv(DRAIN_LIMIT)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as exc:
            self._dead(f"the doorbell socket failed ({exc})")
            return 0
        if not data:
            self._dead("the doorbell socket closed")
        self.counters.bytes += len(data)
        return len(data)

    async def sleep(self, mm: mmap.mmap, news: Callable[[], bool]) -> None:
        """Sleep until the guest rings or the fallback runs out.

        ``news()`` is the host's last look at every message source (True if
        something arrived since it last looked); it runs after the sleeping
        token is visible to the guest.
        """
        self.drain()  # a ring that came after the last wake-up is old news
        if self._spurious:
            # the last bell woke us for nothing: a plain timed sleep, so a
            # guest ringing without pause cannot make the host spin
            self._spurious = False
            self.counters.timed_sleeps += 1
            await asyncio.sleep(self.after_spurious)
            return
        # a token the guest has not rung for yet (an earlier host's sleeps
        # used tokens too)
        last_rung = _U32.unpack_from(mm, BELL_RUNG_OFF)[0]
        self._token = self._token % 0xFFFFFFFF + 1
        if self._token == last_rung:
            self._token = self._token % 0xFFFFFFFF + 1
        store(_U32, mm, SLEEPING_OFF, self._token)
        full_barrier()
        try:
            if news():
                self.counters.sleeps_averted += 1
                return
            self.counters.sleeps += 1
            self._asleep.set()
            rung = await self._wait_readable()
        finally:
            self._asleep.clear()
            store(_U32, mm, SLEEPING_OFF, 0)
        # a loop that stalled past the fallback may run the timeout first although
        # the bell rang: a byte waiting now was rung for this sleep (older ones
        # were drained before the token was set)
        if self.drain() or rung:
            self.counters.bell_wakeups += 1
            if not news():
                self.counters.spurious += 1
                self._spurious = True
        elif news():
            self.counters.fallback_wakeups += 1
            n = self.counters.fallback_wakeups
            if n <= 16 or not n & (n - 1):
                log.warning(
                    "the guest published without ringing the doorbell: found after the "
                    "%g s fallback (token %d, the guest last rang for %d) "
                    "[%d lost wake-ups so far]",
                    self.fallback,
                    self._token,
                    _U32.unpack_from(mm, BELL_RUNG_OFF)[0],
                    n,
                )
        else:
            self.counters.timer_wakeups += 1

    async def _wait_readable(self) -> bool:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = self._sock.fileno()

        def readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, readable)
        try:
            async with asyncio.timeout(self.fallback):
                await ready
            return True
        except TimeoutError:
            return ready.done() and not ready.cancelled()
        finally:
            loop.remove_reader(fd)

    def _dead(self, why: str) -> None:
        if self.alive:
            self.alive = False
            log.warning("%s: the poller polls from now on", why)


def guest_can_ring(mm: mmap.mmap) -> bool:
    """True if the guest module found its doorbell device at load."""
    return bool(_U32.unpack_from(mm, BELL_PORT_OFF)[0])


def clear_sleeping(mm: mmap.mmap) -> None:
    """A detaching host leaves no sleeping token behind."""
    with contextlib.suppress(ValueError):
        store(_U32, mm, SLEEPING_OFF, 0)
