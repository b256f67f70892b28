"""Observe-only rings: decoding, hostile positions and lengths, drops accounting.

No QEMU: a bytearray (or the hostile tests' region file) plays the region and
this test writes records the way ``kernel/ring.c`` does.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_portal_hostile import FakeGuest

from syscalls_async.errors import PortalProtocolError
from syscalls_async.portal import HookSpec, ObservedTrap, Portal, ring
from syscalls_async.portal.abi import C, ffi, ring_offset
from syscalls_async.portal.types import CapturedString, Phase

SIZE = C.SA_RINGS_OFF + C.SA_RING_COUNT * C.SA_RING_STRIDE
H = "struct sa_ring_header"


def tables(gen: int) -> int | None:
    return 4 if gen == 7 else None


def rec(
    *,
    phase: int = C.SA_PHASE_ENTER,
    nr: int = 257,
    args: tuple[int, ...] = (1, 2, 3, 4, 5, 6),
    strings: dict[int, tuple[bytes, int]] | None = None,
    matched: int = 0b10,
    gen: int = 7,
    retval: int = 0,
    pid: int = 42,
) -> bytes:
    """One record as the guest writes it: header, strings, padding to 8."""
    r = ffi.new("struct sa_ring_rec *")
    r.type = C.SA_REC_EVENT
    r.phase = phase
    r.nr = nr
    r.pid = pid
    r.tgid = pid
    r.comm = b"watched"
    for i, a in enumerate(args):
        r.args[i] = a
    r.retval = retval
    r.matched[0] = matched
    r.hooks_gen = gen
    body = b""
    for i, (data, flags) in sorted((strings or {}).items()):
        r.str_len[i] = len(data)
        r.str_flags[i] = flags
        body += data
    r.len = (C.SA_REC_SIZE + len(body) + 7) // 8 * 8
    return (bytes(ffi.buffer(r)) + body).ljust(r.len, b"\0")


def pad(n: int) -> bytes:
    return struct.pack("<II", n, C.SA_REC_PAD).ljust(n, b"\xee")


class Region:
    """A region's rings, written as the guest writes them."""

    def __init__(self, size: int = C.SA_RING_DATA_MIN) -> None:
        self.mm = bytearray(SIZE)
        self.head = [0] * C.SA_RING_COUNT
        for i in range(C.SA_RING_COUNT):
            self.set(i, "size", size)

    def set(self, i: int, field: str, value: int) -> None:
        fmt = "<I" if field in ("size", "cpu") else "<Q"
        struct.pack_into(fmt, self.mm, ring_offset(i) + ffi.offsetof(H, field), value)

    def put(self, i: int, record: bytes) -> None:
        size = struct.unpack_from("<I", self.mm, ring_offset(i) + ffi.offsetof(H, "size"))[0]
        off = self.head[i] % size
        if len(record) > size - off:
            self.put(i, pad(size - off))
            off = 0
        base = ring_offset(i) + C.SA_RING_HDR_SIZE + off
        self.mm[base : base + len(record)] = record
        self.head[i] += len(record)
        self.set(i, "head", self.head[i])


def test_a_record_decodes_with_its_strings() -> None:
    data = rec(
        strings={
            1: (b"/etc/passwd", C.SA_STR_CAPTURED),
            2: (b"x" * C.SA_STR_CAP, C.SA_STR_CAPTURED | C.SA_STR_TRUNCATED),
            3: (b"", C.SA_STR_FAULT),
        }
    )
    [e], refused = ring.records(data, 3, tables)
    assert refused == []
    assert (e.observed, e.slot, e.phase, e.nr, e.pid, e.comm) == (
        True, 3, Phase.ENTER, 257, 42, "watched"
    )  # fmt: skip
    assert e.args == (1, 2, 3, 4, 5, 6) and e.matched == (1,) and e.hooks_gen == 7
    assert e.strings == (
        None,
        CapturedString(b"/etc/passwd"),
        CapturedString(b"x" * C.SA_STR_CAP, truncated=True),
        CapturedString(b"", fault=True),
        None,
        None,
    )


