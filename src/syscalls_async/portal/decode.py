"""Decoding guest-written bytes.  Everything here takes a private ``bytes``
copy and either returns validated data or raises :class:`PortalProtocolError`;
no input makes it raise anything else (fuzzed in the unit tests).
"""

from __future__ import annotations

import struct
from typing import Any

from ..errors import PortalProtocolError, PortalVersionError
from .abi import C, ffi, packed
from .arch import arch_by_id
from .types import (
    CapturedString,
    FdInfo,
    GuestCounters,
    Mapping,
    Phase,
    ProcEntry,
    ProcInfo,
    RawEvent,
    SyscallMeta,
)

_PHASES = {int(p): p for p in Phase}


def text(raw: Any, limit: int | None = None) -> str:
    """A NUL-terminated C char array (cffi cdata or bytes) as ``str``."""
    data = bytes(ffi.buffer(raw)) if isinstance(raw, ffi.CData) else bytes(raw)
    if limit is not None:
        data = data[:limit]
    return data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _cast(ctype: str, data: bytes) -> Any:
    if len(data) < ffi.sizeof(ctype):
        raise PortalProtocolError(f"{ctype}: {len(data)} bytes, need {ffi.sizeof(ctype)}")
    return ffi.from_buffer(ctype + " *", data)


def _bits(words: Any, nbits: int) -> tuple[int, ...]:
    out = []
    for w in range(C.SA_MATCH_WORDS):
        value = int(words[w])
        while value:
            low = value & -value
            bit = w * 64 + low.bit_length() - 1
            if bit >= nbits:
                raise PortalProtocolError(f"matched hook index {bit} >= {nbits} hooks")
            out.append(bit)
            value ^= low
    return tuple(out)


def check_header(data: bytes) -> Any:
    """Validate the guest header copy; returns the cdata view of it."""
    g = _cast("struct sa_guest_header", data)
    if g.magic != C.SA_MAGIC:
        raise PortalVersionError(f"no portal here (magic {int(g.magic):#x})")
    if g.version != C.SA_VERSION:
        raise PortalVersionError(
            f"guest module speaks portal ABI version {g.version}, this host {C.SA_VERSION}"
        )
    arch_by_id(int(g.arch))
    if g.slot_count != C.SA_SLOT_COUNT or g.slot_size != C.SA_SLOT_SIZE:
        raise PortalVersionError("guest slot layout differs from portal_abi.h")
    if (
        g.max_hooks != C.SA_MAX_HOOKS
        or g.nr_syscalls > C.SA_MAX_SYSCALLS
        or g.nr_syscalls32 > C.SA_MAX_SYSCALLS
    ):
        raise PortalVersionError("guest hook table or metadata layout differs")
    return g


def counters(data: bytes) -> GuestCounters:
    g = _cast("struct sa_guest_header", data)
    c = g.counters
    return GuestCounters(**{f: int(getattr(c, f)) for f in GuestCounters.__struct_fields__})


#: the call as both a slot event and a ring record carry it, in this order
CALL_FIELDS = [
    ("phase", "I"),
    ("nr", "i"),
    ("pid", "I"),
    ("tgid", "I"),
    ("comm", f"{C.SA_COMM_LEN}s"),
    ("args", f"{C.SA_MAX_ARGS}Q"),
    ("retval", "q"),
    ("pc", "Q"),
    ("sp", "Q"),
    ("matched", f"{C.SA_MATCH_WORDS}Q"),
]

# The event is the hot path: one struct.unpack_from with a format built from
# the cffi layout (and checked against it) instead of cdata field access.
_EVENT_FIELDS = [
    ("owner", "I"),
    ("seq", "I"),
    ("epoch", "I"),
    ("msg", "I"),
    *CALL_FIELDS,
    ("nregs", "I"),
    ("hooks_gen", "I"),
    ("regs", f"{C.SA_MAX_REGS}Q"),
]


_EVENT = packed("struct sa_slot_guest", _EVENT_FIELDS)
_EFLAGS = struct.Struct("<I")
_EFLAGS_OFF = ffi.offsetof("struct sa_slot_guest", "eflags")
_EV_KNOWN = C.SA_EV_RESTARTED | C.SA_EV_COMPAT


def eflags_ok(eflags: int, phase: int) -> bool:
    """Known event flags only, and ``SA_EV_RESTARTED`` on a return only
    (``SA_EV_COMPAT`` comes with either phase)."""
    return not eflags & ~_EV_KNOWN and (phase == Phase.RETURN or not eflags & C.SA_EV_RESTARTED)


_A = 9  # index of args[0] in the unpacked tuple
_M = _A + C.SA_MAX_ARGS + 3  # matched[0]
_R = _M + C.SA_MATCH_WORDS + 2  # regs[0]


