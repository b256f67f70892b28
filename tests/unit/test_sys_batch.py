"""Batch handlers of observe-only hooks (``read_only=True, batch=True``), host only.

Records are written into rings the way ``kernel/ring.c`` does (the ring
fake of ``test_portal_ring``), drained by a :class:`RingChannel` and handed,
chunk by chunk, to :meth:`Dispatcher.observe_batch` as a session's portal
does.  The real guest path is in ``tests/api/test_observe_batch.py``.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from test_portal_ring import Region

from syscalls_async import ObservedSyscall
from syscalls_async.api.mem import Mem
from syscalls_async.api.syscalls import SyscallsAPI
from syscalls_async.errors import ObserveOnlyError, RegistrationError
from syscalls_async.portal.abi import C, ffi
from syscalls_async.portal.hooktable import HookTable
from syscalls_async.portal.rings import CHUNK, RingChannel
from syscalls_async.portal.trap import ObservedTrap
from syscalls_async.portal.types import CapturedString
from syscalls_async.syscalls import Dispatcher, Registry, ValueFilter
from syscalls_async.testing.fake import bundled_prototypes

OPENAT, GETPPID, UNKNOWN = 257, 110, 5000
GEN = 7
M64 = (1 << 64) - 1


def record(
    nr: int = OPENAT,
    args: tuple[int, ...] = (M64 - 99, 0x1000, 0, 0o644, 0, 0),
    *,
    phase: int = C.SA_PHASE_ENTER,
    retval: int = 0,
    matched: int = 0b1,
    gen: int = GEN,
    comm: bytes = b"watched",
    tid: int = 42,
    tgid: int = 40,
    strings: dict[int, tuple[bytes, int]] | None = None,
    eflags: int = 0,
) -> bytes:
    """One record as the guest writes it (header, strings, padding to 8)."""
    r = ffi.new("struct sa_ring_rec *")
    r.type = C.SA_REC_EVENT
    r.phase = phase
    r.nr = nr
    r.pid = tid
    r.tgid = tgid
    r.comm = comm
    for i, a in enumerate(args):
        r.args[i] = a
    r.retval = retval
    r.matched[0] = matched
    r.hooks_gen = gen
    r.eflags = eflags
    body = b""
    for i, (data, flags) in sorted((strings or {}).items()):
        r.str_len[i] = len(data)
        r.str_flags[i] = flags
        body += data
    r.len = (C.SA_REC_SIZE + len(body) + 7) // 8 * 8
    return (bytes(ffi.buffer(r)) + body).ljust(r.len, b"\0")


class Host:
    """A registry, its dispatcher, a ring channel on a fake region: what a
    session's portal does with the rings, without the poller."""

    def __init__(
        self, ring_size: int = C.SA_RING_DATA_MAX, observe_queue: int = 65536, **kwargs: Any
    ) -> None:
        table = bundled_prototypes()
        self.registry = Registry()
        self.registry.bind(table)
        self.d = Dispatcher(self.registry, table, **kwargs)
        self.hooktable = HookTable()
        self.channel = RingChannel(self.hooktable, observe_queue)
        self.rings = Region(ring_size)
        self.chunks: list[int] = []

    def add(self, handler: Callable[..., Any], name: str, **options: Any) -> int:
        """Register a hook; returns its matched bit (its position in the table)."""
        self.registry.add(handler, name, read_only=True, **options)
        specs, _ = self.registry.table()
        self.hooktable.tables[GEN] = tuple(specs)
        return 1 << (len(specs) - 1)

    def put(self, *records: bytes, ring: int = 0) -> None:
        for r in records:
            self.rings.put(ring, r)

    async def run(self) -> int:
        """Drain every ring and hand each chunk to the dispatcher; how many were taken."""
        taken = self.channel.drain(self.rings.mm)
        while True:
            try:
                chunk = self.channel.recv.receive_nowait()
            except anyio.WouldBlock:
                return taken
            self.chunks.append(len(chunk))
            await self.d.observe_batch(chunk)
            self.channel.done += len(chunk)


def collector() -> tuple[list[ObservedSyscall], list[int], Callable[..., Any]]:
    seen: list[ObservedSyscall] = []
    sizes: list[int] = []

    async def watch(events: tuple[ObservedSyscall, ...]) -> None:
        assert isinstance(events, tuple)
        sizes.append(len(events))
        seen.extend(events)

    return seen, sizes, watch


# -- delivery -------------------------------------------------------------------------------


