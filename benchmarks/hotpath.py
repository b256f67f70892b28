"""Host-only micro-benchmarks of the event path (issue 7.5), no guest.

``python -m benchmarks.hotpath [N]`` times, in this process, with a file
playing the shared region and this script playing the guest module:

- ``dispatch``: the dispatcher alone, one empty ``async def`` hook on getppid,
  against a fake trap (µs per event);
- ``dispatch_observed``: the same with a ``read_only`` hook and an observed
  event; ``dispatch_batch``: observed events through ``observe_batch`` in
  chunks of 256, a ``batch=True`` hook (µs per event);
- ``portal``: a blocking event published into a slot, found by the poller's
  scan, run through the dispatcher and answered (µs per event, up to the
  verdict written);
- ``portal_polled``: the same, but the event is found by the poller's own
  passes (the doorbell word moved, as the module moves it), not by a scan
  the benchmark calls: the poller's per-pass cost is in it;
- ``scan``: the slot channel alone, one scan that finds one new event;
- ``rings``: records written into two rings, drained, decoded and handed to a
  trivial read_only handler, one event at a time (events/s);
- ``rings_batch``: the same with a ``read_only=True, batch=True`` handler
  that reads each event's name and first argument (events/s).

``python -m benchmarks.hotpath [N] [NAME ...]`` runs only the named ones.

Times are the process's CPU time (other load on the host disturbs them less than
wall time); compare before/after in one run.
"""

from __future__ import annotations

import asyncio
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syscalls_async.portal import Portal
from syscalls_async.portal.abi import C, ffi, ring_offset, slot_offset
from syscalls_async.portal.ring import TAIL_OFF
from syscalls_async.portal.trap import ObservedTrap
from syscalls_async.syscalls.dispatch import Dispatcher
from syscalls_async.syscalls.registry import Registry
from syscalls_async.testing import fake_event
from syscalls_async.testing.fake import FakeTrap, bundled_prototypes

_G = "struct sa_guest_header"
_NR_SYSCALLS = 451
_HOST_SEQ = ffi.offsetof("struct sa_slot_host", "seq")


async def _empty(regs: Any, proto: Any, syscall: Any) -> None:
    pass


#: what the batch handler of ``rings_batch`` saw
_seen = [0]


async def _batch(events: Any) -> None:
    """A batch handler that touches what a watcher would: each event's name and arguments."""
    for event in events:
        if event.name and event.args is not None:
            _seen[0] += 1


def _dispatcher(read_only: bool = False, batch: bool = False) -> Dispatcher:
    table = bundled_prototypes()
    registry = Registry()
    if batch:
        registry.add(_batch, "on_sys_getppid_enter", read_only=True, batch=True)
    else:
        registry.add(_empty, "on_sys_getppid_enter", read_only=read_only)
    registry.bind(table)
    return Dispatcher(registry, table)


async def dispatch(n: int) -> float:
    """µs per event through the dispatcher."""
    d = _dispatcher()
    trap = FakeTrap(fake_event("getppid"), hook_ids=(1,))
    for _ in range(100):
        await d(trap)
    t = time.process_time()
    for _ in range(n):
        await d(trap)
    return (time.process_time() - t) / n * 1e6


async def dispatch_observed(n: int) -> float:
    """µs per observed event through the dispatcher (a read_only hook)."""
    d = _dispatcher(read_only=True)
    event = fake_event("getppid")
    trap = ObservedTrap(_observed(event), (1,))
    t = time.process_time()
    for _ in range(n):
        await d(trap)
    return (time.process_time() - t) / n * 1e6