def test_return_records_carry_the_args_and_the_result() -> None:
    [e], _ = ring.records(rec(phase=C.SA_PHASE_RETURN, retval=-2), 0, tables)
    assert e.phase is Phase.RETURN and e.retval == -2 and e.args == (1, 2, 3, 4, 5, 6)


def test_a_span_across_the_end_of_the_ring_reads_in_order() -> None:
    region = Region()
    records = [rec(pid=p, strings={1: (bytes([65 + p]) * 200, 1)}) for p in range(40)]
    tail = 0
    seen: list[int] = []
    for r in records:
        region.put(0, r)
        if region.head[0] - tail > C.SA_RING_DATA_MIN - 2 * len(r):
            span = ring.read_span(region.mm, 0, tail)
            assert not span.refused
            events, refused = ring.records(span.data, 0, tables)
            assert refused == []
            seen += [e.pid for e in events]
            tail = span.head
    span = ring.read_span(region.mm, 0, tail)
    seen += [e.pid for e in ring.records(span.data, 0, tables)[0]]
    assert seen == list(range(40))
    assert region.head[0] > C.SA_RING_DATA_MIN  # it went round


@pytest.mark.parametrize(
    ("size", "head", "why"),
    [
        (0, 8, "size 0"),
        (C.SA_RING_DATA_MAX * 2, 8, "size"),
        (C.SA_RING_DATA_MIN + 8, 8, "size"),
        (C.SA_RING_DATA_MIN, C.SA_RING_DATA_MIN + 8, "moved"),
        (C.SA_RING_DATA_MIN, 2**64 - 8, "moved"),  # "behind" the tail
        (C.SA_RING_DATA_MIN, 12, "moved"),  # not a multiple of 8
    ],
)
def test_a_hostile_ring_state_is_refused(size: int, head: int, why: str) -> None:
    region = Region(size)
    region.set(2, "head", head)
    span = ring.read_span(region.mm, 2, 0)
    assert span.data == b"" and span.head == head and why in span.refused


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (struct.pack("<II", 4, C.SA_REC_PAD), "length 4"),
        (struct.pack("<II", 12, C.SA_REC_PAD) + b"\0" * 12, "length 12"),
        (struct.pack("<II", 64, C.SA_REC_PAD) + b"\0" * 8, "length 64"),
        (struct.pack("<II", 16, C.SA_REC_EVENT) + b"\0" * 8, "record of 16 bytes"),
        (struct.pack("<II", 16, 9) + b"\0" * 8, "type 9"),
        (rec(gen=8), "unknown hook table 8"),
        (rec(matched=1 << 4), "matched hook index 4"),
        (rec(nr=-1), "syscall number -1"),
        (rec(phase=3), "bad phase"),
        (rec(strings={0: (b"a\0b", 1)}), "NUL"),
        (rec(strings={0: (b"abc", 0)}), "3 bytes"),
        (rec(strings={0: (b"", 64)}), "flags"),
        (rec(strings={0: (b"y" * (C.SA_STR_CAP + 8), 1)}), "bytes"),
    ],
)
def test_bad_records_are_refused(data: bytes, why: str) -> None:
    events, refused = ring.records(data, 1, tables)
    assert events == [] and len(refused) == 1 and why in refused[0]


def test_strings_that_claim_more_than_the_record_are_refused() -> None:
    data = bytearray(rec(strings={0: (b"abcdefgh", 1)}))
    struct.pack_into("<H", data, ffi.offsetof("struct sa_ring_rec", "str_len"), 200)
    assert "do not fit" in ring.records(bytes(data), 0, tables)[1][0]


@given(st.binary(max_size=4096))
@settings(max_examples=300)
def test_fuzz_records(data: bytes) -> None:
    events, refused = ring.records(data, 0, tables)
    assert len(events) + len(refused) <= len(data) // 8 + 1


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.binary(max_size=512),
)
@settings(max_examples=300)
def test_fuzz_positions(size: int, head: int, tail: int, garbage: bytes) -> None:
    """Whatever the guest writes, the host copies at most one ring's size from
    inside the ring, and decoding it only ever refuses."""
    region = Region()
    region.set(5, "size", size)
    region.set(5, "head", head)
    base = ring_offset(5) + C.SA_RING_HDR_SIZE
    region.mm[base : base + len(garbage)] = garbage
    span = ring.read_span(region.mm, 5, tail)
    assert span.head == head
    assert len(span.data) <= C.SA_RING_DATA_MAX
    if span.data:
        assert not span.refused and len(span.data) == (head - tail) % 2**64
    try:
        ring.records(span.data, 5, tables)
    except PortalProtocolError:  # pragma: no cover - records() reports, never raises
        raise AssertionError("records() raised") from None


