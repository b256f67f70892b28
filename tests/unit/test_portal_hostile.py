"""The host poller against a fake guest that writes garbage into the region.

No QEMU: a 16 MiB file plays the shared region, this test plays the module.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from syscalls_async.errors import (
    OutOfRange,
    PortalError,
    PortalLost,
    PortalProtocolError,
    PortalVersionError,
    TrapGone,
)
from syscalls_async.portal import Portal, Trap, cscan
from syscalls_async.portal import trap as trap_module
from syscalls_async.portal.abi import C, ffi, slot_offset

SIZE = 16 * 1024 * 1024
NR_SYSCALLS = 451
G = "struct sa_guest_header"


class FakeGuest:
    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("wb") as f:
            f.truncate(SIZE)
        self.f = path.open("r+b", buffering=0)
        self.seq = [0] * C.SA_SLOT_COUNT
        self.epoch = [0] * C.SA_SLOT_COUNT
        g = ffi.new(G + " *")
        g.version = C.SA_VERSION
        g.arch = C.SA_ARCH_X86_64
        g.region_size = SIZE
        g.boot_id = 0x1234
        g.state = C.SA_STATE_READY
        g.nr_syscalls = NR_SYSCALLS
        g.max_hooks = C.SA_MAX_HOOKS
        g.slot_count = C.SA_SLOT_COUNT
        g.slot_size = C.SA_SLOT_SIZE
        g.magic = C.SA_MAGIC
        self.write(C.SA_GUEST_OFF, bytes(ffi.buffer(g)))
        meta = ffi.new("struct sa_meta[]", NR_SYSCALLS)
        for nr in range(NR_SYSCALLS):
            meta[nr].nr = nr
        self.write(C.SA_META_OFF, bytes(ffi.buffer(meta)))

    def write(self, off: int, data: bytes) -> None:
        self.f.seek(off)
        self.f.write(data)

    def read(self, off: int, n: int) -> bytes:
        self.f.seek(off)
        return self.f.read(n)

    def u32(self, off: int) -> int:
        return int(struct.unpack("<I", self.read(off, 4))[0])

    async def ack_hooks(self) -> None:
        gen_off = C.SA_HOST_OFF + ffi.offsetof("struct sa_host_header", "hooks_gen")
        while True:
            gen = self.u32(gen_off)
            self.write(ffi.offsetof(G, "hooks_ack"), struct.pack("<I", gen))
            await asyncio.sleep(0.001)

    def publish(self, slot: int, body: bytes, msg: int, epoch: int | None = None) -> int:
        """Write a guest message into ``slot`` the way the module does."""
        if epoch is None:
            self.epoch[slot] += 1
            epoch = self.epoch[slot]
        self.seq[slot] += 2
        size = C.SA_SLOT_GUEST_SIZE
        g = ffi.from_buffer("struct sa_slot_guest *", bytearray(body.ljust(size, b"\0")[:size]))
        g.seq = self.seq[slot]
        g.epoch = epoch
        g.msg = msg
        self.write(slot_offset(slot), bytes(ffi.buffer(g)))
        bell = ffi.offsetof(G, "doorbell")
        self.write(bell, struct.pack("<Q", struct.unpack("<Q", self.read(bell, 8))[0] + 1))
        return self.seq[slot]

    def host_part(self, slot: int) -> object:
        raw = self.read(slot_offset(slot) + C.SA_SLOT_HOST_OFF, C.SA_SLOT_HOST_SIZE)
        return ffi.from_buffer("struct sa_slot_host *", raw)


def valid_event(gen: int, nr: int = 39) -> bytes:
    g = ffi.new("struct sa_slot_guest *")
    g.hooks_gen = gen
    g.phase = C.SA_PHASE_ENTER
    g.nr = nr
    g.comm = b"evil"
    return bytes(ffi.buffer(g))


@pytest.fixture(autouse=True, params=["c", "python"])
def scan_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every test here runs with the C scan and with the Python one (the fallback)."""
    if request.param == "python":
        monkeypatch.setenv(cscan.ENV, "0")
    cscan.reset()
    if request.param == "c" and cscan.lib() is None:
        pytest.skip(f"no C scan here: {cscan.status()}")
    yield str(request.param)
    cscan.reset()