async def test_every_event_of_every_ring_reaches_the_batch_handler_in_ring_order() -> None:
    host = Host()
    seen, sizes, watch = collector()
    bit = host.add(watch, "getppid", batch=True)
    host.put(*(record(GETPPID, matched=bit, tid=i) for i in range(300)), ring=0)
    host.put(*(record(GETPPID, matched=bit, tid=1000 + i) for i in range(10)), ring=3)
    assert await host.run() == 310
    # one call per chunk: a ring's span in chunks of at most CHUNK events
    assert sizes == [CHUNK, 300 - CHUNK, 10] and host.chunks == sizes
    assert [e.tid for e in seen] == list(range(300)) + [1000 + i for i in range(10)]
    assert host.d.stats.observed_events == host.d.stats.events == 310
    assert host.d.stats.handler_calls == 3


async def test_a_view_says_what_the_per_event_handler_sees() -> None:
    """The batch view and a per-event read_only handler agree on every field."""
    host = Host()
    seen, _, watch = collector()
    per_event: list[tuple[Any, ...]] = []

    async def one(regs: Any, proto: Any, syscall: Any, *args: int) -> None:
        per_event.append(
            (syscall.name, syscall.nr, syscall.phase, syscall.abi, tuple(args), syscall.retval,
             syscall.strings, syscall.task, syscall.pid)
        )  # fmt: skip

    strings = {1: (b"/etc/passwd", C.SA_STR_CAPTURED)}
    bit = host.add(watch, "openat", on_enter=True, on_return=True, batch=True)
    bit |= host.add(one, "openat", on_enter=True, on_return=True)
    host.put(
        record(matched=bit, strings=strings),
        record(phase=C.SA_PHASE_RETURN, retval=-2, matched=bit, strings=strings),
    )
    await host.run()
    enter, ret = seen
    assert [
        (e.name, e.nr, e.phase, e.abi, e.args, 0 if e.retval is None else e.retval, e.strings,
         e.task, e.pid)
        for e in seen
    ] == per_event  # fmt: skip
    assert enter.name == "sys_openat" and enter.is_enter and enter.retval is None
    assert enter.args == (-100, 0x1000, 0, 0o644)  # int dfd read signed, as the prototype says
    assert enter.words == (M64 - 99, 0x1000, 0, 0o644, 0, 0)
    assert enter.strings[1] == CapturedString(b"/etc/passwd")
    assert enter.strings[0] is None and enter.strings[1].text == "/etc/passwd"
    assert (enter.comm, enter.tid, enter.pid) == ("watched", 42, 40)
    assert not ret.is_enter and ret.phase == "return" and ret.retval == -2
    assert ret.args == enter.args  # the guest pairs the enter's arguments with the return
    assert "sys_openat return by 'watched'[42]" in repr(ret)


async def test_a_view_is_read_only() -> None:
    host = Host()
    seen, _, watch = collector()
    host.put(record(GETPPID, matched=host.add(watch, "getppid", batch=True)))
    await host.run()
    [event] = seen
    for name in ("name", "args", "retval", "raw", "comm", "anything"):
        with pytest.raises(AttributeError):
            setattr(event, name, 1)


async def test_one_event_handed_alone_reaches_the_batch_hook_as_a_batch_of_one() -> None:
    """A recording session and the testing kit call the dispatcher per event."""
    host = Host()
    seen, sizes, watch = collector()
    bit = host.add(watch, "getppid", batch=True)
    host.channel.drain(host.rings.mm)
    host.put(record(GETPPID, matched=bit))
    host.channel.drain(host.rings.mm)
    [trap] = host.channel.recv.receive_nowait()
    assert isinstance(trap, ObservedTrap)
    await host.d(trap)
    assert sizes == [1] and seen[0].name == "sys_getppid"


async def test_per_event_and_batch_hooks_on_one_syscall_each_see_each_event_once() -> None:
    host = Host()
    seen, _, watch = collector()
    one: list[int] = []
    bits = host.add(lambda r, p, s: one.append(s.task.pid), "getppid")
    bits |= host.add(watch, "getppid", batch=True)
    bits |= host.add(lambda r, p, s: None, "getpid")  # another syscall, not batched
    host.put(*(record(GETPPID, matched=bits, tid=i) for i in range(5)))
    await host.run()
    assert one == [e.tid for e in seen] == list(range(5))
    assert host.d.stats.observed_events == 5


async def test_a_syscall_beyond_the_table_reaches_an_all_syscall_batch_hook() -> None:
    host = Host()
    seen, _, watch = collector()
    bit = host.add(watch, "on_all_sys_enter", batch=True)
    host.put(record(UNKNOWN, matched=bit), record(GETPPID, matched=bit))
    await host.run()
    assert [e.name for e in seen] == ["sys_unknown_5000", "sys_getppid"]
    assert seen[0].args == seen[0].words  # no prototype: the six registers


