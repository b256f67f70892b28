"""The host end of the portal: attach to the shared region, poll it, answer.

:class:`Portal` composes the parts, each in its own module: the region
(:mod:`.region`: the mapping, named offsets, attach and liveness checks), the
slot channel (:mod:`.slots`: the seqlock protocol as typed messages, host
answers), the hook table (:mod:`.hooktable`: generations and acks), the
observe-only rings (:mod:`.rings`; one ring's layout is :mod:`.ring`) and the
doorbell (:mod:`.doorbell`).  What is left here is the poller and the traps:
which trap a message belongs to, one handler per slot, verdicts, counters.

Example (``syscall_nr`` is the syscalls layer's: the portal knows no names but
the guest's)::

    async def handler(trap: Trap) -> None:
        if trap.event.args[1] == 0xabcd:
            trap.skip(43)

    async with Portal(machine.shm_path, handler) as portal:
        await portal.set_hooks([HookSpec(id=1, nr=syscall_nr(portal.syscalls, "ioctl"))])
        ...

Semantics:

- ``await portal.set_hooks(...)`` returns once the guest acknowledged that
  table generation: every matching syscall started after that is trapped.
- Each trapped syscall becomes one :class:`Trap`; ``handler(trap)`` runs for
  it in its own task (traps of different guest tasks run concurrently).
  When the handler returns, the verdict it set is sent (default: continue
  unchanged).  A handler exception is logged and counted, and the verdict so
  far is sent.
- A guest task that stops waiting before its verdict is written (its
  deadline passed, it was killed, its slot was reused) has its handler
  cancelled; the verdict is late, counted in ``late_verdicts`` and logged as a
  warning.  A verdict written just as the task gave up is counted the same.
- The guest cannot make the host run unbounded work: at most one handler runs
  per slot (so at most ``SA_SLOT_COUNT`` at once).  An event on a slot whose
  previous handler has not ended yet waits for it (counted in ``slot_busy``;
  that handler was cancelled when its task stopped waiting); an event
  republished with the epoch of the slot's live trap is refused and counted.
- Everything read from the region is copied once and validated; invalid
  messages are refused and counted in :attr:`Portal.host_counters`.
- Observe-only hooks (``HookSpec.observe``) do not stop the guest task: their
  events come through the per-CPU rings, which the poller drains fully on
  every pass (:meth:`Portal.drain_rings`), and go through a bounded queue
  (``observe_queue`` events, in chunks of up to 256 in ring order) to
  ``batch_observer`` a chunk at a time if it is set, else to ``observer``
  one event at a time.  An event that
  finds the queue full is dropped and counted (``ring_stats.queue_drops``,
  per hook in :meth:`Portal.hook_drops`); records that did not fit in their
  ring were dropped and counted by the guest (per ring in
  :meth:`Portal.ring_drops`, per hook in :meth:`Portal.hook_drops`).
  ``await portal.flush_observed()`` returns once everything the rings held
  has been handed to ``observer`` (or counted as dropped).
- Idle, the poller sleeps in the event loop if it has a doorbell
  (``Portal(..., doorbell=machine.doorbell_fd)``) and the guest module found
  its bell device: the guest wakes it (:mod:`.doorbell`); without one it
  polls with sleeps of 1 to 4 ms.  :attr:`Portal.bell_counters` says what
  woke it; :meth:`Portal.wait_asleep` waits until it sleeps.
- Leaving the ``async with`` block clears the hooks (best effort), stops the
  poller and the observer loop, cancels the handlers still running, answers
  every trap still open with its verdict so far and detaches.  Guest tasks
  waiting on a host that died continue after the guest's deadline.
- What runs where: the poller and the observer loop run in one anyio task
  group owned by the portal's supervisor task
  (:class:`~syscalls_async._aio.Supervisor`), so the portal may be entered
  and closed by different tasks.  Each blocking trap's handler is a plain
  asyncio task of the portal's (the poller needs its handle to cancel it
  when its guest task stops waiting, and a task group's ``start_soon``
  would cost more per event); ``aclose()`` cancels and awaits those after
  the poller has ended, so none outlives the block.
- A background failure does not escape into the tasks that use the portal:
  a poller that raises marks the portal lost (``PortalError`` in
  :attr:`Portal.failure`, raised by every later call and by every open
  trap's pending request); an observer that raises is counted in
  ``handler_errors`` and logged, as a handler that raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import mmap
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import msgspec

from .._aio import Supervisor
from ..errors import (
    PortalError,
    PortalLost,
    PortalProtocolError,
    TrapGone,
)
from . import cscan, decode
from .abi import DOORBELL_OFF, HOST_RING_SIZE_OFF, MASK64, C, ffi, packed, store
from .arch import X86_64, ArchInfo, check_arch
from .doorbell import BellCounters, Doorbell, clear_sleeping, guest_can_ring
from .hooks import HookSpec
from .hooktable import HookTable
from .region import MAX_BEAT_GAP, U32, U64, Region
from .ring import RingStats
from .rings import OBSERVE_QUEUE, RingChannel, check_observe_options
from .slots import AbandonMsg, EventMsg, ResponseMsg, SlotChannel, UnknownMsg
from .trap import ObservedTrap, Response, Trap
from .types import GuestCounters, HostCounters, RawEvent, SyscallMeta

log = logging.getLogger("syscalls.portal")

Handler = Callable[[Trap], Awaitable[None]]
Observer = Callable[[ObservedTrap], Awaitable[None]]
#: takes a chunk of observed events (at most ``rings.CHUNK``, in ring order) at once
BatchObserver = Callable[[Sequence[ObservedTrap]], Awaitable[None]]
#: a response's fields, read with one precompiled unpack (cffi field access
#: cost ≈ 4 µs a response; the layout is checked against cffi at import)
_RESPONSE = packed(
    "struct sa_slot_guest",
    [
        ("status", "i"),
        ("len", "I"),
        ("count", "I"),
        ("rflags", "I"),
        ("fault_addr", "Q"),
        ("next", "Q"),
    ],
)
_RESPONSE_OFF = ffi.offsetof("struct sa_slot_guest", "status")
#: observed events handled in a row before the event loop gets a turn
_OBSERVE_BATCH = 256
#: how often the poller looks at the guest's counters
_COUNTERS_PERIOD = 0.25
#: guest counters whose growth means hooked calls ran unhooked or events were
#: lost: each growth is a warning
_LOSSES = {
    "no_slot": "{n} hooked call(s) ran unhooked: no free event slot within the deadline",
    "deadline_expired": "{n} hooked call(s) ran unhooked: no verdict within the deadline",
    "host_lost": "{n} hooked call(s) ran unhooked: the host's heartbeat stopped",
    "host_dead_skips": "{n} hooked call(s) ran unhooked: no live host",
    "bad_host_msg": "{n} hooked call(s) ran unhooked: the guest refused the host's answer",
    "restart_lost": "{n} interrupted call(s) got no return event",
    "table_rejects": "{n} hook table(s) refused by the guest",
    "ring_drops": "{n} observed event(s) dropped: their ring was full",
}


class PollPolicy(msgspec.Struct, frozen=True):
    """How the poller waits.

    With a doorbell (``Portal(doorbell=fd)`` and a guest module that found its
    bell device), it stays busy (yielding to the loop) for ``bell_spin``
    seconds after the last guest message, so a burst of calls never waits for
    a wake-up, then sleeps in the event loop until the guest rings; it wakes
    on its own every ``fallback`` seconds at most (at most 0.25 s, less than a
    quarter of the guest's deadline) for liveness only: the heartbeat the
    guest watches, the portal-lost check, the guest's counters.

    Without one, it stays busy for ``spin`` seconds after the last guest
    message, then sleeps from ``min_sleep`` doubling up to ``max_sleep``.
    asyncio sleeps are at best ~1 ms, so such an idle portal answers a first
    syscall within about ``max_sleep``; a busy one in microseconds.
    ``max_sleep`` is also the timed sleep after a bell that rang for nothing.

    ``yield_after``: once the spin has gone that long (seconds) without news,
    every pass gives the host CPU to any other thread waiting for it
    (``sched_yield``; free when none waits; ``None``: never).  Not sooner, so
    a hot stream of calls (the next one comes within tens of microseconds)
    keeps the CPU on a loaded host.  A guest
    task that waits for a verdict sleeps in the guest once its own spin is
    over, and only QEMU's main loop can wake it (it fires the guest's
    timers): on a host with few cores, a poller spinning through its time
    slice kept that thread off the CPU for milliseconds after the verdict was
    written (measured at load 1.5: the first call after idle took 2.9 ms
    instead of about 1.1 ms; less gain under heavier load; BENCHMARKS.md).

    ``c_wait``: with the C scan, a spinning pass whose event loop has nothing
    else ready waits up to that long (seconds) in C for news (the doorbell
    word or a ring's head moving), so an event is seen within a fraction of a
    microsecond instead of a loop turn later; the loop's I/O and timers then
    wait up to that long.  Only before ``yield_after``: from then on every
    pass gives the CPU away as above.  0: never.
    """

    spin: float = 0.05
    min_sleep: float = 0.001
    max_sleep: float = 0.004
    bell_spin: float = 0.002
    fallback: float = MAX_BEAT_GAP
    yield_after: float | None = 50e-6
    c_wait: float = 50e-6


class Portal:
    """An attached portal over the ivshmem file ``shm_path``.

    :param handler: called with each :class:`Trap`; ``None`` continues every trap.
    :param deadline_ms: how long a trapped guest task waits for this host
        without any answer before continuing unhooked.
    :param attach_timeout: seconds to wait for the guest module to be ready.
    :param doorbell: the host end of the guest's doorbell (``machine.doorbell_fd``;
        the portal reads a duplicate and never closes this one); ``None``
        polls with sleeps when idle.
    :param observer: called with each observed event (observe-only hooks).
    :param batch_observer: if set, called instead of ``observer`` with each
        chunk of observed events (up to 256, in ring order): one call per
        chunk, not per event.
    :param ring_size: data bytes of each observe-only ring, a power of two
        from ``SA_RING_DATA_MIN`` to ``SA_RING_DATA_MAX`` (``None``: the
        guest's default, the largest); written before the first hook table,
        taken by each ring while it is empty.
    :param shm_offset: where the region starts in the file, and
    :param shm_size: its size (``None``: the rest of the file); for guests
        whose region is a range of their own RAM (mipsel).
    :param observe_queue: how many observed events may wait for ``observer``;
        more are dropped and counted.
    :param arch: the architecture the machine was booted as: a region whose
        module runs another one is refused (:class:`PortalVersionError`).
    """

    def __init__(
        self,
        shm_path: str | os.PathLike[str],
        handler: Handler | None = None,
        *,
        deadline_ms: int = 3000,
        poll: PollPolicy | None = None,
        attach_timeout: float = 30.0,
        observer: Observer | None = None,
        batch_observer: BatchObserver | None = None,
        ring_size: int | None = None,
        observe_queue: int = OBSERVE_QUEUE,
        doorbell: int | None = None,
        arch: ArchInfo | None = None,
        shm_offset: int = 0,
        shm_size: int | None = None,
    ) -> None:
        check_observe_options(ring_size, observe_queue)
        #: the architecture the guest must run (the machine's); None: any known
        self.expected_arch = arch
        self.observer = observer
        self.batch_observer = batch_observer
        self.ring_size = ring_size
        self._hooktable = HookTable()
        self._rings = RingChannel(self._hooktable, observe_queue)
        #: what the rings brought and what was dropped or refused on the host
        self.ring_stats: RingStats = self._rings.stats
        self.shm_path = Path(shm_path)
        #: where the region lies in that file (a range of guest RAM on guests
        #: without ivshmem); None: the whole file
        self.shm_offset = shm_offset
        self.shm_size = shm_size
        self.handler = handler
        self.deadline_ms = deadline_ms
        self.poll = poll or PollPolicy()
        self.attach_timeout = attach_timeout
        self.doorbell = doorbell
        self._bell: Doorbell | None = None
        self.host_counters = HostCounters()
        self.syscalls: list[SyscallMeta] = []
        #: the compat ABI's syscalls (x86_64: ia32; empty if the guest has none)
        self.syscalls32: list[SyscallMeta] = []
        self.boot_id = 0
        #: the guest's architecture (known once attached)
        self.arch: ArchInfo = X86_64
        self.failure: PortalError | None = None
        #: the guest's counters when last read (kept after the portal is lost)
        self.last_guest_counters = GuestCounters()
        self._warned_counters = GuestCounters()  # what the poller last warned about
        self._failed = asyncio.Event()
        self._region: Region | None = None
        #: the region's mapping while attached (the poller's hot path reads it directly)
        self._mm: mmap.mmap | None = None
        self._slots: SlotChannel | None = None
        #: which slot scan the poller runs: "c" (:mod:`.cscan`), or "python
        #: (why)" when the C one could not be built or was turned off (set on attach)
        self.scan_impl = ""
        #: the poller and the observer loop run in its task group
        self._supervisor = Supervisor("portal")
        self._active: dict[int, Trap] = {}
        #: handler tasks of blocking traps per slot, not yet ended (one runs, a
        #: newer one may wait; plain asyncio tasks: see the docstring)
        self._slot_tasks: list[set[asyncio.Task[None]]] = [set() for _ in range(C.SA_SLOT_COUNT)]
        #: epoch of the last verdict written per slot: an abandon naming it came too late
        self._answered: dict[int, int] = {}

    # -- public ---------------------------------------------------------------

    @property
    def hooks(self) -> tuple[HookSpec, ...]:
        """The hook table last put in force."""
        return self._hooktable.hooks

    @property
    def hooks_generation(self) -> int:
        """The generation number of the hook table last put in force."""
        return self._hooktable.gen

    async def set_hooks(self, hooks: Sequence[HookSpec], *, ack_timeout: float = 30.0) -> None:
        """Put ``hooks`` in force in the guest; returns after the guest's ack."""
        table = self._hooktable
        async with table.lock:
            mm = self._live()
            self._rings.account_hook_drops(mm, table.hooks)
            gen = table.publish(mm, hooks)
            mm = await table.wait_ack(self._live, gen, ack_timeout)
            # drops counted while the table changed belong to the old one
            self._rings.account_hook_drops(mm, table.hooks)
            table.commit(mm, gen, hooks)

    async def wait_failure(self) -> PortalError:
        """Wait until the portal is lost and return why: :class:`PortalLost`
        (module unloaded or reloaded, region overwritten) or the
        :class:`PortalError` that stopped the poller."""
        await self._failed.wait()
        assert self.failure is not None
        return self.failure

    def abandon(self, why: str) -> None:
        """The guest is gone (QEMU died, kernel panic): fail every waiter now.

        :meth:`aclose` then detaches without waiting for a guest that cannot answer.
        """
        if self.failure is None:
            self._lost(PortalError(why))

    def guest_counters(self) -> GuestCounters:
        """The module's counters, read now (since the module was loaded)."""
        self._live()
        assert self._region is not None
        self.last_guest_counters = self._region.counters()
        return self.last_guest_counters

    def hooked_entries(self) -> int:
        """How many distinct syscall entries the guest has hooked now."""
        self._live()
        assert self._region is not None
        return self._region.hooked_entries()

    @property
    def bell_counters(self) -> BellCounters:
        """A snapshot of how the poller slept on the doorbell and what woke it
        (zeros without a doorbell); ``fallback_wakeups`` counts lost wake-ups."""
        if self._bell is None:
            return BellCounters()
        return msgspec.structs.replace(self._bell.counters)

    @property
    def sleeps_on_bell(self) -> bool:
        """True if the poller sleeps until the guest rings when idle."""
        return self._bell is not None and self._bell.alive

    async def wait_asleep(self) -> None:
        """Return once the poller sleeps on the doorbell (it must have one)."""
        if self._bell is None:
            raise PortalError("this portal has no doorbell")
        await self._bell.wait_asleep()

    def ring_drops(self) -> tuple[int, ...]:
        """Per ring (CPU n uses ring n % SA_RING_COUNT): observed records the guest
        dropped since this portal attached, because they did not fit."""
        return self._rings.ring_drops(self._mm if self.failure is None else None)

    def hook_drops(self) -> dict[int, int]:
        """Per hook id: its observed events that were dropped (a full ring in the
        guest, or a full queue on the host).  The guest counts by table position:
        a drop racing with a table change may count for the hook that takes the
        position (the total stays exact)."""
        return self._rings.hook_drops(self._mm if self.failure is None else None)

    async def flush_observed(self, timeout: float = 30.0) -> None:
        """Return once every record the rings hold now was handed to the observer
        and its handling ended (or it was counted as dropped); events recorded
        after this call are not waited for.  ``TimeoutError`` after ``timeout``."""
        self.drain_rings()
        rings = self._rings
        target = rings.queued
        async with asyncio.timeout(timeout):
            while rings.done < target:
                rings.progress.clear()
                await rings.progress.wait()

    def busy_slots(self) -> int:
        """Slots a guest task holds right now (for leak checks)."""
        self._live()
        assert self._region is not None
        return self._region.busy_slots()

    # -- lifetime -------------------------------------------------------------

    async def __aenter__(self) -> Portal:
        await self._attach()
        try:
            await self._supervisor.start()
            self._supervisor.start_soon(self._guarded_poll, name="portal-poller")
            self._supervisor.start_soon(self._observe_loop, name="portal-observer")
            # A table left by an earlier host is dropped before anything else.
            await self.set_hooks([])
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Detach: clear hooks, answer open traps, stop the poller, unmap."""
        if self._mm is None:
            return
        if self.failure is None and self._hooktable.hooks:
            with contextlib.suppress(PortalError, TimeoutError):
                await self.set_hooks([], ack_timeout=5.0)
        # observed events not handled by now are not waited for
        self._rings.send.close()
        # no new trap after this: the poller has ended
        await self._supervisor.aclose()
        for trap in list(self._active.values()):
            trap._cancel_handler()
        tasks = self._tasks
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for trap in list(self._active.values()):
            self._finish(trap)
        region, self._region, self._mm, self._slots = self._region, None, None, None
        assert region is not None
        if self._bell is not None:
            self._bell.close()
        if self.failure is None:
            clear_sleeping(region.mm)
        region.close(detach=self.failure is None)

    async def _attach(self) -> None:
        region = await Region.attach(
            self.shm_path, self.attach_timeout, self.shm_offset, self.shm_size
        )
        try:
            check_arch(region.arch, self.expected_arch)
            await region.refuse_second_host()
            self.syscalls = region.syscalls()
            self.syscalls32 = region.syscalls32()
            self.last_guest_counters = region.counters()
        except BaseException:
            region.close(detach=False)
            raise
        mm = region.mm
        self._region, self._mm = region, mm
        self.boot_id = region.boot_id
        self.arch = region.arch
        self._warned_counters = self.last_guest_counters
        self._hooktable.attach(mm, region.arch.nr_base)
        self._slots = SlotChannel(region)
        self.scan_impl = "c" if self._slots.impl == "c" else cscan.status()
        store(U32, mm, HOST_RING_SIZE_OFF, self.ring_size or 0)
        self._rings.attach(mm)
        region.set_attached(self.deadline_ms)
        region.beat()
        self._open_bell(mm)
        log.info(
            "portal attached: boot %#x, %d syscalls (%d known), %d compat (%d known)",
            self.boot_id,
            region.nr_syscalls,
            sum(m.known for m in self.syscalls),
            region.nr_syscalls32,
            sum(m.known for m in self.syscalls32),
        )

    def _open_bell(self, mm: mmap.mmap) -> None:
        if self.doorbell is None:
            return
        if not guest_can_ring(mm):
            log.warning("the guest module has no doorbell device: the poller polls when idle")
            return
        fallback = min(self.poll.fallback, MAX_BEAT_GAP, self.deadline_ms / 4000)
        self._bell = Doorbell(self.doorbell, fallback=fallback, after_spurious=self.poll.max_sleep)

    def _live(self) -> mmap.mmap:
        if self.failure is not None:
            raise self.failure
        if self._mm is None:
            raise PortalError("the portal is not attached")
        return self._mm

    # -- the poller -----------------------------------------------------------

    async def _poll_loop(self) -> None:
        """Poll the region until it is lost or the poller is cancelled.

        Each pass: move the heartbeat, drain the rings if a head moved, scan
        the slots if the doorbell word moved (or a slot was mid-write), check
        that the module is still there; then wait as :class:`PollPolicy` says.
        With the C scan (:mod:`.cscan`) the pass's checks are one C call, and
        while the loop has nothing else to run the spin waits for news in C
        (``PollPolicy.c_wait``) instead of a turn of the event loop per look."""
        region = self._region
        slots = self._slots
        assert region is not None and slots is not None
        mm = region.mm
        policy = self.poll
        fast = slots.impl == "c"
        lib: Any = cscan.lib() if fast else None
        state: Any = None
        ready: Any = None
        if lib is not None:
            state = cscan.ffi.new("struct sa_pass_state *")
            state.region = region.cpointer()
            state.size = len(mm)
            state.boot_id = region.boot_id
            # not the word now: the first pass scans, as with last_bell = -1
            state.last_bell = (U64.unpack_from(mm, DOORBELL_OFF)[0] + 1) & MASK64
            if policy.c_wait > 0:
                # asyncio's own queue of ready callbacks (CPython's event
                # loops; another loop without it never waits in C)
                ready = getattr(asyncio.get_running_loop(), "_ready", None)
        wait_ns = int(policy.c_wait * 1e9)
        last_bell = -1
        last_activity = last_counters = time.monotonic()
        sleep = policy.min_sleep
        yield_after = policy.yield_after
        rescan = False
        news = 0  # what the C wait found, for the next pass
        turned = True  # the last pass gave the event loop a turn
        while True:
            if lib is None:
                region.beat()
                drained = self.drain_rings()
                bell = U64.unpack_from(mm, DOORBELL_OFF)[0]
                moved = bell != last_bell
                last_bell = bell
                flags = cscan.PASS_GONE
            else:
                flags = lib.sa_pass(state) | news
                news = 0
                drained = self.drain_rings() if flags & cscan.PASS_RINGS else 0
                moved = bool(flags & cscan.PASS_BELL)
            now = time.monotonic()
            if drained or moved:
                # only news counts as activity: a slot a guest leaves
                # mid-write forever must not keep the poller busy
                last_activity = now
                sleep = policy.min_sleep
            if moved or rescan:
                rescan = self._scan()
            lost = region.gone() if flags & cscan.PASS_GONE else ""
            if lost:
                self._lost(PortalLost(lost))
                return
            if now - last_counters >= _COUNTERS_PERIOD:
                last_counters = now
                self._check_counters(mm)
            doorbell = self._bell if self._bell is not None and self._bell.alive else None
            spin = policy.bell_spin if doorbell is not None else policy.spin
            quiet = now - last_activity
            if quiet < spin:
                if yield_after is not None and quiet >= yield_after:
                    os.sched_yield()
                # nothing else to run: look for news in C (the GIL released)
                # instead of a loop turn per look, until the spin starts to
                # give the CPU away; news is taken by the next pass at once,
                # but the loop gets a turn at least every second pass
                until = spin if yield_after is None else min(spin, yield_after)
                if ready is not None and turned and not ready and quiet < until:
                    news = lib.sa_wait_news(state, min(wait_ns, int((until - quiet) * 1e9)))
                    if news:
                        turned = False
                        continue
                turned = True
                await asyncio.sleep(0)
            elif doorbell is not None:
                if lib is not None:
                    last_bell = int(state.last_bell)
                await doorbell.sleep(mm, functools.partial(self._news, mm, last_bell))
            else:
                await asyncio.sleep(sleep)
                sleep = min(sleep * 2, policy.max_sleep)

    def _news(self, mm: mmap.mmap, last_bell: int) -> bool:
        """The poller's last look before it sleeps: True if any message source
        has something it has not taken (the guest bumps ``doorbell`` on every
        slot message and when it unloads, and moves a ring's head for every
        record, before it rings)."""
        if U64.unpack_from(mm, DOORBELL_OFF)[0] != last_bell:
            return True
        return self._rings.news(mm)

    def drain_rings(self) -> int:
        """Take every record of every ring; returns how many were taken.

        The work is bounded by the rings' sizes: each ring is copied once
        from its consumer position to its producer position as read now."""
        mm = self._mm
        if mm is None or self.failure is not None:
            return 0
        return self._rings.drain(mm)

    async def _observe_loop(self) -> None:
        """Hand observed events to the observer in ring order: each chunk the
        rings queued to ``batch_observer`` at once if there is one, else one
        event at a time to ``observer``.

        Chunks already queued are taken without a pass of the event loop each;
        the loop gets a turn at least every ``_OBSERVE_BATCH`` events (and
        whenever a handler awaits), so blocking traps are not held up."""
        rings = self._rings
        recv = rings.recv
        run = 0
        async with recv:
            while True:
                try:
                    chunk = recv.receive_nowait()
                except anyio.WouldBlock:
                    rings.progress.set()
                    try:
                        chunk = await recv.receive()
                    except anyio.EndOfStream:
                        return
                    run = 0
                except anyio.EndOfStream:
                    return
                if self.batch_observer is not None:
                    try:
                        await self.batch_observer(chunk)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        self.host_counters.handler_errors += 1
                        log.exception("observer failed on %d events", len(chunk))
                    finally:
                        rings.done += len(chunk)
                    run += len(chunk)
                else:
                    for trap in chunk:
                        try:
                            if self.observer is not None:
                                await self.observer(trap)
                        except asyncio.CancelledError:
                            raise
                        except Exception:
                            self.host_counters.handler_errors += 1
                            log.exception("observer failed on %s", trap.event)
                        finally:
                            rings.done += 1
                        run += 1
                        if run >= _OBSERVE_BATCH:
                            rings.progress.set()
                            await asyncio.sleep(0)
                            run = 0
                if run >= _OBSERVE_BATCH:
                    rings.progress.set()
                    await asyncio.sleep(0)
                    run = 0

    def _last_counters(self) -> None:
        """The counters an unloaded module left in the region, if they are
        still its (a reloaded module starts again from zero)."""
        if self._region is None:
            return
        try:
            now = self._region.counters()
        except PortalError:
            return
        before = self.last_guest_counters
        if all(getattr(now, f) >= getattr(before, f) for f in now.__struct_fields__):
            self.last_guest_counters = now

    def _check_counters(self, mm: mmap.mmap) -> None:
        """Warn on the ``syscalls`` logger about every loss the guest counted."""
        before = self._warned_counters
        try:
            now = decode.counters(mm[: C.SA_GUEST_SIZE])
        except PortalError:
            return
        self.last_guest_counters = self._warned_counters = now
        for name, what in _LOSSES.items():
            grew = getattr(now, name) - getattr(before, name)
            if grew > 0:
                log.warning("guest: %s (%s: %d)", what.format(n=grew), name, getattr(now, name))

    @property
    def _tasks(self) -> set[asyncio.Task[None]]:
        """Every trap's handler task not yet ended: aclose() cancels and awaits them."""
        return set().union(*self._slot_tasks)

    async def _guarded_poll(self) -> None:
        try:
            await self._poll_loop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("portal poller failed")
            self._lost(PortalError(f"portal poller failed: {exc!r}"))

    def _lost(self, err: PortalError) -> None:
        self._last_counters()
        self.failure = err
        self._failed.set()
        for trap in list(self._active.values()):
            trap._fail(err)
        self._active.clear()

    def _scan(self) -> bool:
        """Take every new slot message; True if a slot was mid-write (look again)."""
        slots = self._slots
        assert slots is not None
        for message in slots.scan():
            self._message(message)
        return slots.mid_write

    def _message(self, m: EventMsg | ResponseMsg | AbandonMsg | UnknownMsg) -> None:
        match m:
            case EventMsg():
                self._on_event(m)
            case ResponseMsg():
                self._on_response(m)
            case AbandonMsg(slot=slot, epoch=epoch):
                trap = self._active.get(slot)
                if trap is not None and trap.event.epoch == epoch:
                    del self._active[slot]
                    self._gave_up(trap, "stopped waiting")
                elif self._answered.get(slot) == epoch:
                    del self._answered[slot]
                    self._late(
                        "slot %d: the guest task gave up just as its verdict was written", slot
                    )
            case UnknownMsg(slot=slot, msg=msg):
                self.host_counters.refused += 1
                log.warning("slot %d: unknown message %d refused", slot, msg)

    def _on_event(self, m: EventMsg) -> None:
        slot, seq, epoch = m.slot, m.seq, m.epoch
        old = self._active.get(slot)
        if old is not None and old.event.epoch == epoch:
            # the module changes the epoch on every claim: this is no new trap
            self.host_counters.refused += 1
            log.warning("slot %d: event republished over its live trap refused", slot)
            return
        if old is not None:
            del self._active[slot]
            self._gave_up(old, "stopped waiting (its slot was reused)")
        table = self._hooktable.tables.get(m.hooks_gen)
        try:
            if table is None:
                raise PortalProtocolError(
                    f"slot {slot}: event names unknown hook table {m.hooks_gen}"
                )
            event = decode.event(m.data, slot, seq, len(table), self.arch.nr_base)
            marks = decode.string_marks(m.data)
            if marks is not None:
                event = self._with_strings(event, marks)
        except PortalProtocolError as exc:
            self.host_counters.refused += 1
            log.warning("event refused: %s", exc)
            self._live_slots().write(slot, epoch, seq, C.SA_MSG_VERDICT)
            return
        self.host_counters.events += 1
        ids = tuple(table[i].id for i in event.matched)
        trap = Trap(self, event, ids)
        self._active[slot] = trap
        before = {t for t in self._slot_tasks[slot] if not t.done()}
        if before:
            self.host_counters.slot_busy += 1
        # one set per slot holds the task until it ends (one done callback)
        task = trap._task = asyncio.get_running_loop().create_task(self._run(trap, before))
        tasks = self._slot_tasks[slot]
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _with_strings(self, event: RawEvent, marks: tuple[int, ...]) -> RawEvent:
        """The event with the strings the guest captured when it wrote it (in
        the slot's g2h area, which it writes again only for our requests)."""
        assert self._slots is not None
        body = self._slots.payload(event.slot, event.seq, decode.strings_length(marks))
        if body is None:  # written again meanwhile: the task moved on, nothing to read
            return event
        strings = decode.captured_strings(marks, body, f"slot {event.slot}")
        return msgspec.structs.replace(event, strings=strings)

    def _gave_up(self, trap: Trap, why: str) -> None:
        """The guest task of an unanswered trap no longer waits: its verdict is late."""
        self.host_counters.abandoned += 1
        e = trap.event
        trap._fail(TrapGone(f"guest task {e.pid} {why}"))
        self._late(
            "slot %d: %r[%d] %s %.2f s after the host last heard from it (guest deadline "
            "%g s): syscall %d went on without a verdict; its handler is cancelled",
            e.slot, e.comm, e.pid, why, time.monotonic() - trap._heard,
            self.deadline_ms / 1000, e.nr,
        )  # fmt: skip
        trap._cancel_handler()

    def _late(self, fmt: str, *args: object) -> None:
        self.host_counters.late_verdicts += 1
        n = self.host_counters.late_verdicts
        # every one is counted; a guest causing thousands gets a log line per power of two
        if n <= 16 or not n & (n - 1):
            log.warning(fmt + " [%d late verdicts so far]", *args, n)

    def _on_response(self, m: ResponseMsg) -> None:
        assert self._slots is not None
        slot, seq = m.slot, m.seq
        trap = self._active.get(slot)
        if trap is None or trap.event.epoch != m.epoch or not trap._expects(seq):
            self.host_counters.stale_responses += 1
            return
        status, length, count, rflags, fault_addr, nxt = _RESPONSE.unpack_from(
            m.data, _RESPONSE_OFF
        )
        if length > C.SA_SLOT_G2H_SIZE:
            self.host_counters.refused += 1
            trap._fail(PortalProtocolError(f"response of {length} bytes"))
            return
        payload = self._slots.payload(slot, seq, length)
        if payload is None:
            self.host_counters.stale_responses += 1
            return
        trap._respond(
            Response(
                seq=seq,
                status=status,
                count=count,
                flags=rflags,
                fault_addr=fault_addr,
                next=nxt,
                data=payload,
            )
        )

    async def _run(self, trap: Trap, before: set[asyncio.Task[None]]) -> None:
        try:
            if before:
                # the slot's previous handler was cancelled (its task stopped
                # waiting) and ends soon; one handler per slot at a time
                await asyncio.wait(before)
            if self.handler is not None:
                await self.handler(trap)
        except asyncio.CancelledError:
            pass
        except TrapGone:
            pass
        except Exception:
            self.host_counters.handler_errors += 1
            log.exception("handler failed on %s", trap.event)
        finally:
            self._finish(trap)

    def _finish(self, trap: Trap) -> None:
        """Send the trap's verdict, once, if its guest task still waits."""
        slot = trap.event.slot
        slots = self._slots
        if self._active.get(slot) is not trap or slots is None or self.failure:
            return
        del self._active[slot]
        trap._answered()
        self._answered[slot] = trap.event.epoch
        action, mask, retval, args = trap._verdict()
        slots.write(
            slot,
            trap.event.epoch,
            trap._seq,
            C.SA_MSG_VERDICT,
            action=action,
            args_mask=mask,
            retval=retval,
            args=args,
        )

    def _live_slots(self) -> SlotChannel:
        """The slot channel, if the portal is live (else its failure is raised)."""
        self._live()
        assert self._slots is not None
        return self._slots