def event(data: bytes, slot: int, seq: int, nhooks: int, nr_base: int = 0) -> RawEvent:
    """An SA_MSG_EVENT slot copy (the guest part) as a :class:`RawEvent`.

    ``nr`` may lie beyond the guest's syscall table: such calls
    exist (the kernel answers them -ENOSYS) and reach all-syscall and unknown
    hooks.  The guest sends table indices: the event carries them plus
    ``nr_base`` (``ArchInfo.nr_base``: o32's 4000), the number user space
    passed.  A number that would be negative is refused: no task passes one."""
    if len(data) < max(_EVENT.size, _EFLAGS_OFF + 4):
        raise PortalProtocolError(f"slot {slot}: event of {len(data)} bytes")
    v = _EVENT.unpack_from(data)
    msg, phase, nr, nregs = v[3], v[4], v[5], v[_M + C.SA_MATCH_WORDS]
    eflags = _EFLAGS.unpack_from(data, _EFLAGS_OFF)[0]
    if msg != C.SA_MSG_EVENT:
        raise PortalProtocolError(f"slot {slot}: message {msg} is not an event")
    if phase not in _PHASES:
        raise PortalProtocolError(f"slot {slot}: bad phase {phase}")
    nr += nr_base
    if nr < 0:
        raise PortalProtocolError(f"slot {slot}: syscall number {nr - nr_base}")
    if nregs > C.SA_MAX_REGS:
        raise PortalProtocolError(f"slot {slot}: {nregs} registers")
    if not eflags_ok(eflags, phase):
        raise PortalProtocolError(f"slot {slot}: event flags {eflags:#x} in phase {phase}")
    return RawEvent(
        slot=slot,
        epoch=v[2],
        seq=seq,
        phase=_PHASES[phase],
        nr=nr,
        pid=v[6],
        tgid=v[7],
        comm=text(v[8]),
        args=v[_A : _A + C.SA_MAX_ARGS],
        retval=v[_A + C.SA_MAX_ARGS],
        pc=v[_A + C.SA_MAX_ARGS + 1],
        sp=v[_A + C.SA_MAX_ARGS + 2],
        matched=_bits(v[_M : _M + C.SA_MATCH_WORDS], nhooks),
        regs=v[_R : _R + nregs],
        hooks_gen=v[_M + C.SA_MATCH_WORDS + 1],
        restarted=bool(eflags & C.SA_EV_RESTARTED),
        compat=bool(eflags & C.SA_EV_COMPAT),
    )


#: a slot event's or ring record's capture marks: str_len[6] then str_flags[6]
_MARKS = struct.Struct(f"<{C.SA_MAX_ARGS}H{C.SA_MAX_ARGS}B")
_MARKS_OFF = ffi.offsetof("struct sa_slot_guest", "str_len")
_STR_KNOWN = C.SA_STR_CAPTURED | C.SA_STR_TRUNCATED | C.SA_STR_FAULT
NO_STRINGS: tuple[CapturedString | None, ...] = (None,) * C.SA_MAX_ARGS


def string_marks(data: bytes) -> tuple[int, ...] | None:
    """The capture marks of an event slot copy (``str_len`` then
    ``str_flags``, per register word), or ``None`` if it captured nothing."""
    marks = _MARKS.unpack_from(data, _MARKS_OFF)
    return marks if any(marks) else None


def strings_length(marks: tuple[int, ...]) -> int:
    """How many bytes of strings ``marks`` claim (bounded: each at most ``SA_STR_CAP``)."""
    return sum(min(n, C.SA_STR_CAP) for n in marks[: C.SA_MAX_ARGS])


def captured_strings(
    marks: tuple[int, ...], body: bytes, where: str
) -> tuple[CapturedString | None, ...]:
    """The strings ``marks`` (``str_len[6]``, ``str_flags[6]``) describe, one
    after the other in ``body``; per register word, ``None`` where none was
    captured.  Lengths, flags and NULs are checked: the guest wrote them."""
    out: list[CapturedString | None] = []
    pos = 0
    for i in range(C.SA_MAX_ARGS):
        n = marks[i]
        flags = marks[C.SA_MAX_ARGS + i]
        if flags & ~_STR_KNOWN:
            raise PortalProtocolError(f"{where}: string {i}: flags {flags:#x}")
        captured = bool(flags & C.SA_STR_CAPTURED)
        if n > C.SA_STR_CAP or (n and not captured):
            raise PortalProtocolError(f"{where}: string {i}: {n} bytes (flags {flags:#x})")
        if pos + n > len(body):
            raise PortalProtocolError(f"{where}: string {i}: {n} bytes do not fit")
        if not flags:
            out.append(None)
            continue
        data = body[pos : pos + n]
        pos += n
        if b"\0" in data:
            raise PortalProtocolError(f"{where}: string {i} holds a NUL")
        out.append(
            CapturedString(
                data,
                truncated=bool(flags & C.SA_STR_TRUNCATED),
                fault=bool(flags & C.SA_STR_FAULT) or not captured,
            )
        )
    return tuple(out)