# -- the host's filters are the authority ------------------------------------------------


@pytest.mark.parametrize(
    ("options", "passing", "failing"),
    [
        ({"comm_filter": "watched"}, {}, {"comm": b"other"}),
        ({"pid_filter": 40}, {}, {"tgid": 41}),
        ({"arg_filters": [-100]}, {}, {"args": (3, 0, 0, 0, 0, 0)}),
        (
            {"arg_filters": [None, "/etc/"]},
            {"strings": {1: (b"/etc/passwd", C.SA_STR_CAPTURED)}},
            {"strings": {1: (b"/tmp/passwd", C.SA_STR_CAPTURED)}},
        ),
        (
            {"on_return": True, "on_enter": False, "retval_filter": ValueFilter.error()},
            {"phase": C.SA_PHASE_RETURN, "retval": -1},
            {"phase": C.SA_PHASE_RETURN, "retval": 3},
        ),
    ],
)
async def test_host_filters_are_checked_again_on_each_event(
    options: dict[str, Any], passing: dict[str, Any], failing: dict[str, Any]
) -> None:
    """A guest that claims a hook matched does not get events past its filters."""
    host = Host()
    seen, _, watch = collector()
    bit = host.add(watch, "openat", batch=True, **options)
    host.put(record(matched=bit, tid=1, **passing), record(matched=bit, tid=2, **failing))
    await host.run()
    assert [e.tid for e in seen] == [1]
    assert host.d.stats.filtered_on_host == 1
    assert host.d.stats.guest_disagreed == 1


async def test_a_truncated_capture_leaves_the_string_filter_to_the_guest() -> None:
    host = Host()
    seen, _, watch = collector()
    bit = host.add(watch, "openat", batch=True, arg_filters=[None, "/etc/"])
    long = (b"/etc/" + b"x" * (C.SA_STR_CAP - 5), C.SA_STR_CAPTURED | C.SA_STR_TRUNCATED)
    host.put(record(matched=bit, tid=1, strings={1: long}), record(matched=0, tid=2,
             strings={1: long}))  # fmt: skip
    await host.run()
    captured = seen[0].strings[1]
    assert [e.tid for e in seen] == [1] and captured is not None and captured.truncated


# -- a hostile guest --------------------------------------------------------------------


async def test_hostile_records_are_refused_and_the_valid_ones_around_them_delivered() -> None:
    host = Host()
    seen, _, watch = collector()
    bit = host.add(watch, "openat", batch=True)
    bad_phase = record(matched=bit, tid=2)
    bad_phase = bad_phase[:8] + struct.pack("<I", 9) + bad_phase[12:]
    host.put(
        record(matched=bit, tid=1),
        bad_phase,
        record(matched=bit, gen=GEN + 1, tid=3),  # an unknown hook table
        record(matched=1 << 40, tid=4),  # a hook index beyond the table
        record(matched=bit, tid=5, strings={1: (b"a\0b", C.SA_STR_CAPTURED)}),  # a NUL
        record(matched=bit, tid=6, strings={1: (b"abc", 0x80)}),  # unknown flags
        record(matched=bit, tid=7, eflags=C.SA_EV_RESTARTED),  # restarted on an enter
        record(matched=bit, tid=8),
    )
    assert await host.run() == 8
    assert [e.tid for e in seen] == [1, 8]
    assert host.channel.stats.refused == 6 and host.channel.stats.records == 2


async def test_a_record_length_that_leaves_the_span_ends_it() -> None:
    host = Host()
    seen, _, watch = collector()
    bit = host.add(watch, "openat", batch=True)
    liar = bytearray(record(matched=bit, tid=2))
    struct.pack_into("<I", liar, 0, 1 << 20)  # says it is a MiB long
    host.put(record(matched=bit, tid=1), bytes(liar))
    await host.run()
    assert [e.tid for e in seen] == [1] and host.channel.stats.refused == 1


# -- the queue's bound -------------------------------------------------------------------


async def test_a_full_queue_drops_the_newest_events_exactly_and_per_hook() -> None:
    host = Host(observe_queue=300)
    seen, _, watch = collector()
    bit = host.add(watch, "getppid", batch=True)
    host.put(*(record(GETPPID, matched=bit, tid=i) for i in range(400)))
    host.channel.drain(host.rings.mm)  # nobody takes them yet
    host.put(*(record(GETPPID, matched=bit, tid=1000 + i) for i in range(5)))
    await host.run()
    assert host.channel.stats.queue_drops == 105
    assert host.channel.hook_drops(None) == {host.registry.find(watch)[0].id: 105}
    assert [e.tid for e in seen] == list(range(300))
    host.put(record(GETPPID, matched=bit, tid=7))  # room again once handled
    await host.run()
    assert seen[-1].tid == 7 and host.channel.stats.queue_drops == 105