# -- a portal draining a fake guest's rings -------------------------------------------------


@pytest.fixture
async def guest(tmp_path: Path) -> AsyncIterator[FakeGuest]:
    g = FakeGuest(tmp_path / "shm")
    for i in range(C.SA_RING_COUNT):
        g.write(ring_offset(i) + ffi.offsetof(H, "size"), struct.pack("<I", C.SA_RING_DATA_MIN))
    acker = asyncio.create_task(g.ack_hooks())
    yield g
    acker.cancel()
    g.f.close()


def put(guest: FakeGuest, i: int, records: list[bytes]) -> None:
    head_off = ring_offset(i) + ffi.offsetof(H, "head")
    head = struct.unpack("<Q", guest.read(head_off, 8))[0]
    for r in records:
        off = head % C.SA_RING_DATA_MIN
        if len(r) > C.SA_RING_DATA_MIN - off:  # never across the end: pad to it first
            guest.write(ring_offset(i) + C.SA_RING_HDR_SIZE + off, pad(C.SA_RING_DATA_MIN - off))
            head += C.SA_RING_DATA_MIN - off
            off = 0
        guest.write(ring_offset(i) + C.SA_RING_HDR_SIZE + off, r)
        head += len(r)
    guest.write(head_off, struct.pack("<Q", head))


async def test_every_record_is_delivered_and_drops_are_counted(guest: FakeGuest) -> None:
    seen: list[ObservedTrap] = []

    async def observer(trap: ObservedTrap) -> None:
        seen.append(trap)

    async with Portal(guest.path, observer=observer) as portal:
        hooks = [HookSpec(id=10 + i, nr=39, observe=True) for i in range(3)]
        await portal.set_hooks(hooks)
        gen = portal.hooks_generation
        put(guest, 0, [rec(gen=gen, matched=0b011, pid=p) for p in range(5)])
        put(guest, 1, [rec(gen=gen, matched=0b100, pid=p) for p in range(5, 8)])
        # the guest's drop counts: per ring, and per hook by table position
        guest.write(ring_offset(1) + ffi.offsetof(H, "drops"), struct.pack("<Q", 9))
        guest.write(C.SA_HOOK_DROPS_OFF + 8 * 2, struct.pack("<Q", 9))
        await portal.flush_observed()
        assert sorted(t.event.pid for t in seen) == list(range(8))
        assert [t.hook_ids for t in seen if t.event.pid == 0] == [(10, 11)]
        assert portal.ring_drops() == (0, 9) + (0,) * (C.SA_RING_COUNT - 2)
        assert portal.hook_drops() == {12: 9}
        assert portal.ring_stats.records == 8 and portal.ring_stats.refused == 0
        # the host moved each ring's tail to what it took
        tail = struct.unpack("<Q", guest.read(ring_offset(1) + ring.TAIL_OFF, 8))[0]
        assert tail == 3 * len(rec())


async def test_a_full_host_queue_drops_and_counts(guest: FakeGuest) -> None:
    release = asyncio.Event()
    seen: list[int] = []

    async def observer(trap: ObservedTrap) -> None:
        await release.wait()
        seen.append(trap.event.pid)

    async with Portal(guest.path, observer=observer, observe_queue=2) as portal:
        await portal.set_hooks([HookSpec(id=5, nr=39, observe=True)])
        put(guest, 0, [rec(gen=portal.hooks_generation, matched=1, pid=p) for p in range(10)])
        portal.drain_rings()
        # one is being handled, two wait: seven found the queue full
        assert portal.ring_stats.queue_drops in (7, 8)
        release.set()
        await portal.flush_observed()
        assert len(seen) + portal.ring_stats.queue_drops == 10
        assert portal.hook_drops() == {5: portal.ring_stats.queue_drops}


