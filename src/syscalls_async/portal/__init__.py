"""The portal: the host end of the shared-memory link to the guest module.

Generic layer (slots, requests, futures, hook table, metadata); the syscall
API sits on top of it.  Imports only :mod:`syscalls_async.machine` (for the
header's location) and :mod:`syscalls_async.errors`.
"""

from __future__ import annotations

from .doorbell import BellCounters
from .hooks import NR_ALL, NR_UNKNOWN, FilterKind, GuestFilter, HookSpec
from .portal import Handler, Observer, PollPolicy, Portal
from .ring import RingStats
from .trap import ObservedTrap, Trap, TrapProtocol
from .types import (
    CapturedString,
    FdInfo,
    GuestCounters,
    HostCounters,
    Mapping,
    Phase,
    ProcEntry,
    ProcInfo,
    SyscallEvent,
    SyscallMeta,
)

__all__ = [
    "NR_ALL",
    "NR_UNKNOWN",
    "BellCounters",
    "CapturedString",
    "FdInfo",
    "FilterKind",
    "GuestCounters",
    "GuestFilter",
    "Handler",
    "HookSpec",
    "HostCounters",
    "Mapping",
    "ObservedTrap",
    "Observer",
    "Phase",
    "PollPolicy",
    "Portal",
    "ProcEntry",
    "ProcInfo",
    "RingStats",
    "SyscallEvent",
    "SyscallMeta",
    "Trap",
    "TrapProtocol",
]
