"""The ring channel: observe-only events from the per-CPU rings, their queue, their drops.

:mod:`.ring` knows one ring's layout; a :class:`RingChannel` consumes all of
them for one host: it drains every ring from its consumer position to its
producer position, turns each record into an :class:`ObservedTrap` and queues
it on a memory object stream, in chunks of at most :data:`CHUNK` events in
ring order (one item per chunk, not per event: the observer may take a chunk
at once, :attr:`Portal.batch_observer`).  The queue is bounded in events
(``observe_queue``), and the overflow policy is drop-newest: an event that
finds the queue full is dropped and counted (``stats.queue_drops`` and per
hook), never waited for, so a slow observer cannot stop the poller.
"""

from __future__ import annotations

import asyncio
import logging
import math
import mmap

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..errors import InvalidValue
from . import ring
from .abi import C
from .hooks import HookSpec
from .hooktable import HookTable
from .ring import RingStats
from .trap import ObservedTrap
from .types import RawEvent

log = logging.getLogger("syscalls.portal")

#: default bound of the queue of observed events waiting for the observer
OBSERVE_QUEUE = 65536
#: (table generation, matched positions) -> hook ids kept at most
_IDS_MEMO = 256
#: observed events queued as one item at most (the observer loop gives the
#: event loop a turn after each chunk)
CHUNK = 256


def check_observe_options(ring_size: int | None, observe_queue: int) -> None:
    """Refuse a ring size or queue bound the portal cannot use (:class:`InvalidValue`)."""
    if ring_size is not None and (
        isinstance(ring_size, bool)
        or not isinstance(ring_size, int)
        or not C.SA_RING_DATA_MIN <= ring_size <= C.SA_RING_DATA_MAX
        or ring_size & (ring_size - 1)
    ):
        raise InvalidValue(
            f"ring_size must be a power of two from {C.SA_RING_DATA_MIN} to "
            f"{C.SA_RING_DATA_MAX}, not {ring_size!r}"
        )
    if isinstance(observe_queue, bool) or not isinstance(observe_queue, int) or observe_queue < 1:
        raise InvalidValue(f"observe_queue must be an int of at least 1, not {observe_queue!r}")


def _rare(n: int) -> bool:
    """Log the first 16 of a count, then one per power of two."""
    return n <= 16 or not n & (n - 1)