def meta_table(data: bytes, count: int) -> list[SyscallMeta]:
    """``count`` consecutive ``struct sa_meta`` entries (either ABI's table)."""
    if not 0 <= count <= C.SA_MAX_SYSCALLS or len(data) < count * C.SA_META_SIZE:
        raise PortalProtocolError(f"metadata: bad count {count}")
    out = []
    for nr in range(count):
        m = _cast("struct sa_meta", data[nr * C.SA_META_SIZE : (nr + 1) * C.SA_META_SIZE])
        known = bool(m.flags & C.SA_META_KNOWN)
        nargs = int(m.nargs)
        noproto = bool(m.flags & C.SA_META_NOPROTO)
        if m.nr != nr or nargs > C.SA_MAX_ARGS or (noproto and nargs):
            raise PortalProtocolError(f"metadata entry {nr}: nr {m.nr}, nargs {nargs}")
        hookable = not m.flags & C.SA_META_UNHOOKABLE
        if not known:
            # no name: naming syscalls is the syscalls layer's business
            out.append(SyscallMeta(nr, "", 0, (), (), False, hookable=hookable))
            continue
        out.append(
            SyscallMeta(
                nr=nr,
                name=text(m.name),
                nargs=nargs,
                types=tuple(text(m.types[i]) for i in range(nargs)),
                names=tuple(text(m.names[i]) for i in range(nargs)),
                known=True,
                truncated=bool(m.flags & C.SA_META_TRUNCATED),
                hookable=hookable,
                prototype=not noproto,
            )
        )
    return out


def _entries(data: bytes, count: int, ctype: str) -> list[Any]:
    size = ffi.sizeof(ctype)
    if count < 0 or count * size > len(data):
        raise PortalProtocolError(f"{count} x {ctype} do not fit in {len(data)} bytes")
    return [_cast(ctype, data[i * size : (i + 1) * size]) for i in range(count)]


def _path(raw: Any, length: int) -> str:
    if length > len(raw):
        raise PortalProtocolError(f"path length {length} > {len(raw)}")
    return text(raw, length)


def maps(data: bytes, count: int) -> list[Mapping]:
    out = []
    for e in _entries(data, count, "struct sa_map_entry"):
        if e.start > e.end:
            raise PortalProtocolError(f"mapping {int(e.start):#x} > {int(e.end):#x}")
        out.append(
            Mapping(
                start=int(e.start),
                end=int(e.end),
                offset=int(e.offset),
                inode=int(e.inode),
                read=bool(e.flags & C.SA_MAP_READ),
                write=bool(e.flags & C.SA_MAP_WRITE),
                execute=bool(e.flags & C.SA_MAP_EXEC),
                shared=bool(e.flags & C.SA_MAP_SHARED),
                path=_path(e.path, int(e.path_len)),
                path_truncated=bool(e.flags & C.SA_MAP_PATH_TRUNCATED),
            )
        )
    return out


def fds(data: bytes, count: int) -> list[FdInfo]:
    return [
        FdInfo(fd=int(e.fd), path=_path(e.path, int(e.path_len)))
        for e in _entries(data, count, "struct sa_fd_entry")
    ]


def procs(data: bytes, count: int) -> list[ProcEntry]:
    return [
        ProcEntry(pid=int(e.pid), ppid=int(e.ppid), uid=int(e.uid), comm=text(e.comm))
        for e in _entries(data, count, "struct sa_task_entry")
    ]


def strings(data: bytes, count: int) -> list[str]:
    """``count`` NUL-terminated strings packed back to back."""
    parts = data.split(b"\0")
    if count < 0 or len(parts) < count + 1 or (count and parts[count:] != [b""]):
        raise PortalProtocolError(f"{count} strings expected in {len(data)} bytes")
    return [p.decode("utf-8", "surrogateescape") for p in parts[:count]]


def proc_info(data: bytes) -> ProcInfo:
    p = _cast("struct sa_proc_info", data)
    base = C.SA_PROC_INFO_SIZE
    lens = (int(p.exe_len), int(p.cwd_len), int(p.argv_len))
    if base + sum(lens) > len(data):
        raise PortalProtocolError(f"process info lengths {lens} exceed {len(data)} bytes")
    exe = data[base : base + lens[0]]
    cwd = data[base + lens[0] : base + lens[0] + lens[1]]
    argv = data[base + lens[0] + lens[1] : base + sum(lens)]
    args = argv.rstrip(b"\0").split(b"\0") if argv else []
    return ProcInfo(
        pid=int(p.pid),
        tgid=int(p.tgid),
        ppid=int(p.ppid),
        uid=int(p.uid),
        comm=text(p.comm),
        exe=exe.decode("utf-8", "surrogateescape"),
        cwd=cwd.decode("utf-8", "surrogateescape"),
        argv=tuple(a.decode("utf-8", "surrogateescape") for a in args),
        truncated=bool(p.flags & C.SA_RF_TRUNCATED),
    )