# -- failures ------------------------------------------------------------------------------


async def test_a_batch_handler_that_raises_is_counted_and_logged_and_the_others_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fatal: list[BaseException] = []
    host = Host(fail_fast=True, on_fatal=fatal.append)
    seen, _, watch = collector()

    async def boom(events: Any) -> None:
        raise ValueError("no")

    bit = host.add(boom, "getppid", batch=True) | host.add(watch, "getppid", batch=True)
    host.put(*(record(GETPPID, matched=bit, tid=i) for i in range(3)))
    with caplog.at_level(logging.ERROR, logger="syscalls"):
        await host.run()
    assert len(seen) == 3
    assert host.d.stats.handler_errors == 1 and host.d.stats.handler_calls == 2
    assert any("batch handler boom failed on a batch of 3 events" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    assert [type(e) for e in fatal] == [ValueError]


async def test_a_batch_handler_that_outlives_its_budget_is_cancelled_and_counted() -> None:
    host = Host(handler_timeout=0.05)
    cancelled: list[bool] = []

    async def slow(events: Any) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    host.put(record(GETPPID, matched=host.add(slow, "getppid", batch=True)))
    await host.run()
    assert cancelled == [True] and host.d.stats.handler_timeouts == 1


async def test_memory_requests_from_a_batch_handler_raise_observe_only_error() -> None:
    host = Host()
    caught: list[Exception] = []

    async def reader(events: Any) -> None:
        for call in (Mem().read_str(0x1000), Mem().read_bytes(0x1000, 4)):
            try:
                await call
            except ObserveOnlyError as exc:
                caught.append(exc)

    strings = {1: (b"/etc/passwd", C.SA_STR_CAPTURED)}
    host.put(record(matched=host.add(reader, "openat", batch=True), strings=strings))
    await host.run()
    assert len(caught) == 2 and host.d.stats.handler_errors == 0
    assert "not available to a batch handler" in str(caught[0])
    assert "event.strings" in str(caught[0])


# -- registration ------------------------------------------------------------------------


async def _h(events: Any) -> None:
    pass


@pytest.mark.parametrize("form", ["decorator", "registry"])
def test_batch_without_read_only_is_refused_saying_what_would_be_right(form: str) -> None:
    api = SyscallsAPI()
    with pytest.raises(RegistrationError, match="batch=True needs read_only=True") as info:
        if form == "decorator":
            api.syscall("getppid", batch=True)(_h)
        else:
            api.registry.add(_h, "getppid", batch=True)
    assert "add read_only=True" in str(info.value) and api.hooks == []


@pytest.mark.parametrize(
    ("handler", "options", "message"),
    [
        (lambda regs, proto, syscall: None, {}, r"called as h\(events\).*takes \(regs, proto, "),
        (lambda: None, {}, r"takes \(no positional parameter\)"),
        (_h, {"batch": "yes"}, "batch must be True or False"),
        (_h, {"on_error": "fail_closed"}, "cannot fail closed"),
    ],
)
def test_a_bad_batch_registration_is_refused(
    handler: Callable[..., Any], options: dict[str, Any], message: str
) -> None:
    api = SyscallsAPI()
    options = {"batch": True, **options}
    with pytest.raises(RegistrationError, match=message):
        api.syscall("getppid", read_only=True, **options)(handler)
    assert api.hooks == []


def test_a_batch_hook_is_a_read_only_observing_hook_in_the_guest_table() -> None:
    registry = Registry()
    registry.bind(bundled_prototypes())
    hook = registry.add(_h, "getppid", read_only=True, batch=True)
    [spec], _ = registry.table()
    assert spec.observe and hook.batch and hook.read_only
    assert registry.candidates(GETPPID, True, observed=True) == []
    assert registry.candidates(GETPPID, True, observed=True, batch=True) == [hook]


def test_a_view_of_a_built_event_with_fewer_words_reads_the_rest_as_zero() -> None:
    import msgspec

    from syscalls_async.syscalls.batch import SyscallKind
    from syscalls_async.testing import fake_event

    raw = msgspec.structs.replace(fake_event("openat"), args=(M64 - 99, 0x1000), observed=True)
    view = ObservedSyscall(raw, SyscallKind(bundled_prototypes().by_nr(OPENAT), "x86_64"))
    assert view.words == (M64 - 99, 0x1000, 0, 0, 0, 0)
    assert view.args == (-100, 0x1000, 0, 0) and view.strings == (None,) * 6
