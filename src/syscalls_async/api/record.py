"""Recording a session's event stream: the file format, its writer and its reader.

A recording is a tap on the stream of events the dispatcher handles
(``Session(record=PATH)``, ``syscalls-async run --record FILE``): each event as
dispatched (blocking or observed), every memory and process request its
handlers (and the host's filter checks) made of the trapped task with the answer
they got, failures included, and the verdict the task was given.
:func:`syscalls_async.testing.replay` feeds it back to handlers without a guest.

The format (version :data:`VERSION`)
-------------------------------------

A file is :data:`MAGIC` (8 bytes) followed by *frames*: a 4-byte little-endian
length ``n`` (at most :data:`MAX_FRAME`), then ``n`` bytes of MessagePack
holding one Struct below.  The first frame is a :class:`Header`; then one
:class:`EventRecord` per event, written when its handlers are done (so in the
order the events ended), each flushed to the file at once; a session that
ends (normally or with an error) writes a :class:`Trailer` last.  A file cut
anywhere (a killed run, a full disk) stays readable up to its last whole frame.

The Structs of this module are the specification: field names are the
MessagePack map keys (``array_like`` Structs are arrays in field order), each
record of the stream is tagged by its ``type`` field (``"event"``,
``"trailer"``), and each request by its ``kind``.  The raw event is
:class:`syscalls_async.portal.types.RawEvent` as the portal decoded it from
the guest; the prototypes are
:class:`syscalls_async.syscalls.prototypes.SyscallPrototype`.  A reader refuses
a file of another format version (``Header.version``); a newer writer adds
fields with defaults within one version and raises the version for anything
else.

A recording is untrusted input: :func:`read_recording` decodes it with typed
decoders, checks bounds, and raises :class:`RecordingError` naming the file and
what is wrong with it.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal

import msgspec

from ..errors import GuestMemoryError, InvalidValue, PortalError
from ..portal.abi import MASK64
from ..portal.trap import PTRLIST_MAX, STR_MAX
from ..portal.trap import TrapProtocol as Trap
from ..portal.types import FdInfo, Mapping, ProcEntry, ProcInfo, RawEvent
from ..syscalls.policy import FailClosed, Policy
from ..syscalls.prototypes import RETVAL, PrototypeTable, SyscallPrototype

#: the first bytes of every recording
MAGIC = b"\x89SAREC\r\n"
#: the format version this package writes and reads
VERSION = 1
#: the largest frame a reader accepts (a handler may read 64 MiB at once)
MAX_FRAME = 256 * 1024 * 1024
_LEN = struct.Struct("<I")
log = logging.getLogger("syscalls")


class RecordingError(InvalidValue):
    """A recording cannot be read or written: not one, another version, corrupt,
    or a path that cannot be written."""


def package_version() -> str:
    """``syscalls_async.__version__`` (read late: this module loads before the package's
    ``__init__`` has set it)."""
    import syscalls_async

    return syscalls_async.__version__


# -- the format -----------------------------------------------------------------------------


class Header(msgspec.Struct, tag_field="type", tag="header", frozen=True):
    """The first frame: what produced the recording and the guest's syscall table."""

    #: the format version (:data:`VERSION`)
    version: int
    #: ``syscalls_async.__version__`` of the writer
    package_version: str
    #: the guest kernel's release and the image's digest (empty when unknown)
    kernel_release: str
    image_digest: str
    #: when recording started (seconds since the epoch)
    started: float
    #: the session's handler budget and failure policy (``None``: continue,
    #: else the errno a failure refuses the call with)
    handler_timeout: float
    fail_closed: int | None
    #: the guest kernel's syscall prototypes, as handlers got them
    prototypes: list[SyscallPrototype]


class Fault(msgspec.Struct, frozen=True, array_like=True):
    """A request that failed.  ``memory``: a :class:`GuestMemoryError` at ``addr``
    with ``errno``; ``gone``: the trap could not answer (``message`` says why)."""

    kind: Literal["memory", "gone"]
    addr: int = 0
    errno: int = 0
    message: str = ""


class ReadBytes(msgspec.Struct, tag_field="kind", tag="read_bytes", frozen=True):
    addr: int
    size: int
    data: bytes = b""
    fault: Fault | None = None


class ReadString(msgspec.Struct, tag_field="kind", tag="read_cstring", frozen=True):
    """A C string read (``read_str`` too), without its NUL."""

    addr: int
    max_len: int
    data: bytes = b""
    fault: Fault | None = None


class ReadPtrList(msgspec.Struct, tag_field="kind", tag="read_ptrlist", frozen=True):
    addr: int
    max_entries: int
    items: list[str] = []
    fault: Fault | None = None


