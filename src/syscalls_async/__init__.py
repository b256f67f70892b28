"""syscalls-async: monitor, filter and intercept the system calls of a QEMU guest."""

from __future__ import annotations

import logging

from .api import Plugin, Session, plugins
from .errors import (
    BootTimeout,
    CommandFailed,
    CommandTimeout,
    GuestMemoryError,
    GuestPanic,
    HandlerContextError,
    HandlerError,
    ImageBuildError,
    IndexOutOfRange,
    InvalidType,
    InvalidValue,
    MachineError,
    ObserveOnlyError,
    OutOfRange,
    PortalError,
    PortalLost,
    PortalProtocolError,
    PortalVersionError,
    ReadOnlyHookError,
    RegistrationError,
    RequestTooLarge,
    SetupError,
    StateError,
    SyscallsAsyncError,
    TrapGone,
    UsageError,
)
from .syscalls import FailClosed, Hook, ObservedSyscall, ValueFilter

__all__ = [
    # the plugin API, most used first
    "plugins",
    "Plugin",
    "Session",
    "ValueFilter",
    "FailClosed",
    "Hook",
    "ObservedSyscall",
    # errors, most generic to most explicit: each family's base, then its members
    "SyscallsAsyncError",
    "UsageError",
    "StateError",
    "HandlerContextError",
    "ReadOnlyHookError",
    "ObserveOnlyError",
    "InvalidValue",
    "OutOfRange",
    "IndexOutOfRange",
    "RequestTooLarge",
    "InvalidType",
    "RegistrationError",
    "HandlerError",
    "GuestMemoryError",
    "PortalError",
    "PortalVersionError",
    "PortalProtocolError",
    "PortalLost",
    "TrapGone",
    "MachineError",
    "GuestPanic",
    "BootTimeout",
    "CommandTimeout",
    "CommandFailed",
    "ImageBuildError",
    "SetupError",
]

__version__ = "0.1.0"

logging.getLogger("syscalls").addHandler(logging.NullHandler())
