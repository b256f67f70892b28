"""The package's exceptions: one tree, one branch per family, most generic first.

Every exception raised on purpose by syscalls-async derives from
:class:`SyscallsAsyncError`, so ``except SyscallsAsyncError`` catches exactly
the framework's own failures.  Each family has its own branch, so no
``except`` clause has to come before another::

    SyscallsAsyncError
    ├── UsageError            the API used wrongly
    │   ├── StateError        ... at a time its state does not allow (also RuntimeError)
    │   │   ├── HandlerContextError
    │   │   ├── ReadOnlyHookError
    │   │   └── ObserveOnlyError
    │   ├── InvalidValue      ... with a value it cannot take (also ValueError)
    │   │   ├── OutOfRange
    │   │   │   └── IndexOutOfRange (also IndexError)
    │   │   └── RequestTooLarge
    │   └── InvalidType       ... with an argument of the wrong type (also TypeError)
    ├── RegistrationError     a hook registered wrongly (also ValueError)
    ├── HandlerError          a handler failed and the session fails fast
    ├── GuestMemoryError      a guest memory access failed
    ├── PortalError           the shared-memory link to the guest module
    │   ├── PortalVersionError, PortalProtocolError, PortalLost
    │   └── TrapGone
    └── MachineError          the guest machine and what it is built from
        ├── GuestPanic, BootTimeout
        ├── CommandTimeout, CommandFailed
        └── ImageBuildError, SetupError

Where a builtin type is part of a contract (``ValueError`` for argparse's
``type=`` functions, ``TypeError`` for a wrong argument type) the class derives
from both.
"""

from __future__ import annotations


class SyscallsAsyncError(Exception):
    """Base class of every error raised by syscalls-async."""


# -- using the API wrongly ------------------------------------------------------------


class UsageError(SyscallsAsyncError):
    """The framework was used in a way it cannot honour (the message says what would)."""


class StateError(UsageError, RuntimeError):
    """A call came at a time the object's state does not allow (a session that is
    not running, plugins that already belong to one, ...)."""


class HandlerContextError(StateError):
    """A guest-memory or process call was made outside a syscall handler."""


class ReadOnlyHookError(StateError):
    """A handler registered with ``read_only=True`` tried to change the call.

    Raised at the write (``skip_syscall``, ``retval``, ``args[i]``, a register);
    the change is not applied and the attempt is counted
    (``session.stats.read_only_refused``).
    """


class ObserveOnlyError(StateError):
    """An observe-only (``read_only=True``) handler asked for something only a
    waiting guest task can serve: its task did not wait, so guest memory,
    process information and verdicts are out of reach.  What the guest
    captured at the time of the call is there instead: the arguments, and the
    user strings the prototype marks (``syscall.strings[i]``, which
    ``plugins.mem.read_str`` answers from)."""


class InvalidValue(UsageError, ValueError):
    """An argument or setting has a value the framework cannot take."""


class OutOfRange(InvalidValue):
    """A value does not fit where it goes: a guest address outside the 64-bit
    address space, a verdict value wider than 64 bits, an int written into 4 bytes
    that needs more.  Refused instead of wrapped."""


class IndexOutOfRange(OutOfRange, IndexError):
    """An index past the end (a syscall has six argument registers)."""


class RequestTooLarge(InvalidValue):
    """A guest memory request asked for an absurd size."""


class InvalidType(UsageError, TypeError):
    """An argument has the wrong type."""


# -- registration ---------------------------------------------------------------------


class RegistrationError(SyscallsAsyncError, ValueError):
    """A hook was registered wrongly; the message says what would be right."""


# -- handlers -------------------------------------------------------------------------


class HandlerError(SyscallsAsyncError):
    """A handler failed and the session was set to fail fast (``__cause__`` is why)."""


# -- guest memory ---------------------------------------------------------------------


class GuestMemoryError(SyscallsAsyncError):
    """Reading or writing guest memory failed at ``addr`` (``errno`` from the guest)."""

    def __init__(self, addr: int, errno: int, what: str = "access") -> None:
        self.addr = addr
        self.errno = errno
        super().__init__(f"guest memory {what} failed at {addr:#x} (errno {errno})")


# -- the portal -----------------------------------------------------------------------


class PortalError(SyscallsAsyncError):
    """The portal (the shared-memory link to the guest module) failed."""


class PortalVersionError(PortalError):
    """The guest module speaks another portal ABI (magic, version or layout)."""


class PortalProtocolError(PortalError):
    """The guest wrote something invalid; it was refused and counted."""


class PortalLost(PortalError):
    """The portal went away while attached: the guest module was unloaded or
    reloaded, or the region no longer holds a valid portal (magic, boot id,
    state).  No hook is in force any more; a session raises this from
    :meth:`Session.run` and on exit instead of running commands unhooked."""


class TrapGone(PortalError):
    """The trapped guest task no longer waits (deadline, fatal signal, unload)."""


# -- the machine ----------------------------------------------------------------------


class MachineError(SyscallsAsyncError):
    """The guest machine failed: QEMU died, the boot never became ready, ..."""

    def __init__(self, message: str, console_tail: str = "") -> None:
        self.console_tail = console_tail
        if console_tail:
            message = f"{message}\n--- last console lines ---\n{console_tail}"
        super().__init__(message)


class GuestPanic(MachineError):
    """The guest kernel panicked."""


class BootTimeout(MachineError):
    """The guest did not become ready in time."""


class CommandTimeout(MachineError):
    """A command run in the guest outlived its timeout and was killed.

    ``stdout`` and ``stderr`` hold what it printed before that.
    """

    def __init__(self, command: str, timeout: float, stdout: bytes, stderr: bytes) -> None:
        self.command = command
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"command {command!r} did not finish within {timeout:g} s")


class CommandFailed(MachineError):
    """The guest agent could not start a command at all."""


class ImageBuildError(MachineError):
    """Building the guest image failed; the message says which step."""


class SetupError(MachineError):
    """The host lacks something the framework needs (tools, packages, rights, settings)."""