async def dispatch_batch(n: int) -> float:
    """µs per observed event through ``observe_batch`` in chunks of 256, a batch
    hook whose handler reads each event's name and arguments."""
    d = _dispatcher(batch=True)
    chunk = [ObservedTrap(_observed(fake_event("getppid")), (1,))] * 256
    _seen[0] = 0
    rounds = max(1, n // len(chunk))
    t = time.process_time()
    for _ in range(rounds):
        await d.observe_batch(chunk)
    spent = time.process_time() - t
    assert _seen[0] == rounds * len(chunk)
    return spent / (rounds * len(chunk)) * 1e6


def _observed(event: Any) -> Any:
    import msgspec

    return msgspec.structs.replace(event, observed=True, strings=(None,) * 6, regs=())


class _Region:
    """A shared-region file with a ready guest header, written as the module does."""

    def __init__(self, path: Path) -> None:
        self.size = C.SA_REGION_MIN_SIZE
        with path.open("wb") as f:
            f.truncate(self.size)
        self.path = path
        self.f = path.open("r+b", buffering=0)
        import mmap

        self.mm = mmap.mmap(self.f.fileno(), self.size)
        g = ffi.new(_G + " *")
        g.version = C.SA_VERSION
        g.arch = C.SA_ARCH_X86_64
        g.region_size = self.size
        g.boot_id = 7
        g.state = C.SA_STATE_READY
        g.nr_syscalls = _NR_SYSCALLS
        g.max_hooks = C.SA_MAX_HOOKS
        g.slot_count = C.SA_SLOT_COUNT
        g.slot_size = C.SA_SLOT_SIZE
        g.magic = C.SA_MAGIC
        self.mm[C.SA_GUEST_OFF : C.SA_GUEST_OFF + ffi.sizeof(_G)] = bytes(ffi.buffer(g))
        meta = ffi.new("struct sa_meta[]", _NR_SYSCALLS)
        for nr in range(_NR_SYSCALLS):
            meta[nr].nr = nr
        raw = bytes(ffi.buffer(meta))
        self.mm[C.SA_META_OFF : C.SA_META_OFF + len(raw)] = raw
        self.seq = [0] * C.SA_SLOT_COUNT
        self.epoch = [0] * C.SA_SLOT_COUNT

    async def ack(self) -> None:
        gen_off = C.SA_HOST_OFF + ffi.offsetof("struct sa_host_header", "hooks_gen")
        ack_off = ffi.offsetof(_G, "hooks_ack")
        while True:
            self.mm[ack_off : ack_off + 4] = self.mm[gen_off : gen_off + 4]
            await asyncio.sleep(0.001)

    def publish(self, slot: int, gen: int, nr: int = 110) -> int:
        self.epoch[slot] += 1
        self.seq[slot] += 2
        g = ffi.new("struct sa_slot_guest *")
        g.hooks_gen = gen
        g.phase = C.SA_PHASE_ENTER
        g.nr = nr
        g.comm = b"bench"
        g.matched[0] = 1
        g.seq = self.seq[slot]
        g.epoch = self.epoch[slot]
        g.msg = C.SA_MSG_EVENT
        raw = bytes(ffi.buffer(g))
        off = slot_offset(slot)
        self.mm[off : off + len(raw)] = raw
        return self.seq[slot]

    def bell(self) -> None:
        """Bump the doorbell word, as the module does for every slot message."""
        off = C.SA_GUEST_OFF + ffi.offsetof(_G, "doorbell")
        struct.pack_into("<Q", self.mm, off, struct.unpack_from("<Q", self.mm, off)[0] + 1)

    def host_seq(self, slot: int) -> int:
        off = slot_offset(slot) + C.SA_SLOT_HOST_OFF + _HOST_SEQ
        return int(struct.unpack_from("<I", self.mm, off)[0])

    def records(self, ring: int, gen: int, count: int, nr: int = 110) -> None:
        """Append ``count`` event records to ``ring`` (wrapping), moving its head."""
        r = ffi.new("struct sa_ring_rec *")
        r.len = C.SA_REC_SIZE
        r.type = C.SA_REC_EVENT
        r.phase = C.SA_PHASE_ENTER
        r.nr = nr
        r.comm = b"bench"
        r.hooks_gen = gen
        r.matched[0] = 1
        rec = bytes(ffi.buffer(r))
        base = ring_offset(ring)
        size = C.SA_RING_DATA_MAX
        struct.pack_into("<I", self.mm, base + ffi.offsetof("struct sa_ring_header", "size"), size)
        head = struct.unpack_from("<Q", self.mm, base)[0]
        data = base + C.SA_RING_HDR_SIZE
        for _ in range(count):
            pos = head & (size - 1)
            if pos + len(rec) > size:  # a record never wraps: pad to the end
                pad = struct.pack("<II", size - pos, C.SA_REC_PAD)
                self.mm[data + pos : data + pos + 8] = pad
                head += size - pos
                pos = 0
            self.mm[data + pos : data + pos + len(rec)] = rec
            head += len(rec)
        struct.pack_into("<Q", self.mm, base, head)

    def tail(self, ring: int) -> int:
        return int(struct.unpack_from("<Q", self.mm, ring_offset(ring) + TAIL_OFF)[0])


async def _with_portal(
    fn: Callable[[Portal, _Region], Any], *, read_only: bool = False, batch: bool = False
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        region = _Region(Path(tmp) / "shm")
        acker = asyncio.create_task(region.ack())
        d = _dispatcher(read_only, batch)
        try:
            async with Portal(region.path) as portal:
                # as a Session wires them
                portal.handler = portal.observer = d
                portal.batch_observer = d.observe_batch
                specs, _ = d.registry.table()
                await portal.set_hooks(specs)
                result: float = await fn(portal, region)
                return result
        finally:
            acker.cancel()
            region.mm.close()
            region.f.close()


async def portal(n: int) -> float:
    """µs per blocking event: publish, scan, dispatch, verdict."""

    async def run(p: Portal, region: _Region) -> float:
        gen = p.hooks_generation
        t = time.process_time()
        for i in range(n):
            slot = i % C.SA_SLOT_COUNT
            seq = region.publish(slot, gen)
            p._scan()
            while region.host_seq(slot) != seq:  # noqa: ASYNC110 - shared memory has no event
                await asyncio.sleep(0)
        return (time.process_time() - t) / n * 1e6

    return await _with_portal(run)


async def portal_polled(n: int) -> float:
    """µs per blocking event found by the poller itself: publish, ring the
    doorbell word (as the guest does for every slot message), let the poller's
    passes find it, dispatch, verdict."""

    async def run(p: Portal, region: _Region) -> float:
        gen = p.hooks_generation
        t = time.process_time()
        for i in range(n):
            slot = i % C.SA_SLOT_COUNT
            seq = region.publish(slot, gen)
            region.bell()
            while region.host_seq(slot) != seq:  # noqa: ASYNC110 - shared memory has no event
                await asyncio.sleep(0)
        return (time.process_time() - t) / n * 1e6

    return await _with_portal(run)


async def scan(n: int) -> float:
    """µs per slot scan that finds one new event (the slot channel alone)."""
    from syscalls_async.portal.region import Region
    from syscalls_async.portal.slots import SlotChannel

    with tempfile.TemporaryDirectory() as tmp:
        fake = _Region(Path(tmp) / "shm")
        region = await Region.attach(fake.path, 1.0)
        try:
            ch = SlotChannel(region)
            publish = [fake.publish(i % C.SA_SLOT_COUNT, 1) for i in range(C.SA_SLOT_COUNT)]
            assert len(ch.scan()) == len(publish)
            spent = 0.0
            for i in range(n):
                fake.publish(i % C.SA_SLOT_COUNT, 1)
                t = time.process_time()
                ch.scan()
                spent += time.process_time() - t
            return spent / n * 1e6
        finally:
            region.close(detach=False)
            fake.mm.close()
            fake.f.close()


async def rings(n: int, *, batched: bool = False) -> float:
    """Observed events/s: records drained from the rings and handled."""
    batch = 2000
    _seen[0] = 0

    async def run(p: Portal, region: _Region) -> float:
        gen = p.hooks_generation
        done = 0
        spent = 0.0
        while done < n:
            for ring in range(2):
                region.records(ring, gen, batch // 2)
            t = time.process_time()
            p.drain_rings()
            await p.flush_observed()
            spent += time.process_time() - t
            done += batch
        assert p.ring_stats.records == done and not p.ring_stats.refused
        assert not batched or _seen[0] == done
        return done / spent

    return await _with_portal(run, read_only=True, batch=batched)


async def rings_batch(n: int) -> float:
    """Observed events/s with a batch handler (``read_only=True, batch=True``)."""
    return await rings(n, batched=True)


async def main(n: int, names: list[str], rounds: int = 3) -> None:
    """Each figure is the best of ``rounds`` (the least disturbed by other load)."""
    cases = (
        ("dispatch", dispatch, n, "µs/event"),
        ("dispatch_observed", dispatch_observed, n, "µs/event"),
        ("dispatch_batch", dispatch_batch, n * 4, "µs/event"),
        ("portal", portal, n, "µs/event"),
        ("portal_polled", portal_polled, n, "µs/event"),
        ("scan", scan, n, "µs/scan"),
        ("rings", rings, n * 4, "events/s"),
        ("rings_batch", rings_batch, n * 4, "events/s"),
    )
    unknown = set(names) - {c[0] for c in cases}
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; known: {[c[0] for c in cases]}")
    for name, fn, count, unit in cases:
        if names and name not in names:
            continue
        runs = [await fn(count) for _ in range(rounds)]
        best = max(runs) if unit == "events/s" else min(runs)
        print(f"{name:18} {best:10.2f} {unit}  (runs: {', '.join(f'{r:.2f}' for r in runs)})")


if __name__ == "__main__":
    argv = sys.argv[1:]
    count = int(argv.pop(0)) if argv and argv[0].isdigit() else 20000
    asyncio.run(main(count, argv))
