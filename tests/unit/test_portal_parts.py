"""The portal's parts one at a time, on a fake guest's region (no QEMU)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from test_portal_hostile import FakeGuest, valid_event

from syscalls_async.errors import PortalError, PortalVersionError
from syscalls_async.portal.abi import HOST_HEARTBEAT_OFF, HOST_HOOKS_GEN_OFF, C, ffi, slot_offset
from syscalls_async.portal.hooks import HookSpec
from syscalls_async.portal.hooktable import KEEP_TABLES, HookTable
from syscalls_async.portal.region import Region
from syscalls_async.portal.rings import RingChannel
from syscalls_async.portal.slots import (
    AbandonMsg,
    EventMsg,
    ResponseMsg,
    SlotChannel,
    UnknownMsg,
)

G = "struct sa_guest_header"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeGuest]:
    g = FakeGuest(tmp_path / "shm")
    yield g
    g.f.close()


async def _region(fake: FakeGuest) -> Region:
    return await Region.attach(fake.path, timeout=1.0)


# -- the region ---------------------------------------------------------------


async def test_region_attach_reads_the_header(fake: FakeGuest) -> None:
    region = await _region(fake)
    try:
        assert region.boot_id == 0x1234
        assert region.nr_syscalls == 451
        assert len(region.syscalls()) == 451
        assert region.gone() == ""
        assert region.busy_slots() == 0
    finally:
        region.close(detach=False)


async def test_region_refuses_a_small_file(tmp_path: Path) -> None:
    path = tmp_path / "small"
    path.write_bytes(b"\0" * 4096)
    with pytest.raises(PortalVersionError, match="too small"):
        await Region.attach(path, timeout=0.1)


async def test_region_says_why_it_is_gone(fake: FakeGuest) -> None:
    region = await _region(fake)
    try:
        fake.write(ffi.offsetof(G, "boot_id"), struct.pack("<I", 0x4321))
        assert "reloaded" in region.gone()
        fake.write(ffi.offsetof(G, "magic"), struct.pack("<Q", 0))
        assert "unloaded" in region.gone()
    finally:
        region.close(detach=False)


async def test_region_heartbeat_and_attached_flag(fake: FakeGuest) -> None:
    region = await _region(fake)
    before = struct.unpack("<Q", fake.read(HOST_HEARTBEAT_OFF, 8))[0]
    region.beat()
    assert struct.unpack("<Q", fake.read(HOST_HEARTBEAT_OFF, 8))[0] == before + 1
    region.set_attached(1234)
    attached = C.SA_HOST_OFF + ffi.offsetof("struct sa_host_header", "attached")
    assert fake.u32(attached) == 1
    region.close(detach=True)
    assert fake.u32(attached) == 0


# -- the slot channel ---------------------------------------------------------


async def test_slot_channel_yields_typed_messages(fake: FakeGuest) -> None:
    region = await _region(fake)
    try:
        ch = SlotChannel(region)
        assert ch.scan() == []
        fake.publish(1, valid_event(7), C.SA_MSG_EVENT)
        fake.publish(2, b"", C.SA_MSG_RESPONSE)
        fake.publish(3, b"", C.SA_MSG_ABANDON)
        fake.publish(4, b"", 99)
        kinds = ch.scan()
        assert not ch.mid_write
        match kinds:
            case [EventMsg(), ResponseMsg(), AbandonMsg(), UnknownMsg()]:
                pass
            case _:
                pytest.fail(f"unexpected messages {kinds}")
        event = kinds[0]
        assert isinstance(event, EventMsg)
        assert (event.slot, event.seq, event.epoch, event.hooks_gen) == (1, 2, 1, 7)
        assert kinds[3] == UnknownMsg(4, 99)
        # each message is taken once
        assert ch.scan() == []
    finally:
        region.close(detach=False)


async def test_slot_channel_skips_a_slot_mid_write(fake: FakeGuest) -> None:
    region = await _region(fake)
    try:
        ch = SlotChannel(region)
        fake.write(slot_offset(5) + 4, struct.pack("<I", 1))  # odd: the guest is writing
        assert ch.scan() == []
        assert ch.mid_write
        fake.publish(5, b"", C.SA_MSG_ABANDON)
        assert ch.scan() == [AbandonMsg(5, 1)]
        assert not ch.mid_write
    finally:
        region.close(detach=False)


async def test_slot_channel_writes_seq_last(fake: FakeGuest) -> None:
    region = await _region(fake)
    try:
        ch = SlotChannel(region)
        ch.write(6, 9, 4, C.SA_MSG_VERDICT, action=1, retval=-13, args=(1, 2, 3, 4, 5, 6))
        h: Any = fake.host_part(6)
        assert (h.seq, h.epoch, h.msg, h.action, h.retval) == (4, 9, C.SA_MSG_VERDICT, 1, -13)
        assert list(h.args) == [1, 2, 3, 4, 5, 6]
        ch.write(6, 9, 6, C.SA_MSG_REQUEST, b"abc", req=2, length=3)
        off = slot_offset(6) + C.SA_SLOT_H2G_OFF
        assert fake.read(off, 3) == b"abc"
    finally:
        region.close(detach=False)


# -- the hook table -----------------------------------------------------------


async def test_hook_table_generations(fake: FakeGuest) -> None:
    region = await _region(fake)
    try:
        table = HookTable()
        table.attach(region.mm)
        assert table.gen == 0
        gens = [table.publish(region.mm, [HookSpec(id=n, nr=39)]) for n in range(12)]
        assert gens == list(range(1, 13))
        assert fake.u32(HOST_HOOKS_GEN_OFF) == 12
        assert sorted(table.tables) == list(range(13 - KEEP_TABLES, 13))
        assert table.table_size(12) == 1
        assert table.table_size(1) is None
        with pytest.raises(PortalError, match="did not take"):
            await table.wait_ack(lambda: region.mm, 12, 0.01)
        fake.write(ffi.offsetof(G, "hooks_ack"), struct.pack("<I", 12))
        mm = await asyncio.wait_for(table.wait_ack(lambda: region.mm, 12, 1.0), 2.0)
        table.commit(mm, 12, [HookSpec(id=11, nr=39)])
        assert [h.id for h in table.hooks] == [11]
        fake.write(ffi.offsetof(G, "hooks_status"), struct.pack("<i", -22))
        with pytest.raises(PortalError, match="errno 22"):
            table.commit(mm, 12, [])
        assert [h.id for h in table.hooks] == [11]
    finally:
        region.close(detach=False)


# -- the ring channel ---------------------------------------------------------


def test_ring_channel_drains_every_ring_and_drops_the_newest_when_full() -> None:
    from test_portal_ring import Region as Rings
    from test_portal_ring import rec

    table = HookTable()
    table.tables[7] = (HookSpec(id=1, nr=39, observe=True), HookSpec(id=2, nr=39, observe=True))
    ch = RingChannel(table, observe_queue=2)
    rings = Rings()
    rings.put(0, rec(gen=7, matched=0b10, pid=99))  # an earlier host's: not delivered
    ch.attach(rings.mm)
    assert not ch.news(rings.mm)
    for pid in range(3):
        rings.put(1, rec(gen=7, matched=0b10, pid=pid))
    assert ch.news(rings.mm)
    assert ch.drain(rings.mm) == 3
    assert (ch.stats.records, ch.stats.queue_drops, ch.queued) == (3, 1, 2)
    assert ch.hook_drops(None) == {2: 1}
    # one span is one chunk, in ring order
    assert [t.event.pid for t in ch.recv.receive_nowait()] == [0, 1]
    with pytest.raises(anyio.WouldBlock):
        ch.recv.receive_nowait()
    assert not ch.news(rings.mm) and ch.drain(rings.mm) == 0
    assert ch.ring_drops(rings.mm) == (0,) * C.SA_RING_COUNT
