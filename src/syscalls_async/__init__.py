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
    MachineError,
    PortalError,
    PortalProtocolError,
    PortalVersionError,
    RegistrationError,
    RequestTooLarge,
    SetupError,
    SyscallsAsyncError,
    TrapGone,
)
from .syscalls import ValueFilter

__all__ = [
    "BootTimeout",
    "CommandFailed",
    "CommandTimeout",
    "GuestMemoryError",
    "GuestPanic",
    "HandlerContextError",
    "HandlerError",
    "ImageBuildError",
    "MachineError",
    "Plugin",
    "PortalError",
    "PortalProtocolError",
    "PortalVersionError",
    "RegistrationError",
    "RequestTooLarge",
    "Session",
    "SetupError",
    "SyscallsAsyncError",
    "TrapGone",
    "ValueFilter",
    "plugins",
]

__version__ = "0.1.0"

logging.getLogger("syscalls").addHandler(logging.NullHandler())
