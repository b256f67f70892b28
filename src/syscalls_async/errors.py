"""The package's exceptions, most generic first.

Every exception raised on purpose by syscalls-async derives from
:class:`SyscallsAsyncError`, so ``except SyscallsAsyncError`` catches exactly
the framework's own failures.
"""

from __future__ import annotations


class SyscallsAsyncError(Exception):
    """Base class of every error raised by syscalls-async."""


class SetupError(SyscallsAsyncError):
    """The host lacks something the framework needs (tools, packages, rights)."""


class ImageBuildError(SyscallsAsyncError):
    """Building the guest image failed; the message says which step."""


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


class CommandTimeout(SyscallsAsyncError):
    """A command run in the guest outlived its timeout and was killed.

    ``stdout`` and ``stderr`` hold what it printed before that.
    """

    def __init__(self, command: str, timeout: float, stdout: bytes, stderr: bytes) -> None:
        self.command = command
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"command {command!r} did not finish within {timeout:g} s")


class CommandFailed(SyscallsAsyncError):
    """The guest agent could not start a command at all."""


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


class GuestMemoryError(PortalError):
    """Reading or writing guest memory failed at ``addr`` (``errno`` from the guest)."""

    def __init__(self, addr: int, errno: int, what: str = "access") -> None:
        self.addr = addr
        self.errno = errno
        super().__init__(f"guest memory {what} failed at {addr:#x} (errno {errno})")


class RegistrationError(SyscallsAsyncError, ValueError):
    """A hook was registered wrongly; the message says what would be right."""


class HandlerError(SyscallsAsyncError):
    """A handler failed and the session was set to fail fast (``__cause__`` is why)."""


class ReadOnlyHookError(SyscallsAsyncError):
    """A handler registered with ``read_only=True`` tried to change the call.

    Raised at the write (``skip_syscall``, ``retval``, ``args[i]``, a register);
    the change is not applied and the attempt is counted
    (``session.stats.read_only_refused``).
    """


class ObserveOnlyError(SyscallsAsyncError):
    """An observe-only (``read_only=True``) handler asked for something only a
    waiting guest task can serve: its task did not wait, so guest memory,
    process information and verdicts are out of reach.  What the guest
    captured at the time of the call is there instead: the arguments, and the
    user strings the prototype marks (``syscall.strings[i]``, which
    ``plugins.mem.read_str`` answers from)."""


class HandlerContextError(SyscallsAsyncError):
    """A guest-memory or process call was made outside a syscall handler."""


class RequestTooLarge(SyscallsAsyncError, ValueError):
    """A guest memory request asked for an absurd size."""


class OutOfRange(SyscallsAsyncError, ValueError):
    """A value does not fit where it goes: a guest address outside the 64-bit
    address space, a verdict value wider than 64 bits, an int written into 4 bytes
    that needs more.  Refused instead of wrapped."""