class RingChannel:
    """Every ring of the region, consumed by this host, and the observer's queue."""

    def __init__(self, hooktable: HookTable, observe_queue: int = OBSERVE_QUEUE) -> None:
        self.hooktable = hooktable
        self.stats = RingStats()
        self.tail = [0] * C.SA_RING_COUNT
        self._drops_base = [0] * C.SA_RING_COUNT
        self._drops_last = [0] * C.SA_RING_COUNT
        #: per hook id: observed events dropped (guest rings and host queue)
        self._hook_drops: dict[int, int] = {}
        self._hook_drops_seen: tuple[int, ...] = (0,) * C.SA_MAX_HOOKS
        self._ids: dict[tuple[int, tuple[int, ...]], tuple[int, ...]] = {}
        #: events that may wait for the observer at once
        self.bound = observe_queue
        # chunks of events; the bound in events is kept by _queue (each chunk
        # holds at least one, so the stream never holds more than `bound` items)
        self.send: MemoryObjectSendStream[list[ObservedTrap]]
        self.recv: MemoryObjectReceiveStream[list[ObservedTrap]]
        self.send, self.recv = anyio.create_memory_object_stream[list[ObservedTrap]](math.inf)
        #: observed events queued for the observer so far, and handled so far
        self.queued = self.done = 0
        #: set when the observer caught up or took a batch
        self.progress = asyncio.Event()

    def attach(self, mm: mmap.mmap | bytearray) -> None:
        """Start from the rings as they are: records of an earlier host's hooks
        are not this host's to deliver, drops before now are not its."""
        for i in range(C.SA_RING_COUNT):
            self.tail[i] = ring.head(mm, i)
            ring.write_tail(mm, i, self.tail[i])
            self._drops_base[i] = self._drops_last[i] = ring.drops(mm, i)
        self._hook_drops_seen = ring.hook_drops(mm)

    def news(self, mm: mmap.mmap | bytearray) -> bool:
        """True if some ring holds a record not yet taken."""
        tail = self.tail
        return any(ring.head(mm, i) != tail[i] for i in range(C.SA_RING_COUNT))

    def drain(self, mm: mmap.mmap | bytearray) -> int:
        """Take every record of every ring; returns how many were taken.

        The work is bounded by the rings' sizes: each ring is copied once
        from its consumer position to its producer position as read now."""
        taken = 0
        tail = self.tail
        for i in range(C.SA_RING_COUNT):
            span = ring.read_span(mm, i, tail[i])
            if span.head == tail[i]:
                continue
            tail[i] = span.head
            ring.write_tail(mm, i, span.head)
            if span.refused:
                self._refused(span.refused)
                continue
            events, refused = ring.records(
                span.data, i, self.hooktable.table_size, self.hooktable.nr_base
            )
            for why in refused:
                self._refused(why)
            if events:
                self._queue(events)
            taken += len(events) + len(refused)
        return taken

    def _refused(self, why: str) -> None:
        self.stats.refused += 1
        n = self.stats.refused
        if _rare(n):
            log.warning("ring record refused: %s [%d refused so far]", why, n)

    def _hook_ids(self, gen: int, matched: tuple[int, ...]) -> tuple[int, ...]:
        """The ids of the hooks at positions ``matched`` of table ``gen`` (memoized:
        the same few combinations come again and again; bounded, as the guest
        chooses the keys)."""
        key = (gen, matched)
        ids = self._ids.get(key)
        if ids is None:
            table = self.hooktable.tables[gen]
            ids = tuple(table[i].id for i in matched)
            if len(self._ids) >= _IDS_MEMO:
                self._ids.clear()
            self._ids[key] = ids
        return ids

    def _queue(self, events: list[RawEvent]) -> None:
        """Queue one span's events for the observer, in chunks; those that find
        the queue full (``bound`` events waiting) are dropped and counted."""
        self.stats.records += len(events)
        known = self._ids
        traps = []
        for e in events:
            key = (e.hooks_gen, e.matched)
            ids = known.get(key)
            if ids is None:
                ids = self._hook_ids(*key)
            traps.append(ObservedTrap(e, ids))
        room = max(0, self.bound - (self.queued - self.done))
        if len(traps) > room:
            self._dropped(traps[room:])
            del traps[room:]
        for start in range(0, len(traps), CHUNK):
            self.send.send_nowait(traps[start : start + CHUNK])
        self.queued += len(traps)

    def _dropped(self, traps: list[ObservedTrap]) -> None:
        before = self.stats.queue_drops
        self.stats.queue_drops += len(traps)
        drops = self._hook_drops
        for trap in traps:
            for hid in trap.hook_ids:
                drops[hid] = drops.get(hid, 0) + 1
        n = self.stats.queue_drops
        # as _rare for each count passed: one of the first 16, or a power of two
        if before < 16 or n.bit_length() > before.bit_length():
            log.warning(
                "observed event(s) dropped on the host: their handlers' queue is full "
                "[%d dropped so far]",
                n,
            )

    def ring_drops(self, mm: mmap.mmap | bytearray | None) -> tuple[int, ...]:
        """Per ring: records the guest dropped since attach (``mm``: read now;
        ``None``: the counts last read)."""
        if mm is not None:
            self._drops_last = [ring.drops(mm, i) for i in range(C.SA_RING_COUNT)]
        return tuple(
            max(0, now - base) for now, base in zip(self._drops_last, self._drops_base, strict=True)
        )

    def hook_drops(self, mm: mmap.mmap | bytearray | None) -> dict[int, int]:
        """Per hook id: its observed events dropped, in the guest or the queue."""
        if mm is not None:
            self.account_hook_drops(mm, self.hooktable.hooks)
        return {k: v for k, v in self._hook_drops.items() if v}

    def account_hook_drops(self, mm: mmap.mmap | bytearray, hooks: tuple[HookSpec, ...]) -> None:
        """Charge the guest's per-position drop counts to the hooks of ``hooks``."""
        now = ring.hook_drops(mm)
        for i, (n, before) in enumerate(zip(now, self._hook_drops_seen, strict=True)):
            if n > before and i < len(hooks):
                hid = hooks[i].id
                self._hook_drops[hid] = self._hook_drops.get(hid, 0) + n - before
        self._hook_drops_seen = now
