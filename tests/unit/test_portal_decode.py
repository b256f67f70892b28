"""Decoding guest-written bytes: valid data round-trips, garbage is refused.

The decoders may raise :class:`PortalProtocolError` (or PortalVersionError
for headers) and nothing else, whatever the bytes.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syscalls_async.errors import PortalProtocolError, PortalVersionError
from syscalls_async.portal import Phase, decode
from syscalls_async.portal.abi import C, ffi

REFUSED = (PortalProtocolError, PortalVersionError)


def _event_bytes(**fields: object) -> bytes:
    g = ffi.new("struct sa_slot_guest *")
    g.msg = C.SA_MSG_EVENT
    g.phase = C.SA_PHASE_ENTER
    g.nr = 16
    g.pid = g.tgid = 99
    g.comm = b"send_syscall"
    g.args = [9, 0xABCD, 0, 0, 0, 2**64 - 1]
    g.nregs = 21
    g.matched = [0b101, 0, 0, 1 << 63]
    for k, v in fields.items():
        setattr(g, k, v)
    return bytes(ffi.buffer(g))


def test_numbers_beyond_the_table_and_restarted_returns_decode() -> None:
    # syscall(1000) exists for the kernel (it answers -ENOSYS): all-syscall
    # and unknown hooks see it
    ev = decode.event(_event_bytes(nr=1000), slot=0, seq=2, nhooks=256)
    assert ev.nr == 1000 and not ev.restarted
    raw = _event_bytes(phase=C.SA_PHASE_RETURN, retval=-512, eflags=C.SA_EV_RESTARTED)
    ev = decode.event(raw, slot=0, seq=2, nhooks=256)
    assert ev.restarted and ev.retval == -512


def test_event_decodes() -> None:
    ev = decode.event(_event_bytes(), slot=3, seq=8, nhooks=256)
    assert (ev.slot, ev.seq, ev.phase, ev.nr, ev.comm) == (3, 8, Phase.ENTER, 16, "send_syscall")
    assert ev.args == (9, 0xABCD, 0, 0, 0, 2**64 - 1)
    assert ev.matched == (0, 2, 255)
    assert len(ev.regs) == 21


@pytest.mark.parametrize(
    ("fields", "nhooks"),
    [
        ({"phase": 7}, 256),
        ({"nr": -1}, 256),
        ({"nr": -(2**31)}, 256),
        ({"eflags": 2}, 256),  # an unknown flag
        ({"eflags": C.SA_EV_RESTARTED}, 256),  # restarted is a return-phase state
        ({"nregs": C.SA_MAX_REGS + 1}, 256),
        ({"msg": C.SA_MSG_RESPONSE}, 256),
        ({}, 3),  # matched bit 255 names a hook that does not exist
    ],
)
def test_bad_events_are_refused(fields: dict[str, int], nhooks: int) -> None:
    with pytest.raises(PortalProtocolError):
        decode.event(_event_bytes(**fields), slot=0, seq=2, nhooks=nhooks)


def test_meta_table_decodes_known_and_unknown() -> None:
    table = ffi.new("struct sa_meta[2]")
    table[0].nr = 0
    table[0].nargs = 3
    table[0].flags = C.SA_META_KNOWN
    table[0].name = b"sys_read"
    for i, (t, n) in enumerate([("unsigned int", "fd"), ("char *", "buf"), ("size_t", "count")]):
        table[0].types[i] = t.encode()
        table[0].names[i] = n.encode()
    table[1].nr = 1
    metas = decode.meta_table(bytes(ffi.buffer(table)), 2)
    assert metas[0].name == "sys_read" and metas[0].names == ("fd", "buf", "count")
    assert metas[0].types[1] == "char *"
    assert not metas[1].known and metas[1].nargs == 0


def test_proc_info_and_strings() -> None:
    p = ffi.new("struct sa_proc_info *")
    p.pid, p.tgid, p.ppid = 5, 5, 1
    p.comm = b"sh"
    exe, cwd, argv = b"/bin/sh", b"/tmp", b"sh\0-c\0true\0"
    p.exe_len, p.cwd_len, p.argv_len = len(exe), len(cwd), len(argv)
    info = decode.proc_info(bytes(ffi.buffer(p)) + exe + cwd + argv)
    assert (info.exe, info.cwd, info.argv) == ("/bin/sh", "/tmp", ("sh", "-c", "true"))
    assert decode.strings(b"a\0bc\0", 2) == ["a", "bc"]
    with pytest.raises(PortalProtocolError):
        decode.strings(b"a\0bc", 2)


def test_entries_must_fit() -> None:
    with pytest.raises(PortalProtocolError):
        decode.maps(b"\0" * 100, 1)
    with pytest.raises(PortalProtocolError):
        decode.fds(b"", -1)
    e = ffi.new("struct sa_map_entry *")
    e.start, e.end, e.path_len = 0x2000, 0x1000, 0
    with pytest.raises(PortalProtocolError):
        decode.maps(bytes(ffi.buffer(e)), 1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=C.SA_SLOT_GUEST_SIZE + 64), st.integers(0, 256))
def test_fuzz_event(data: bytes, nhooks: int) -> None:
    with contextlib.suppress(REFUSED):
        decode.event(data, slot=0, seq=2, nhooks=nhooks)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096), st.integers(-2, 40))
def test_fuzz_entry_decoders(data: bytes, count: int) -> None:
    for fn in (decode.maps, decode.fds, decode.procs, decode.strings):
        with contextlib.suppress(REFUSED):
            fn(data, count)
    with contextlib.suppress(REFUSED):
        decode.proc_info(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=3 * C.SA_META_SIZE), st.integers(-1, 3))
def test_fuzz_meta_and_header(data: bytes, count: int) -> None:
    for call in (
        lambda: decode.meta_table(data, count),
        lambda: decode.check_header(data),
        lambda: decode.counters(data),
    ):
        with contextlib.suppress(REFUSED):
            call()


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_fuzz_structured_events(data: st.DataObject) -> None:
    """Well-formed structs with arbitrary field values: decoded or refused."""
    fields = {
        "msg": data.draw(st.integers(0, 2**32 - 1)),
        "phase": data.draw(st.integers(0, 2**32 - 1)),
        "nr": data.draw(st.integers(-(2**31), 2**31 - 1)),
        "nregs": data.draw(st.integers(0, 2**32 - 1)),
        "matched": data.draw(st.lists(st.integers(0, 2**64 - 1), min_size=4, max_size=4)),
    }
    try:
        ev = decode.event(_event_bytes(**fields), slot=0, seq=2, nhooks=100)
    except REFUSED:
        return
    assert ev.nr >= 0 and all(i < 100 for i in ev.matched)