class WriteBytes(msgspec.Struct, tag_field="kind", tag="write_bytes", frozen=True):
    addr: int
    data: bytes
    fault: Fault | None = None


class GetProc(msgspec.Struct, tag_field="kind", tag="proc_info", frozen=True):
    info: ProcInfo | None = None
    fault: Fault | None = None


class GetMappings(msgspec.Struct, tag_field="kind", tag="mappings", frozen=True):
    items: list[Mapping] = []
    fault: Fault | None = None


class GetFds(msgspec.Struct, tag_field="kind", tag="fds", frozen=True):
    items: list[FdInfo] = []
    fault: Fault | None = None


class GetProcesses(msgspec.Struct, tag_field="kind", tag="processes", frozen=True):
    items: list[ProcEntry] = []
    fault: Fault | None = None


#: one request a trapped task answered, with its answer
Request = (
    ReadBytes | ReadString | ReadPtrList | WriteBytes | GetProc | GetMappings | GetFds
    | GetProcesses
)  # fmt: skip


class RecordedVerdict(msgspec.Struct, frozen=True, array_like=True):
    """What the guest task was told: ``skipped`` (enter), ``retval`` (a skip's, or a
    changed result on return; ``None``: unchanged), ``changed_args`` by index."""

    skipped: bool = False
    retval: int | None = None
    changed_args: dict[int, int] = {}

    def describe(self) -> str:
        if self.skipped:
            return f"skipped with {self.retval}"
        parts = [f"arg {i} = {v:#x}" for i, v in sorted(self.changed_args.items())]
        if self.retval is not None:
            parts.append(f"retval = {self.retval}")
        return "continued" + (f" ({', '.join(parts)})" if parts else "")


class EventRecord(msgspec.Struct, tag_field="type", tag="event", frozen=True):
    """One event: as dispatched, the requests answered while its handlers ran (in
    order), and the verdict (observed events have none: nothing can change them)."""

    #: seconds since recording started, when the event reached the dispatcher
    time: float
    event: RawEvent
    requests: list[Request] = []
    verdict: RecordedVerdict = RecordedVerdict()


class Trailer(msgspec.Struct, tag_field="type", tag="trailer", frozen=True):
    """The last frame, written when the session ends (normally or with an error); a
    process that was killed (or a recording that failed) leaves none."""

    events: int


Record = EventRecord | Trailer


def fold_calls(calls: list[tuple[Any, ...]]) -> tuple[bool, int | None, dict[int, int]]:
    """What a trap's verdict calls (``("skip", v)``, ``("set_arg", i, v)``,
    ``("set_retval", v)``, in order) amount to: skipped, the return value the
    host chose (signed; ``None``: none), the changed arguments by index."""
    skipped = False
    retval: int | None = None
    changed: dict[int, int] = {}
    for call in calls:
        match call:
            case ("skip", value):
                skipped, retval = True, RETVAL.value(value)
            case ("set_arg", index, value):
                changed[index] = value & MASK64
            case ("set_retval", value):
                retval = RETVAL.value(value)
    return skipped, retval, changed


def verdict_of(calls: list[tuple[Any, ...]]) -> RecordedVerdict:
    """The verdict a trap's calls amount to (a skip's changed arguments do not count:
    the call does not run)."""
    skipped, retval, changed = fold_calls(calls)
    return RecordedVerdict(skipped=skipped, retval=retval, changed_args={} if skipped else changed)


# -- writing --------------------------------------------------------------------------------


