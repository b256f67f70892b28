"""syscalls-async: monitor, filter and intercept the system calls of a QEMU guest."""

from __future__ import annotations

import logging

from .errors import (
    BootTimeout,
    CommandFailed,
    CommandTimeout,
    GuestPanic,
    ImageBuildError,
    MachineError,
    SetupError,
    SyscallsAsyncError,
)

__all__ = [
    "SyscallsAsyncError",
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