async def test_a_guest_moving_its_head_wildly_is_refused_not_followed(guest: FakeGuest) -> None:
    async with Portal(guest.path) as portal:
        await portal.set_hooks([HookSpec(id=5, nr=39, observe=True)])
        for head in (2**63, 8, 2**64 - 8, 1 << 40):
            guest.write(ring_offset(3) + ffi.offsetof(H, "head"), struct.pack("<Q", head))
            portal.drain_rings()
        assert portal.ring_stats.refused >= 3 and portal.failure is None


async def test_flush_waits_for_what_was_recorded_not_for_an_endless_stream(
    guest: FakeGuest,
) -> None:
    seen: list[int] = []

    async def observer(trap: ObservedTrap) -> None:
        seen.append(trap.event.pid)
        # every event makes another one: the stream never ends
        put(guest, 0, [rec(gen=trap.event.hooks_gen, matched=1, pid=trap.event.pid + 1)])

    async with Portal(guest.path, observer=observer) as portal:
        await portal.set_hooks([HookSpec(id=5, nr=39, observe=True)])
        put(guest, 0, [rec(gen=portal.hooks_generation, matched=1, pid=p) for p in range(3)])
        await portal.flush_observed(timeout=10)
        assert seen[:3] == [0, 1, 2]


async def test_a_long_queue_of_observed_events_leaves_the_event_loop_turns(
    guest: FakeGuest,
) -> None:
    # queued events are handled without a loop pass each, but not all in one go:
    # blocking traps and everything else still get their turns
    seen: list[int] = []
    at_turn: list[int] = []

    async def observer(trap: ObservedTrap) -> None:
        seen.append(trap.event.pid)  # never suspends

    async with Portal(guest.path, observer=observer) as portal:
        await portal.set_hooks([HookSpec(id=5, nr=39, observe=True)])
        gen = portal.hooks_generation
        for _ in range(3):
            for i in range(C.SA_RING_COUNT):
                put(guest, i, [rec(gen=gen, matched=1, pid=p) for p in range(20)])
            portal.drain_rings()
        total = 3 * C.SA_RING_COUNT * 20
        asyncio.get_running_loop().call_soon(lambda: at_turn.append(len(seen)))
        await portal.flush_observed()
        assert len(seen) == total and portal.ring_stats.queue_drops == 0
        assert at_turn and at_turn[0] < total


async def test_hook_ids_follow_the_table_each_record_names(guest: FakeGuest) -> None:
    # the host memoizes position -> id per table generation: the same matched
    # positions in a newer table name other hooks
    seen: list[tuple[int, tuple[int, ...]]] = []

    async def observer(trap: ObservedTrap) -> None:
        seen.append((trap.event.pid, trap.hook_ids))

    async with Portal(guest.path, observer=observer) as portal:
        await portal.set_hooks([HookSpec(id=1, nr=39, observe=True)])
        old = portal.hooks_generation
        put(guest, 0, [rec(gen=old, matched=0b1, pid=1)])
        await portal.flush_observed()
        await portal.set_hooks([HookSpec(id=2, nr=39, observe=True)])
        # a record of the old table still in a ring, then one of the new
        put(guest, 0, [rec(gen=old, matched=0b1, pid=2)])
        put(guest, 0, [rec(gen=portal.hooks_generation, matched=0b1, pid=3)])
        await portal.flush_observed()
        assert seen == [(1, (1,)), (2, (1,)), (3, (2,))]


async def test_the_hook_id_memo_stays_bounded(guest: FakeGuest) -> None:
    # the guest chooses the matched words: ever new combinations must not grow it
    async with Portal(guest.path) as portal:
        await portal.set_hooks([HookSpec(id=10 + i, nr=39, observe=True) for i in range(10)])
        gen = portal.hooks_generation
        for first in range(1, 1024, 8):  # a few at a time: a small ring
            put(guest, 0, [rec(gen=gen, matched=m) for m in range(first, min(first + 8, 1024))])
            await portal.flush_observed()
        assert portal.ring_stats.records == 1023
        assert len(portal._rings._ids) <= 256