class RecordingTrap:
    """A trap that passes everything on to the live one and notes the requests made,
    their answers and the verdict calls."""

    def __init__(self, trap: Trap) -> None:
        self.trap = trap
        self.requests: list[Request] = []
        self.calls: list[tuple[Any, ...]] = []

    @property
    def event(self) -> RawEvent:
        return self.trap.event

    @property
    def hook_ids(self) -> tuple[int, ...]:
        return self.trap.hook_ids

    def skip(self, retval: int) -> None:
        self.trap.skip(retval)
        self.calls.append(("skip", retval))

    def set_arg(self, index: int, value: int) -> None:
        self.trap.set_arg(index, value)
        self.calls.append(("set_arg", index, value))

    def set_retval(self, value: int) -> None:
        self.trap.set_retval(value)
        self.calls.append(("set_retval", value))

    async def _noted(
        self, call: Awaitable[Any], note: Callable[[Any, Fault | None], Request]
    ) -> Any:
        try:
            result = await call
        except GuestMemoryError as exc:
            self.requests.append(note(None, Fault("memory", exc.addr, exc.errno)))
            raise
        except PortalError as exc:
            self.requests.append(note(None, Fault("gone", message=str(exc))))
            raise
        self.requests.append(note(result, None))
        return result

    async def read_bytes(self, addr: int, size: int) -> bytes:
        data: bytes = await self._noted(
            self.trap.read_bytes(addr, size),
            lambda r, f: ReadBytes(addr, size, r or b"", f),
        )
        return data

    async def read_cstring(self, addr: int, max_len: int = STR_MAX) -> bytes:
        data: bytes = await self._noted(
            self.trap.read_cstring(addr, max_len),
            lambda r, f: ReadString(addr, max_len, r or b"", f),
        )
        return data

    async def read_str(self, addr: int, max_len: int = STR_MAX) -> str:
        return (await self.read_cstring(addr, max_len)).decode("utf-8", "surrogateescape")

    async def read_ptrlist(self, addr: int, max_entries: int = PTRLIST_MAX) -> list[str]:
        items: list[str] = await self._noted(
            self.trap.read_ptrlist(addr, max_entries),
            lambda r, f: ReadPtrList(addr, max_entries, r or [], f),
        )
        return items

    async def write_bytes(self, addr: int, data: bytes) -> None:
        await self._noted(
            self.trap.write_bytes(addr, data), lambda r, f: WriteBytes(addr, bytes(data), f)
        )

    async def proc_info(self) -> ProcInfo:
        info: ProcInfo = await self._noted(self.trap.proc_info(), lambda r, f: GetProc(r, f))
        return info

    async def mappings(self) -> list[Mapping]:
        items: list[Mapping] = await self._noted(
            self.trap.mappings(), lambda r, f: GetMappings(r or [], f)
        )
        return items

    async def fds(self) -> list[FdInfo]:
        items: list[FdInfo] = await self._noted(self.trap.fds(), lambda r, f: GetFds(r or [], f))
        return items

    async def processes(self) -> list[ProcEntry]:
        items: list[ProcEntry] = await self._noted(
            self.trap.processes(), lambda r, f: GetProcesses(r or [], f)
        )
        return items


Handler = Callable[[Trap], Awaitable[None]]


def _frame(record: Header | Record) -> bytes:
    payload = msgspec.msgpack.encode(record)
    return _LEN.pack(len(payload)) + payload


def policy_errno(policy: Policy) -> int | None:
    """The errno a failure policy refuses calls with (``None``: it lets them run)."""
    return policy.errno if isinstance(policy, FailClosed) else None


class Recorder:
    """Writes a recording: :meth:`tap` a handler, events are written as they end.

    The file is created at once (:class:`RecordingError` if it cannot be); the
    header follows with :meth:`start`, once the guest's prototypes are known.
    If writing an event fails (a full disk), recording stops there with an
    error on the ``syscalls`` logger and :attr:`failure` set; the session goes
    on, and the file stays readable up to the last event written.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 (closed in close())
            self._file.write(MAGIC)
        except OSError as exc:
            raise RecordingError(f"cannot write the recording {path}: {exc.strerror}") from None
        self._t0 = time.monotonic()
        self._started = False
        #: events written so far
        self.events = 0
        #: why recording stopped early, or ``None``
        self.failure: RecordingError | None = None

    def start(self, header: Header) -> None:
        self._t0 = time.monotonic()
        self._write(header)
        self._started = True

    def tap(self, handler: Handler) -> Handler:
        """``handler`` (the dispatcher) with every event it handles recorded."""

        async def recorded(trap: Trap) -> None:
            at = time.monotonic() - self._t0
            noting = RecordingTrap(trap)
            try:
                await handler(noting)
            finally:
                # the verdict so far stands even when the handlers were cut short
                self.event(at, trap.event, noting)

        return recorded

    def event(self, at: float, event: RawEvent, noting: RecordingTrap) -> None:
        if not self._started or self._file is None:
            return
        verdict = RecordedVerdict() if event.observed else verdict_of(noting.calls)
        try:
            self._write(EventRecord(at, event, noting.requests, verdict))
        except RecordingError as exc:
            # the guest's task must not pay for our disk: stop recording, say so once
            self.failure = exc
            log.error("%s; recording stopped after %d events", exc, self.events)
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
            return
        self.events += 1

    def _write(self, record: Header | Record) -> None:
        assert self._file is not None
        try:
            self._file.write(_frame(record))
            self._file.flush()
        except OSError as exc:
            raise RecordingError(f"cannot write the recording {self.path}: {exc}") from None

    def close(self) -> None:
        """Write the trailer (if the header was written) and close the file."""
        if self._file is None:
            return
        try:
            if self._started:
                self._write(Trailer(self.events))
        finally:
            self._file.close()
            self._file = None


def header(
    prototypes: PrototypeTable,
    *,
    kernel_release: str = "",
    image_digest: str = "",
    handler_timeout: float = 30.0,
    on_error: Policy = "continue",
) -> Header:
    """The header of a recording made now with this guest's prototypes and session settings."""
    return Header(
        version=VERSION,
        package_version=package_version(),
        kernel_release=kernel_release,
        image_digest=image_digest,
        started=time.time(),
        handler_timeout=handler_timeout,
        fail_closed=policy_errno(on_error),
        prototypes=prototypes.all(),
    )


