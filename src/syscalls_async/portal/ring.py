"""Observe-only rings: per-CPU records the guest writes without waiting.

Layout in ``kernel/portal_abi.h`` (``struct sa_ring_header``,
``struct sa_ring_rec``).  The host reads ``[tail, head)`` of a ring once into
private memory, moves ``tail`` (so the guest may reuse the space), then
decodes the copy.  The guest is hostile: a position that moved by more than
the ring holds, a size that is no allowed power of two, a record whose
length leaves the copy or whose strings do not fit in it, are refused and
counted; nothing a guest writes makes the host read outside the ring, or
work more than one ring's size per drain.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from typing import Any

import msgspec

from ..errors import PortalProtocolError
from .abi import MASK64, C, ffi, packed, ring_offset, store
from .decode import CALL_FIELDS, NO_STRINGS, captured_strings, eflags_ok, text
from .types import CapturedString, Phase, RawEvent

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_LEN_KIND = struct.Struct("<II")
_HEAD_OFF = ffi.offsetof("struct sa_ring_header", "head")
_DROPS_OFF = ffi.offsetof("struct sa_ring_header", "drops")
_SIZE_OFF = ffi.offsetof("struct sa_ring_header", "size")
TAIL_OFF = ffi.offsetof("struct sa_ring_header", "tail")
_PHASES = {int(p): p for p in Phase}

_REC_FIELDS = [
    ("len", "I"),
    ("type", "I"),
    *CALL_FIELDS,
    ("hooks_gen", "I"),
    ("eflags", "I"),
    ("str_len", f"{C.SA_MAX_ARGS}H"),
    ("str_flags", f"{C.SA_MAX_ARGS}B"),
]


_REC = packed("struct sa_ring_rec", _REC_FIELDS)
_A = 7  # args[0] in the unpacked tuple
_M = _A + C.SA_MAX_ARGS + 3  # matched[0]
_G = _M + C.SA_MATCH_WORDS  # hooks_gen
_SL = _G + 2  # str_len[0]
_SF = _SL + C.SA_MAX_ARGS  # str_flags[0]
_SE = _SF + C.SA_MAX_ARGS  # past str_flags
_R = _A + C.SA_MAX_ARGS  # retval (then pc, sp)
_RESTARTED = C.SA_EV_RESTARTED
_COMPAT = C.SA_EV_COMPAT


class RingStats(msgspec.Struct):
    """What the host read from the rings (guest drop counts are in the
    guest's counters and :meth:`Portal.ring_drops`)."""

    #: records decoded and handed on
    records: int = 0
    #: records or ring states refused as invalid
    refused: int = 0
    #: observed events dropped on the host: the queue to the handlers was full
    queue_drops: int = 0


class Span(msgspec.Struct, frozen=True):
    """The bytes of ``[tail, head)`` of one ring, copied once."""

    data: bytes
    head: int
    #: why the ring's state was refused ("" if it was valid)
    refused: str = ""


def read_span(mm: mmap.mmap | bytearray, ring: int, tail: int) -> Span:
    """Copy ring ``ring``'s unread records (from ``tail``), bounded by its size.

    The head is read before the size: the guest changes the size only while
    the ring is empty and before publishing records written with it."""
    base = ring_offset(ring)
    head = _U64.unpack_from(mm, base + _HEAD_OFF)[0]
    size = _U32.unpack_from(mm, base + _SIZE_OFF)[0]
    avail = (head - tail) & MASK64
    if not avail:
        return Span(b"", head)
    if size < C.SA_RING_DATA_MIN or size > C.SA_RING_DATA_MAX or size & (size - 1):
        return Span(b"", head, f"ring {ring}: size {size}")
    if avail > size or avail % 8:
        return Span(b"", head, f"ring {ring}: head moved {avail} bytes past tail (size {size})")
    data = base + C.SA_RING_HDR_SIZE
    start = tail & (size - 1)
    first = min(avail, size - start)
    out = mm[data + start : data + start + first]
    if first < avail:
        out += mm[data : data + avail - first]
    return Span(bytes(out), head)


def write_tail(mm: mmap.mmap | bytearray, ring: int, tail: int) -> None:
    store(_U64, mm, ring_offset(ring) + TAIL_OFF, tail & MASK64)


def head(mm: mmap.mmap | bytearray, ring: int) -> int:
    return int(_U64.unpack_from(mm, ring_offset(ring) + _HEAD_OFF)[0])


def drops(mm: mmap.mmap | bytearray, ring: int) -> int:
    """The guest's drop count of ring ``ring`` (a guest-written number)."""
    return int(_U64.unpack_from(mm, ring_offset(ring) + _DROPS_OFF)[0])


def hook_drops(mm: mmap.mmap | bytearray) -> tuple[int, ...]:
    """The guest's per-hook-table-index drop counts."""
    return struct.unpack_from(f"<{C.SA_MAX_HOOKS}Q", mm, C.SA_HOOK_DROPS_OFF)


def _matched(words: tuple[int, ...], nhooks: int) -> tuple[int, ...]:
    out = []
    for w, value in enumerate(words):
        while value:
            low = value & -value
            bit = w * 64 + low.bit_length() - 1
            if bit >= nhooks:
                raise PortalProtocolError(f"matched hook index {bit} >= {nhooks} hooks")
            out.append(bit)
            value ^= low
    return tuple(out)


def _strings(
    v: tuple[int, ...], data: bytes, start: int, end: int, ring: int
) -> tuple[CapturedString | None, ...]:
    """The captured strings of a record whose string bytes are ``data[start:end]``."""
    marks = v[_SL:_SE]
    if not any(marks):
        return NO_STRINGS  # the common case: a syscall without string arguments
    return captured_strings(marks, data[start:end], f"ring {ring}")


def record(data: bytes, ring: int, nhooks: Callable[[int], int | None]) -> RawEvent:
    """One ``SA_REC_EVENT`` record (its bytes, strings included) as an event.

    ``nhooks(gen)`` is the size of hook table generation ``gen`` (``None``:
    unknown to this host)."""
    return _record_at(data, 0, len(data), ring, nhooks)


class _Memo:
    """A bounded cache of a pure function of guest bytes: a guest sending ever
    new values empties it, never grows it past ``limit`` entries.  Callers on
    the hot path try ``cache.get(key)`` first (no call when it is there)."""

    def __init__(self, fn: Callable[[Any], Any], limit: int = 256) -> None:
        self.fn = fn
        self.limit = limit
        self.cache: dict[Any, Any] = {}

    def __call__(self, key: Any) -> Any:
        try:
            return self.cache[key]
        except KeyError:
            pass
        value = self.fn(key)  # raises for invalid input: nothing is cached then
        if len(self.cache) >= self.limit:
            self.cache.clear()
        self.cache[key] = value
        return value


# the same task names and matched-hook words come again and again
_comm = _Memo(text)
_matched_memo = _Memo(lambda key: _matched(*key))
_comms = _comm.cache
_matches = _matched_memo.cache
_REC_SIZE = C.SA_REC_SIZE
_REC_EVENT = C.SA_REC_EVENT
_REC_PAD = C.SA_REC_PAD


def _record_at(
    data: bytes,
    pos: int,
    length: int,
    ring: int,
    nhooks: Callable[[int], int | None],
    nr_base: int = 0,
) -> RawEvent:
    """The record of ``length`` bytes at ``pos`` of ``data`` (without copying it)."""
    if length < _REC_SIZE:
        raise PortalProtocolError(f"ring {ring}: record of {length} bytes")
    v = _REC.unpack_from(data, pos)
    phase, nr, eflags, gen = v[2], v[3], v[_G + 1], v[_G]
    kind = _PHASES.get(phase)
    if kind is None:
        raise PortalProtocolError(f"ring {ring}: bad phase {phase}")
    nr += nr_base
    if nr < 0:
        raise PortalProtocolError(f"ring {ring}: syscall number {nr - nr_base}")
    # no flags (the common case) needs no check
    if eflags and not eflags_ok(eflags, phase):
        raise PortalProtocolError(f"ring {ring}: event flags {eflags:#x} in phase {phase}")
    n = nhooks(gen)
    if n is None:
        raise PortalProtocolError(f"ring {ring}: record names unknown hook table {gen}")
    comm = _comms.get(v[6])
    if comm is None:
        comm = _comm(v[6])
    key = (v[_M:_G], n)
    matched = _matches.get(key)
    if matched is None:
        matched = _matched_memo(key)
    # positional, in RawEvent's field order (slot, epoch, seq, phase, nr, pid,
    # tgid, comm, args, retval, pc, sp, matched, regs, hooks_gen, restarted,
    # compat, observed, strings): keywords cost a third more per record
    return RawEvent(
        ring,
        0,
        0,
        kind,
        nr,
        v[4],
        v[5],
        comm,
        v[_A:_R],
        v[_R],
        v[_R + 1],
        v[_R + 2],
        matched,
        (),
        gen,
        bool(eflags & _RESTARTED),
        bool(eflags & _COMPAT),
        True,
        # the common case, a syscall without string arguments, without a call
        _strings(v, data, pos + _REC_SIZE, pos + length, ring) if any(v[_SL:_SE]) else NO_STRINGS,
    )


def records(
    data: bytes, ring: int, nhooks: Callable[[int], int | None], nr_base: int = 0
) -> tuple[list[RawEvent], list[str]]:
    """Every record in a span copy: the events, and why each refused one was.
    Numbers are the guest's table indices plus ``nr_base`` (``ArchInfo.nr_base``).

    A record whose length is not a multiple of 8, is shorter than 8 bytes, or
    leaves the copy ends the span (the rest cannot be framed)."""
    events: list[RawEvent] = []
    refused: list[str] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 8:
            refused.append(f"ring {ring}: {len(data) - pos} stray bytes")
            break
        length, kind = _LEN_KIND.unpack_from(data, pos)
        if length < 8 or length % 8 or length > len(data) - pos:
            refused.append(f"ring {ring}: record length {length} at {pos} of {len(data)}")
            break
        if kind == _REC_EVENT:
            try:
                events.append(_record_at(data, pos, length, ring, nhooks, nr_base))
            except PortalProtocolError as exc:
                refused.append(str(exc))
        elif kind != _REC_PAD:
            refused.append(f"ring {ring}: record type {kind}")
        pos += length
    return events, refused