@pytest.fixture
async def guest(tmp_path: Path) -> AsyncIterator[FakeGuest]:
    g = FakeGuest(tmp_path / "shm")
    acker = asyncio.create_task(g.ack_hooks())
    yield g
    acker.cancel()
    g.f.close()


async def _until(cond: object, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        # shared memory has nothing to wait on but time
        while not cond():  # type: ignore[operator]
            await asyncio.sleep(0.001)


async def test_garbage_is_refused_and_counted(guest: FakeGuest) -> None:
    rng = random.Random(1234)
    seen: list[Trap] = []

    async def handler(trap: Trap) -> None:
        seen.append(trap)

    async with Portal(guest.path, handler) as portal:
        for i in range(2000):
            slot = rng.randrange(C.SA_SLOT_COUNT)
            body = rng.randbytes(C.SA_SLOT_GUEST_SIZE)
            msg = rng.choice([C.SA_MSG_EVENT, C.SA_MSG_RESPONSE, C.SA_MSG_ABANDON, 0, 99])
            seq = guest.publish(slot, body, msg)
            if i % 50 == 0:
                await _until(lambda s=slot, q=seq: portal._slots.last_seq[s] == q)
        slot = 5
        seq = guest.publish(slot, valid_event(portal.hooks_generation), C.SA_MSG_EVENT)
        await _until(lambda: guest.host_part(slot).seq == seq)  # type: ignore[attr-defined]
        assert portal.failure is None
        assert portal.host_counters.refused > 100
        assert seen and seen[-1].event.comm == "evil"
        h = guest.host_part(slot)
        assert h.msg == C.SA_MSG_VERDICT and h.action == 0  # type: ignore[attr-defined]


async def test_oversized_response_fails_the_request_not_the_host(guest: FakeGuest) -> None:
    errors: list[BaseException] = []

    async def handler(trap: Trap) -> None:
        try:
            await trap.read_bytes(0x1000, 16)
        except PortalProtocolError as exc:
            errors.append(exc)

    async with Portal(guest.path, handler) as portal:
        slot = 7
        seq = guest.publish(slot, valid_event(portal.hooks_generation), C.SA_MSG_EVENT)
        await _until(lambda: guest.host_part(slot).seq == seq)  # type: ignore[attr-defined]
        h = guest.host_part(slot)
        assert h.msg == C.SA_MSG_REQUEST and h.req == C.SA_REQ_READ  # type: ignore[attr-defined]
        resp = ffi.new("struct sa_slot_guest *")
        resp.len = 0xFFFFFFFF
        seq = guest.publish(slot, bytes(ffi.buffer(resp)), C.SA_MSG_RESPONSE, guest.epoch[slot])
        await _until(lambda: bool(errors))
        assert portal.failure is None
        assert portal.host_counters.refused == 1


async def test_wrong_version_is_refused(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path / "shm")
    g.write(ffi.offsetof(G, "version"), struct.pack("<I", C.SA_VERSION + 1))
    with pytest.raises(PortalVersionError, match="version"):
        async with Portal(g.path, attach_timeout=1.0):
            pass
    g.f.close()


async def test_second_host_is_refused(guest: FakeGuest) -> None:
    async with Portal(guest.path):
        with pytest.raises(PortalError, match="another host"):
            async with Portal(guest.path):
                pass
    # a host that left cleanly, or died (heartbeat still), can be replaced
    async with Portal(guest.path):
        pass
    guest.write(C.SA_HOST_OFF + ffi.offsetof("struct sa_host_header", "attached"), b"\1\0\0\0")
    async with Portal(guest.path):
        pass


async def test_request_to_a_vanished_task_gives_up(
    guest: FakeGuest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trap_module, "_RESPONSE_MARGIN", 0.1)
    errors: list[BaseException] = []

    async def handler(trap: Trap) -> None:
        try:
            await trap.read_bytes(0x1000, 16)
        except TrapGone as exc:
            errors.append(exc)

    async with Portal(guest.path, handler, deadline_ms=100):
        guest.publish(3, valid_event(1), C.SA_MSG_EVENT)
        await _until(lambda: bool(errors))


async def test_a_trap_used_after_its_verdict_fails_at_once(guest: FakeGuest) -> None:
    kept: list[Trap] = []

    async def handler(trap: Trap) -> None:
        trap.skip(-1)
        kept.append(trap)

    async with Portal(guest.path, handler, deadline_ms=3000) as portal:
        slot = 9
        seq = guest.publish(slot, valid_event(portal.hooks_generation), C.SA_MSG_EVENT)
        await _until(lambda: guest.host_part(slot).seq == seq)  # type: ignore[attr-defined]
        assert guest.host_part(slot).msg == C.SA_MSG_VERDICT  # type: ignore[attr-defined]
        with pytest.raises(TrapGone, match="already sent"):
            async with asyncio.timeout(1.0):  # not deadline + margin (8 s)
                await kept[0].read_bytes(0x1000, 4)
        # and nothing was written into the slot for it
        assert guest.host_part(slot).msg == C.SA_MSG_VERDICT  # type: ignore[attr-defined]


async def test_verdict_values_wider_than_64_bits_are_refused(guest: FakeGuest) -> None:
    errors: list[BaseException] = []

    async def handler(trap: Trap) -> None:
        for bad in (2**70, -(2**63) - 1):
            try:
                trap.skip(bad)
            except OutOfRange as exc:
                errors.append(exc)
        try:
            trap.set_arg(0, 2**64)
        except OutOfRange as exc:
            errors.append(exc)
        trap.skip(2**64 - 1)  # unsigned spelling of -1

    async with Portal(guest.path, handler) as portal:
        slot = 10
        seq = guest.publish(slot, valid_event(portal.hooks_generation), C.SA_MSG_EVENT)
        await _until(lambda: guest.host_part(slot).seq == seq)  # type: ignore[attr-defined]
        h = guest.host_part(slot)
        assert h.action == C.SA_ACT_SKIP and h.retval == -1  # type: ignore[attr-defined]
    assert len(errors) == 3 and all("64 bits" in str(e) for e in errors)


async def test_a_guest_republishing_events_cannot_pile_up_handlers(guest: FakeGuest) -> None:
    """32 slots republished 150 times each: one handler per slot at most, every
    superseded trap counted as late, and the host still answers afterwards."""
    running = peak = 0

    async def handler(trap: Trap) -> None:
        nonlocal running, peak
        if trap.event.slot == 40:
            trap.skip(7)
            return
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(3600)  # never answers: only the guest ends it
        finally:
            running -= 1

    slots, rounds = range(32), 150
    async with Portal(guest.path, handler, deadline_ms=3000) as portal:
        gen = portal.hooks_generation
        most_tasks = 0
        for _ in range(rounds):
            for slot in slots:
                guest.publish(slot, valid_event(gen), C.SA_MSG_EVENT)  # a new claim each time
            await _until(lambda: portal._slots.last_seq[31] == guest.seq[31])
            most_tasks = max(most_tasks, len(portal._tasks))
        # the same epoch again is no new claim: refused
        guest.publish(3, valid_event(gen), C.SA_MSG_EVENT, epoch=guest.epoch[3])
        await _until(lambda: portal._slots.last_seq[3] == guest.seq[3])
        seq = guest.publish(40, valid_event(gen), C.SA_MSG_EVENT)
        await _until(lambda: guest.host_part(40).seq == seq)  # type: ignore[attr-defined]
        assert guest.host_part(40).retval == 7  # type: ignore[attr-defined]
        counters = portal.host_counters
        assert peak <= len(slots), peak  # unbounded before: one handler per event
        assert most_tasks <= 3 * len(slots) + 1, most_tasks
        superseded = (rounds - 1) * len(slots)
        assert counters.late_verdicts == counters.abandoned == superseded, counters
        assert counters.slot_busy > 0 and counters.refused == 1, counters
    assert running == 0


async def test_a_task_that_stops_waiting_cancels_its_handler_and_is_a_late_verdict(
    guest: FakeGuest, caplog: pytest.LogCaptureFixture
) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def handler(trap: Trap) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with Portal(guest.path, handler) as portal:
        slot = 12
        guest.publish(slot, valid_event(portal.hooks_generation), C.SA_MSG_EVENT)
        async with asyncio.timeout(10):
            await started.wait()
        with caplog.at_level(logging.WARNING, logger="syscalls"):
            guest.publish(slot, b"", C.SA_MSG_ABANDON, guest.epoch[slot])
            async with asyncio.timeout(10):
                await cancelled.wait()
        counters = portal.host_counters
        assert (counters.late_verdicts, counters.abandoned) == (1, 1), counters
    assert any(
        "went on without a verdict" in r.getMessage() and "'evil'" in r.getMessage()
        for r in caplog.records
    )


async def test_a_verdict_written_as_the_task_gave_up_is_late(guest: FakeGuest) -> None:
    async def handler(trap: Trap) -> None:
        trap.skip(-1)

    async with Portal(guest.path, handler) as portal:
        slot = 13
        seq = guest.publish(slot, valid_event(portal.hooks_generation), C.SA_MSG_EVENT)
        await _until(lambda: guest.host_part(slot).seq == seq)  # type: ignore[attr-defined]
        # the guest's deadline passed before it saw the verdict: it says so
        for _ in range(2):  # told twice, counted once
            seq = guest.publish(slot, b"", C.SA_MSG_ABANDON, guest.epoch[slot])
            await _until(lambda s=seq: portal._slots.last_seq[slot] == s)
        assert portal.host_counters.late_verdicts == 1, portal.host_counters
        assert portal.host_counters.abandoned == 0


async def test_a_slots_next_handler_waits_for_the_previous_one_to_end(guest: FakeGuest) -> None:
    """A handler that takes its time to end after being cancelled still runs alone."""
    spans: list[tuple[str, float, float]] = []
    loop = asyncio.get_running_loop()

    async def handler(trap: Trap) -> None:
        start = loop.time()
        first = trap.event.epoch == 1
        try:
            if first:
                await asyncio.sleep(3600)  # until its task stops waiting
        finally:
            if first:
                await asyncio.sleep(0.2)  # stubborn: ends 0.2 s after its cancellation
            spans.append((f"epoch {trap.event.epoch}", start, loop.time()))

    async with Portal(guest.path, handler) as portal:
        slot = 0  # the fake guest's first claim of it has epoch 1
        guest.publish(slot, valid_event(portal.hooks_generation), C.SA_MSG_EVENT)
        await _until(lambda: portal._slots.last_seq[slot] == guest.seq[slot])
        seq = guest.publish(slot, valid_event(portal.hooks_generation), C.SA_MSG_EVENT)
        await _until(lambda: guest.host_part(slot).seq == seq)  # type: ignore[attr-defined]
        assert portal.host_counters.slot_busy == 1
    first, second = spans
    assert (first[0], second[0]) == ("epoch 1", "epoch 2")
    assert second[1] >= first[2]  # never both at once


@pytest.mark.parametrize(
    ("field", "fmt", "value", "why"),
    [
        ("magic", "<Q", 0x4141414141414141, "magic"),
        ("boot_id", "<I", 0x5678, "reloaded"),
        ("state", "<I", C.SA_STATE_STOPPED, "unloading"),
    ],
)
async def test_a_vanished_portal_fails_with_portal_lost(
    guest: FakeGuest, field: str, fmt: str, value: int, why: str
) -> None:
    async with Portal(guest.path) as portal:
        guest.write(ffi.offsetof(G, field), struct.pack(fmt, value))
        async with asyncio.timeout(10):
            failure = await portal.wait_failure()
        assert isinstance(failure, PortalLost) and why in str(failure)
        with pytest.raises(PortalLost):
            await portal.set_hooks([])


async def test_guest_counted_losses_are_warnings(
    guest: FakeGuest, caplog: pytest.LogCaptureFixture
) -> None:
    no_slot = (
        C.SA_GUEST_OFF + ffi.offsetof(G, "counters") + ffi.offsetof("struct sa_counters", "no_slot")
    )
    async with Portal(guest.path) as portal:
        guest.write(no_slot, struct.pack("<Q", 3))
        await _until(lambda: any("no_slot: 3" in r.getMessage() for r in caplog.records))
        assert portal.last_guest_counters.no_slot == 3
    (record,) = [r for r in caplog.records if "no_slot" in r.getMessage()]
    assert record.levelname == "WARNING" and record.name.startswith("syscalls")
    assert "3 hooked call(s) ran unhooked: no free event slot" in record.getMessage()
