"""Replaying a recording: its events fed to handlers again, without a guest.

A recording (``Session(record=PATH)``, ``syscalls-async run --record FILE``;
the format is in :mod:`syscalls_async.api.record`) holds each event as it was
dispatched, the memory its handlers read with the answers, and the verdicts.
:func:`replay` runs the hooks of a plugins object on those events through the
session's own dispatcher (the same filters, order, budget and failure policy
as the recorded session), answers memory and process requests from the
recording, and reports where the verdicts differ::

    from syscalls_async import plugins
    from syscalls_async.api import load_plugin_file
    from syscalls_async.testing import replay

    load_plugin_file("file_access.py")
    report = await replay("run.rec", plugins)
    print(report.summary())
    assert report.same

A request the recording does not hold (a handler that reads something else
than it did when recorded) raises :class:`GuestMemoryError` in the handler,
saying so, and counts as a divergence; so does a write that differs.  Events
run one at a time, in the order their handlers ended when recorded.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from .._text import printable
from ..api.plugins import Plugins
from ..api.record import (
    Fault,
    GetFds,
    GetMappings,
    GetProc,
    GetProcesses,
    ReadBytes,
    ReadPtrList,
    ReadString,
    RecordedVerdict,
    Recording,
    Request,
    WriteBytes,
    read_recording,
    verdict_of,
)
from ..errors import GuestMemoryError, TrapGone
from ..portal.trap import PTRLIST_MAX, STR_MAX, ObservedTrap, check_address
from ..portal.types import FdInfo, Mapping, ProcEntry, ProcInfo, RawEvent
from ..syscalls.dispatch import DispatchStats
from ..syscalls.policy import FailClosed, OnError
from ..syscalls.prototypes import PrototypeTable
from .fake import FakeGuest, FakeTrap


class Divergence(msgspec.Struct, frozen=True):
    """One event where the replay did not do what the recording says."""

    #: the event's position in the recording (0 is the first)
    index: int
    #: the event, e.g. ``openat enter by cat[102]``
    event: str
    #: what differed
    reason: str
    recorded: RecordedVerdict | None = None
    replayed: RecordedVerdict | None = None


class ReplayReport(msgspec.Struct):
    """What a replay found.  ``same`` when no verdict or request differed."""

    events: int
    observed: int
    divergences: list[Divergence]
    #: the recording has its trailer (else it was cut: ``cut`` says where)
    complete: bool
    cut: str
    stats: DispatchStats

    @property
    def same(self) -> bool:
        return not self.divergences

    def summary(self) -> str:
        """A readable account: the counts, then each divergence on a line."""
        kinds = f"{self.events} events ({self.observed} observed)"
        lines = [
            f"replayed {kinds}: "
            + ("verdicts as recorded" if self.same else f"{len(self.divergences)} divergence(s)")
        ]
        if self.stats.handler_errors:
            lines.append(f"handler errors: {self.stats.handler_errors}")
        if self.cut:
            lines.append(f"note: {self.cut}")
        for d in self.divergences:
            line = f"  #{d.index} {d.event}: {d.reason}"
            if d.recorded is not None and d.replayed is not None:
                line += f" (recorded: {d.recorded.describe()}; replayed: {d.replayed.describe()})"
            lines.append(line)
        return "\n".join(lines)


def _what(event: RawEvent, table: PrototypeTable) -> str:
    phase = "observed " if event.observed else ""
    name = table.for_abi(event.compat).by_nr(event.nr).short_name
    return f"{name} {phase}{event.phase.name.lower()} by {printable(event.comm)}[{event.pid}]"


class ReplayTrap(FakeTrap):
    """A fake trap whose requests are answered from one recorded event.

    A request is answered by the recorded ones of the same kind and operands,
    in their order (the last again once they run out: memory a handler wrote
    reads back as it did when recorded); one the recording does not hold raises
    :class:`GuestMemoryError` and is listed in :attr:`unanswered`.
    """

    def __init__(self, event: RawEvent, requests: Sequence[Request], hook_ids: tuple[int, ...]):
        super().__init__(event, hook_ids=hook_ids)
        self._answers: dict[tuple[Any, ...], list[Request]] = {}
        for r in requests:
            self._answers.setdefault(_key(r), []).append(r)
        self._writes = [_key(r) for r in requests if isinstance(r, WriteBytes)]
        #: requests made in the replay that the recording does not answer
        self.unanswered: list[str] = []

    def _answer(self, key: tuple[Any, ...], what: str, addr: int | None = None) -> Request:
        answers = self._answers.get(key)
        if not answers:
            self.unanswered.append(what if addr is None else f"{what} at {addr:#x}")
            raise GuestMemoryError(
                addr or 0, errno.EFAULT, f"{what} (not in the recording being replayed)"
            )
        found = answers.pop(0) if len(answers) > 1 else answers[0]
        if found.fault is not None:
            # worded as the live trap words it: a handler printing it prints the same
            _raise(found.fault, _LIVE_WHAT[key[0]])
        return found

    @property
    def missing_writes(self) -> list[str]:
        """Writes the recording holds that the replay did not make."""
        made = {("write_bytes", *r[1:]) for r in self.requests if r[0] == "write_bytes"}
        return [f"write of {len(k[2])} bytes at {k[1]:#x}" for k in self._writes if k not in made]

    async def read_bytes(self, addr: int, size: int) -> bytes:
        check_address(addr, size, "read")
        self.requests.append(("read_bytes", addr, size))
        r = self._answer(("read_bytes", addr, size), f"read of {size} bytes", addr)
        assert isinstance(r, ReadBytes)
        return r.data

    async def read_cstring(self, addr: int, max_len: int = STR_MAX) -> bytes:
        check_address(addr, 1, "string read")
        self.requests.append(("read_cstring", addr, max_len))
        r = self._answer(("read_cstring", addr, max_len), "string read", addr)
        assert isinstance(r, ReadString)
        return r.data

    async def read_str(self, addr: int, max_len: int = STR_MAX) -> str:
        return (await self.read_cstring(addr, max_len)).decode("utf-8", "surrogateescape")

    async def read_ptrlist(self, addr: int, max_entries: int = PTRLIST_MAX) -> list[str]:
        check_address(addr, 8, "pointer list read")
        self.requests.append(("read_ptrlist", addr, max_entries))
        r = self._answer(("read_ptrlist", addr, max_entries), "pointer list read", addr)
        assert isinstance(r, ReadPtrList)
        return list(r.items)

    async def write_bytes(self, addr: int, data: bytes) -> None:
        check_address(addr, len(data), "write")
        self.requests.append(("write_bytes", addr, bytes(data)))
        self._answer(("write_bytes", addr, bytes(data)), f"write of {len(data)} bytes", addr)

    async def proc_info(self) -> ProcInfo:
        self.requests.append(("proc_info",))
        r = self._answer(("proc_info",), "process information")
        assert isinstance(r, GetProc) and r.info is not None
        return r.info

    async def mappings(self) -> list[Mapping]:
        self.requests.append(("mappings",))
        r = self._answer(("mappings",), "the memory mappings")
        assert isinstance(r, GetMappings)
        return list(r.items)

    async def fds(self) -> list[FdInfo]:
        self.requests.append(("fds",))
        r = self._answer(("fds",), "the open file descriptors")
        assert isinstance(r, GetFds)
        return list(r.items)

    async def processes(self) -> list[ProcEntry]:
        self.requests.append(("processes",))
        r = self._answer(("processes",), "the process list")
        assert isinstance(r, GetProcesses)
        return list(r.items)


def _key(r: Request) -> tuple[Any, ...]:
    match r:
        case ReadBytes(addr=addr, size=size):
            return ("read_bytes", addr, size)
        case ReadString(addr=addr, max_len=max_len):
            return ("read_cstring", addr, max_len)
        case ReadPtrList(addr=addr, max_entries=n):
            return ("read_ptrlist", addr, n)
        case WriteBytes(addr=addr, data=data):
            return ("write_bytes", addr, data)
        case GetProc() | GetMappings() | GetFds() | GetProcesses():
            return (type(r).__struct_config__.tag,)
    raise AssertionError(r)


#: what a live trap's GuestMemoryError says failed, per request
_LIVE_WHAT = {
    "read_bytes": "read",
    "read_cstring": "string read",
    "read_ptrlist": "pointer list read",
    "write_bytes": "write",
    "proc_info": "request",
    "mappings": "request",
    "fds": "request",
    "processes": "request",
}


def _raise(fault: Fault, what: str) -> None:
    if fault.kind == "memory":
        raise GuestMemoryError(fault.addr, fault.errno, what)
    raise TrapGone(f"{what}: {fault.message} (as recorded)")


async def replay(
    recording: str | Path | Recording,
    plugins: Plugins,
    *,
    prototypes: PrototypeTable | None = None,
) -> ReplayReport:
    """Feed a recording to the hooks of ``plugins``; the report of where they differ.

    ``prototypes`` defaults to the recording's own table (what the handlers got
    when it was made).  The hooks run with the recorded session's handler budget
    and failure policy.  Raises :class:`~syscalls_async.api.record.RecordingError`
    for a file that is not a readable recording.
    """
    rec = recording if isinstance(recording, Recording) else read_recording(recording)
    head = rec.header
    table = (
        prototypes
        if prototypes is not None
        else PrototypeTable(
            [p for p in head.prototypes if not p.compat], [p for p in head.prototypes if p.compat]
        )
    )
    policy: OnError = "continue" if head.fail_closed is None else FailClosed(head.fail_closed)
    divergences: list[Divergence] = []
    observed = 0
    with FakeGuest(
        plugins,
        prototypes=table,
        handler_timeout=head.handler_timeout,
        on_error=policy,
        raise_errors=False,
    ) as guest:
        ids = tuple(h.id for h in guest.registry)
        for index, record in enumerate(rec.events):
            event = record.event
            if event.observed:
                observed += 1
                await guest.dispatcher(ObservedTrap(event, ids))
                continue
            trap = ReplayTrap(event, record.requests, ids)
            await guest.dispatcher(trap)
            verdict = verdict_of(trap.calls)
            what = _what(event, table)
            reasons = [f"no recorded answer to the {r}" for r in trap.unanswered]
            reasons += [f"the recorded {w} was not made" for w in trap.missing_writes]
            differs = verdict != record.verdict
            if differs:
                reasons.insert(0, "the verdict differs")
            if reasons:
                shown = (record.verdict, verdict) if differs else (None, None)
                divergences.append(Divergence(index, what, "; ".join(reasons), *shown))
        stats = guest.stats
    return ReplayReport(
        events=len(rec.events),
        observed=observed,
        divergences=divergences,
        complete=rec.complete,
        cut=rec.cut,
        stats=stats,
    )