# -- reading --------------------------------------------------------------------------------


class _Corrupt(RecordingError):
    """What is wrong with a frame (reported with the file and the frame's offset)."""


class _Version(msgspec.Struct):
    """What any version's header has: read first, before the rest is trusted."""

    type: str
    version: int


class Recording(msgspec.Struct, frozen=True):
    """A recording as read: its header, its events, and how it ended."""

    header: Header
    events: list[EventRecord]
    #: the session ended (its trailer was read)
    complete: bool
    #: why reading stopped early (a cut frame), or ``""``
    cut: str = ""


_header_decoder = msgspec.msgpack.Decoder(Header)
_version_decoder = msgspec.msgpack.Decoder(_Version)
_record_decoder = msgspec.msgpack.Decoder(Record)


def _frames(data: bytes, start: int) -> Iterator[tuple[int, bytes | None]]:
    """``(offset, payload)`` of each frame; a cut last frame yields ``None``."""
    at = start
    while at < len(data):
        if at + _LEN.size > len(data):
            yield at, None
            return
        (n,) = _LEN.unpack_from(data, at)
        if n > MAX_FRAME:
            raise _Corrupt(f"a frame of {n} bytes at offset {at} (at most {MAX_FRAME})")
        if at + _LEN.size + n > len(data):
            yield at, None
            return
        yield at, data[at + _LEN.size : at + _LEN.size + n]
        at += _LEN.size + n


def _check_event(event: RawEvent) -> None:
    words = (*event.args, event.retval, event.pc, event.sp, *event.regs)
    if len(event.args) != 6 or len(event.strings) > 6:
        raise _Corrupt("an event has 6 arguments (and at most 6 captured strings)")
    # (the portal hands some words on signed: either way they fit in 64 bits)
    if not all(-(1 << 63) <= w <= MASK64 for w in words) or not 0 <= event.nr <= MASK64:
        raise _Corrupt("a register value outside 64 bits")


def read_recording(path: str | Path) -> Recording:
    """Read and check a whole recording (a cut tail is reported in ``cut``).

    Raises :class:`RecordingError` for a file that is not a recording, one of
    another format version, or one with a corrupt frame.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise RecordingError(f"cannot read the recording {path}: {exc.strerror}") from None
    if not data.startswith(MAGIC):
        raise RecordingError(f"{path} is not a syscalls-async recording (no recording magic)")
    frames = _frames(data, len(MAGIC))
    where = len(MAGIC)
    try:
        first = next(frames, None)
        if first is None or first[1] is None:
            raise RecordingError(f"{path}: the recording is cut before its header ends")
        seen = _version_decoder.decode(first[1])
        if seen.type != "header":
            raise _Corrupt(f"the first frame is a {seen.type!r}, not the header")
        if seen.version != VERSION:
            raise RecordingError(
                f"{path} is a recording of format version {seen.version}; this syscalls-async "
                f"({package_version()}) reads version {VERSION}"
            )
        head = _header_decoder.decode(first[1])
        events: list[EventRecord] = []
        complete = False
        cut = ""
        for where, payload in frames:
            if payload is None:
                cut = f"the recording is cut at byte {where} (a frame not written whole)"
                break
            if complete:
                raise _Corrupt("a frame after the trailer")
            match _record_decoder.decode(payload):
                case EventRecord() as record:
                    _check_event(record.event)
                    events.append(record)
                case Trailer(events=n):
                    if n != len(events):
                        raise _Corrupt(f"the trailer counts {n} events, the file holds "
                                         f"{len(events)}")  # fmt: skip
                    complete = True
    except (msgspec.ValidationError, msgspec.DecodeError, _Corrupt) as exc:
        raise RecordingError(f"{path}: corrupt recording at byte {where}: {exc}") from None
    if not complete and not cut:
        cut = "the recording has no trailer (its process was killed, or writing it failed)"
    return Recording(head, events, complete, cut)
