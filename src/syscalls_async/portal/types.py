"""Decoded portal data: what crosses from the guest to the host's upper layers."""

from __future__ import annotations

import enum

import msgspec


class Phase(enum.IntEnum):
    """Where in the syscall the task was trapped."""

    ENTER = 1
    RETURN = 2


class SyscallMeta(msgspec.Struct, frozen=True):
    """One syscall's prototype from the guest kernel's ftrace metadata."""

    nr: int
    name: str  # "" when not known: the guest has no name for it
    nargs: int
    types: tuple[str, ...]
    names: tuple[str, ...]
    known: bool
    truncated: bool = False
    #: False if ftrace cannot hook this syscall's entry (a notrace function)
    hookable: bool = True
    #: False for a syscall the guest names but has no prototype for (some of
    #: the compat ABI's: ``nargs`` is then 0 and ``types`` empty)
    prototype: bool = True


class CapturedString(msgspec.Struct, frozen=True, gc=False):  # no cycles: bytes and flags
    """A user string an observed event captured at the time of the call.

    ``data`` holds at most ``SA_STR_CAP`` (256) bytes, without the NUL;
    ``truncated``: the string was longer (or exactly that long); ``fault``:
    the guest could not read it (``data`` is empty).
    """

    data: bytes
    truncated: bool = False
    fault: bool = False

    @property
    def text(self) -> str:
        """``data`` decoded as UTF-8 (undecodable bytes escaped)."""
        return self.data.decode("utf-8", "surrogateescape")


class RawEvent(msgspec.Struct, frozen=True, gc=False):
    """A syscall as the guest reported it (a trapped slot or a ring record),
    copied out once and validated: the raw event *in*.  Handlers get the user
    event built from it, :class:`syscalls_async.syscalls.SyscallEvent`.

    ``gc=False``: it holds only ints, text and tuples of them (and
    :class:`CapturedString`, the same), so it can never be part of a reference
    cycle; untracked, the thousands a ring drain makes cost the cycle
    collector nothing (12% of the observed path's CPU time when tracked).

    ``matched`` holds hook *table indices* (positions in the list given to
    :meth:`Portal.set_hooks` for table generation ``hooks_gen``) whose
    guest-side filters matched.
    """

    slot: int
    epoch: int
    seq: int
    phase: Phase
    nr: int
    pid: int
    tgid: int
    comm: str
    args: tuple[int, ...]
    retval: int
    pc: int
    sp: int
    matched: tuple[int, ...]
    regs: tuple[int, ...]
    hooks_gen: int = 0
    #: a return phase: a signal interrupted the call and the kernel runs it
    #: again; ``retval`` is the kernel's -ERESTART* code, not a result
    restarted: bool = False
    #: the call came through the guest's compat ABI (x86_64: ia32, a 32-bit
    #: program): ``nr`` indexes that ABI's table, ``args`` are its argument
    #: registers (:data:`~syscalls_async.portal.arch.IA32`)
    compat: bool = False
    #: an observe-only event from a ring (``slot`` is then the ring's index):
    #: the task did not wait, nothing can change the call
    observed: bool = False
    #: per argument register word, the user string the guest captured when
    #: it wrote the event (``None``: the prototype marks no string there);
    #: observed events and blocking ones alike
    strings: tuple[CapturedString | None, ...] = ()


class ProcInfo(msgspec.Struct, frozen=True):
    """The trapped task's process."""

    pid: int
    tgid: int
    ppid: int
    uid: int
    comm: str
    exe: str
    cwd: str
    argv: tuple[str, ...]
    truncated: bool = False


class Mapping(msgspec.Struct, frozen=True):
    """One memory mapping of the trapped task's process (like /proc/PID/maps)."""

    start: int
    end: int
    offset: int
    inode: int
    read: bool
    write: bool
    execute: bool
    shared: bool
    path: str
    path_truncated: bool = False

    @property
    def perms(self) -> str:
        return "".join(
            (
                "r" if self.read else "-",
                "w" if self.write else "-",
                "x" if self.execute else "-",
                "s" if self.shared else "p",
            )
        )


class FdInfo(msgspec.Struct, frozen=True):
    """An open file descriptor of the trapped task."""

    fd: int
    path: str


class ProcEntry(msgspec.Struct, frozen=True):
    """One process of the guest's process list."""

    pid: int
    ppid: int
    uid: int
    comm: str


class GuestCounters(msgspec.Struct, frozen=True):
    """The module's counters from the portal header (``kernel/portal_abi.h``
    says what each counts).  Subtracting two gives what happened between."""

    events: int = 0
    verdicts: int = 0
    requests: int = 0
    #: hooked calls that ran unhooked: no answer within the deadline
    deadline_expired: int = 0
    fatal_signal: int = 0
    #: hooked calls that ran unhooked: no free slot within the deadline
    no_slot: int = 0
    bad_host_msg: int = 0
    #: hooked calls that ran unhooked: the host had stopped beating
    host_dead_skips: int = 0
    table_updates: int = 0
    table_rejects: int = 0
    #: interrupted calls whose return event could not be sent
    restart_lost: int = 0
    filter_faults: int = 0
    #: waits ended because the host stopped beating
    host_lost: int = 0
    #: return events sent once a signal decided an interrupted call's outcome
    signal_returns: int = 0
    #: events of syscall numbers beyond the table
    out_of_range: int = 0
    #: observe-only records written to a ring
    observed: int = 0
    #: observe-only records that did not fit in their ring (dropped)
    ring_drops: int = 0
    #: times the guest rang the host's doorbell (it rings only while the host sleeps)
    bells: int = 0

    def __sub__(self, other: GuestCounters) -> GuestCounters:
        return GuestCounters(
            **{f: getattr(self, f) - getattr(other, f) for f in self.__struct_fields__}
        )

    def __add__(self, other: GuestCounters) -> GuestCounters:
        return GuestCounters(
            **{f: getattr(self, f) + getattr(other, f) for f in self.__struct_fields__}
        )


class HostCounters(msgspec.Struct):
    """What the host refused or survived."""

    events: int = 0
    refused: int = 0
    #: traps whose guest task stopped waiting before the host answered
    abandoned: int = 0
    handler_errors: int = 0
    stale_responses: int = 0
    #: verdicts that reached no waiting task: the task stopped waiting (its
    #: deadline passed, or it was killed) before the verdict was written, or
    #: just as it was written; the syscall went on without it
    late_verdicts: int = 0
    #: string reads of a blocking trap answered from the strings the guest
    #: captured with its event (no round trip to the guest)
    captured_reads: int = 0
    #: events that waited for their slot's previous handlers to end (at most one
    #: handler runs per slot; a guest republishing faster than that waits)
    slot_busy: int = 0
