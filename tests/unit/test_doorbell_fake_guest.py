"""The poller's doorbell against a fake guest: a socket pair plays QEMU's
debugcon device, the test plays the module (it rings as ``kernel/doorbell.c``
does: only while the host's sleeping word holds a token it has not rung for).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_portal_hostile import FakeGuest, valid_event
from test_portal_ring import put, rec

from syscalls_async.machine.qemu import BELL_PORT
from syscalls_async.portal import HookSpec, ObservedTrap, PollPolicy, Portal, Trap
from syscalls_async.portal.abi import C, ffi, ring_offset
from syscalls_async.portal.doorbell import DRAIN_LIMIT, SLEEPING_OFF

G = "struct sa_guest_header"
RUNG_OFF = ffi.offsetof(G, "bell_rung")


class BelledGuest(FakeGuest):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.write(ffi.offsetof(G, "bell_port"), struct.pack("<I", C.SA_BELL_PORT))
        self.host_end, self.guest_end = socket.socketpair()
        self.rings = 0

    def ring(self) -> None:
        """What sa_doorbell() does after a message is published."""
        token = self.u32(SLEEPING_OFF)
        if token and self.u32(RUNG_OFF) != token:
            self.write(RUNG_OFF, struct.pack("<I", token))
            self.guest_end.send(b"\1")
            self.rings += 1

    def event(self, slot: int, gen: int, *, ring: bool = True) -> int:
        seq = self.publish(slot, valid_event(gen), C.SA_MSG_EVENT)
        if ring:
            self.ring()
        return seq

    def close(self) -> None:
        self.host_end.close()
        self.guest_end.close()
        self.f.close()


@pytest.fixture
async def guest(tmp_path: Path) -> AsyncIterator[BelledGuest]:
    g = BelledGuest(tmp_path / "shm")
    acker = asyncio.create_task(g.ack_hooks())
    yield g
    acker.cancel()
    g.close()


async def _answered(guest: FakeGuest, slot: int, seq: int, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        # the fake guest has no wait queue: it looks at its slot like the module
        while guest.host_part(slot).seq != seq:  # type: ignore[attr-defined]
            await asyncio.sleep(0.001)


def test_the_machine_wires_the_port_the_module_rings() -> None:
    assert BELL_PORT == C.SA_BELL_PORT


async def test_a_sleeping_host_is_woken_by_the_bell_every_time(guest: BelledGuest) -> None:
    fds = len(os.listdir("/proc/self/fd"))
    async with Portal(guest.path, doorbell=guest.host_end.fileno()) as portal:
        assert portal.sleeps_on_bell
        for i in range(50):
            await portal.wait_asleep()
            assert guest.u32(SLEEPING_OFF) != 0
            seq = guest.event(i % C.SA_SLOT_COUNT, portal.hooks_generation)
            await _answered(guest, i % C.SA_SLOT_COUNT, seq)
        bell = portal.bell_counters
        assert guest.rings == 50
        assert bell.bell_wakeups == 50
        assert bell.fallback_wakeups == 0
        assert bell.spurious == 0
    assert guest.u32(SLEEPING_OFF) == 0  # a detached host leaves no token behind
    assert len(os.listdir("/proc/self/fd")) == fds  # its duplicate of the bell is closed
    guest.host_end.getsockname()  # and the caller's is not


async def test_a_ring_record_wakes_a_sleeping_host(guest: BelledGuest) -> None:
    for i in range(C.SA_RING_COUNT):
        off = ring_offset(i) + ffi.offsetof("struct sa_ring_header", "size")
        guest.write(off, struct.pack("<I", C.SA_RING_DATA_MIN))
    seen: list[int] = []
    arrived = asyncio.Event()

    async def observer(trap: ObservedTrap) -> None:
        seen.append(trap.event.pid)
        arrived.set()

    bell = guest.host_end.fileno()
    async with Portal(guest.path, observer=observer, doorbell=bell) as portal:
        await portal.set_hooks([HookSpec(id=5, nr=39, observe=True)])
        for pid in range(5):
            await portal.wait_asleep()
            arrived.clear()
            put(guest, pid % 2, [rec(gen=portal.hooks_generation, matched=1, pid=pid)])
            guest.ring()  # what ring.c does after moving the head
            async with asyncio.timeout(10):
                await arrived.wait()
        assert seen == list(range(5))
        counters = portal.bell_counters
        # the host's last look before sleeping covers the rings, and so does its
        # look after the bell: no wake-up was lost or spurious
        assert counters.bell_wakeups == 5
        assert counters.fallback_wakeups == 0 and counters.spurious == 0


async def test_the_next_host_is_woken_too(guest: BelledGuest) -> None:
    # each host numbers its sleeps from 1: a token the guest already rang for
    # must never be reused, or the next host's first sleep would go unrung
    for _ in range(3):
        async with Portal(guest.path, doorbell=guest.host_end.fileno()) as portal:
            for i in range(3):
                await portal.wait_asleep()
                seq = guest.event(i, portal.hooks_generation)
                await _answered(guest, i, seq)
            assert portal.bell_counters.fallback_wakeups == 0
            assert portal.bell_counters.bell_wakeups == 3


async def test_a_lost_wake_up_is_found_by_the_fallback_and_counted(
    guest: BelledGuest, caplog: pytest.LogCaptureFixture
) -> None:
    policy = PollPolicy(fallback=0.05)
    async with Portal(guest.path, doorbell=guest.host_end.fileno(), poll=policy) as portal:
        await portal.wait_asleep()
        seq = guest.event(3, portal.hooks_generation, ring=False)
        await _answered(guest, 3, seq)
        assert portal.bell_counters.fallback_wakeups == 1
    assert "without ringing the doorbell" in caplog.text


async def test_ticks_without_news_are_liveness_only(guest: BelledGuest) -> None:
    policy = PollPolicy(fallback=0.01)
    async with Portal(guest.path, doorbell=guest.host_end.fileno(), poll=policy) as portal:
        hb_off = C.SA_HOST_OFF + ffi.offsetof("struct sa_host_header", "heartbeat")
        beat = struct.unpack("<Q", guest.read(hb_off, 8))[0]
        async with asyncio.timeout(10):
            while portal.bell_counters.timer_wakeups < 3:
                await portal.wait_asleep()
                await asyncio.sleep(0)
        assert struct.unpack("<Q", guest.read(hb_off, 8))[0] > beat  # the guest sees a host
        assert portal.bell_counters.fallback_wakeups == 0


async def test_a_guest_ringing_without_pause_gets_bounded_host_time(guest: BelledGuest) -> None:
    stop = threading.Event()

    def flood() -> None:
        guest.guest_end.settimeout(0.05)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):  # full: the host reads at its pace
                guest.guest_end.send(b"\1" * 65536)

    async def handler(trap: Trap) -> None:
        pass

    flooder = threading.Thread(target=flood)
    async with Portal(guest.path, handler, doorbell=guest.host_end.fileno()) as portal:
        flooder.start()
        try:
            # the loop still runs other work, and traps are still answered
            async with asyncio.timeout(30):
                for _ in range(50):
                    await asyncio.sleep(0.001)
            async with asyncio.timeout(30):
                while portal.bell_counters.spurious < 5:
                    await asyncio.sleep(0.01)
            # the flood rings for it (a ring of our own could find the socket full)
            seq = guest.event(9, portal.hooks_generation, ring=False)
            await _answered(guest, 9, seq)
        finally:
            stop.set()
            await asyncio.to_thread(flooder.join)
        bell = portal.bell_counters
        # every wake-up read at most DRAIN_LIMIT bytes, and every spurious bell
        # was followed by a timed sleep rather than another wait on the bell
        wakeups = bell.bell_wakeups + bell.timer_wakeups + bell.sleeps_averted
        assert bell.bytes <= DRAIN_LIMIT * 2 * (wakeups + bell.timed_sleeps + 1)
        assert bell.timed_sleeps >= bell.spurious - 1
        assert portal.failure is None


async def test_a_closed_bell_falls_back_to_polling(
    guest: BelledGuest, caplog: pytest.LogCaptureFixture
) -> None:
    async with Portal(guest.path, doorbell=guest.host_end.fileno()) as portal:
        await portal.wait_asleep()
        guest.guest_end.close()  # QEMU went away
        async with asyncio.timeout(10):
            while portal.sleeps_on_bell:
                await asyncio.sleep(0.001)
        seq = guest.event(4, portal.hooks_generation, ring=False)
        await _answered(guest, 4, seq)
    assert "doorbell socket closed" in caplog.text


async def test_a_guest_without_a_bell_device_is_polled(
    guest: BelledGuest, caplog: pytest.LogCaptureFixture
) -> None:
    guest.write(ffi.offsetof(G, "bell_port"), struct.pack("<I", 0))
    with caplog.at_level(logging.WARNING, "syscalls.portal"):
        async with Portal(guest.path, doorbell=guest.host_end.fileno()) as portal:
            assert not portal.sleeps_on_bell
            seq = guest.event(2, portal.hooks_generation)
            await _answered(guest, 2, seq)
            assert guest.rings == 0  # the host never said it sleeps
    assert "no doorbell device" in caplog.text


# yield_after 1 s is longer than the whole 50 ms spin: no pass is quiet enough
@pytest.mark.parametrize(("yield_after", "yields"), [(50e-6, True), (None, False), (1.0, False)])
async def test_the_spin_after_a_message_gives_the_cpu_away(
    guest: BelledGuest, monkeypatch: pytest.MonkeyPatch, yield_after: float | None, yields: bool
) -> None:
    # After answering, the poller spins for bell_spin before it sleeps. On a
    # host with few cores, a spin that never gave the CPU away kept QEMU's main
    # loop (which fires the guest's timers, so wakes the guest task waiting for
    # the verdict) off the CPU for milliseconds: each pass yields.
    import syscalls_async.portal.portal as portal_module

    count = 0
    real_yield = os.sched_yield

    def counting_yield() -> None:
        nonlocal count
        count += 1
        real_yield()

    monkeypatch.setattr(portal_module.os, "sched_yield", counting_yield)
    policy = PollPolicy(bell_spin=0.05, yield_after=yield_after)
    async with Portal(guest.path, doorbell=guest.host_end.fileno(), poll=policy) as portal:
        await portal.wait_asleep()
        before = count
        seq = guest.event(2, portal.hooks_generation)
        await _answered(guest, 2, seq)
        await portal.wait_asleep()  # the spin after the message is over
        spun = count - before
    if yields:
        assert spun >= 10  # 50 ms of spin: many passes, each one yielding
    else:
        assert spun == 0
