"""An strace-like tracer built on the plugin API.

Example::

    tracer = Tracer(plugins, comm="cat", emit=print_record)
    await tracer.start()            # hooks live in the guest
    await session.run("cat /etc/passwd")

Every syscall of the traced processes becomes one :class:`TraceRecord` at its
return (``exit``/``exit_group``, which never return, at entry).  Arguments
declared as C strings are read from the task's memory; everything else is
shown as the number its C type makes of the register.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Any

import msgspec

from .._text import printable, quoted
from ..errors import GuestMemoryError, TrapGone
from ..syscalls.event import SyscallEvent
from ..syscalls.names import normalize
from ..syscalls.prototypes import SyscallPrototype
from .mem import trap
from .plugins import Plugins

#: longest string argument shown (longer ones end with "...")
STRING_SHOWN = 64
_NO_RETURN = ("exit", "exit_group")
#: the kernel's restart codes (include/linux/errno.h), as strace names them
_RESTARTS = {
    512: ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    513: ("ERESTARTNOINTR", "To be restarted"),
    514: ("ERESTARTNOHAND", "To be restarted if no handler"),
    516: ("ERESTART_RESTARTBLOCK", "Interrupted by signal"),
}


class TraceRecord(msgspec.Struct, frozen=True):
    """One traced syscall."""

    pid: int
    tid: int
    comm: str
    nr: int
    name: str
    args: list[int | str]
    retval: int | None  # None: the call does not return
    error: str | None = None  # errno name when retval is -errno
    #: a signal interrupted the call and the kernel runs it again (a new record follows)
    restarted: bool = False

    def format(self) -> str:
        """The record as strace would print it, guest text with controls escaped."""
        args = ", ".join(_show(a) for a in self.args)
        name = self.name.removeprefix("sys_")
        if self.retval is None:
            result = "?"
        elif self.restarted:
            code, why = _RESTARTS.get(-self.retval, (self.error, "To be restarted"))
            result = f"? {code} ({why})"
        elif self.error:
            result = f"-1 {self.error} ({os.strerror(-self.retval)})"
        else:
            result = f"{self.retval:#x}" if self.retval > 0xFFFF else str(self.retval)
        return f"[{self.pid}] {printable(self.comm)}: {name}({args}) = {result}"


def _show(a: int | str) -> str:
    if isinstance(a, str):
        return quoted(a)
    return f"{a:#x}" if a > 0xFFFF or a < -0xFFFF else str(a)


def _is_string(ctype: str, name: str) -> bool:
    return ctype.replace(" ", "") in ("constchar*", "char*") and name not in ("buf", "ubuf")


class Tracer:
    """Registers the hooks that turn syscalls into :class:`TraceRecord` values.

    :param comm: trace only tasks with this comm (None: every task but the
        guest's PID 1, the framework's own command agent).
    :param syscalls: trace only these syscalls (None: all of them).
    :param emit: called with each record, in the order the calls return.
    """

    def __init__(
        self,
        plugins: Plugins,
        *,
        comm: str | None = None,
        syscalls: list[str] | None = None,
        emit: Callable[[TraceRecord], None],
    ) -> None:
        self.plugins = plugins
        self.comm = comm
        self.syscalls = syscalls
        self.emit = emit
        self.count = 0

    async def start(self) -> None:
        """Register the hooks; returns once they are live in the guest."""
        api = self.plugins.syscalls
        if self.syscalls is None:
            await api.register(self._on_return, "on_all_sys_return", comm_filter=self.comm)
        else:
            for name in self.syscalls:
                await api.register(self._on_return, name, on_return=True, comm_filter=self.comm)
        # exit and exit_group never return: they are recorded at entry
        wanted = None if self.syscalls is None else {normalize(n) for n in self.syscalls}
        for name in _NO_RETURN:
            if wanted is None or normalize(name) in wanted:
                await api.register(self._on_enter, name, comm_filter=self.comm)

    async def stop(self) -> None:
        """Remove the tracer's hooks."""
        for handler in (self._on_return, self._on_enter):
            if any(h.handler == handler for h in self.plugins.syscalls.registry):
                await self.plugins.syscalls.unregister(handler)

    async def _on_enter(self, regs: Any, proto: SyscallPrototype, syscall: SyscallEvent) -> None:
        if self._wanted(syscall):
            await self._record(proto, syscall, None)

    async def _on_return(self, regs: Any, proto: SyscallPrototype, syscall: SyscallEvent) -> None:
        if self._wanted(syscall):
            await self._record(proto, syscall, syscall.retval)

    def _wanted(self, syscall: SyscallEvent) -> bool:
        return self.comm is not None or syscall.task.tgid != 1

    async def _record(
        self, proto: SyscallPrototype, syscall: SyscallEvent, retval: int | None
    ) -> None:
        args: list[int | str] = []
        count = proto.nargs if proto.known else syscall.argc
        for i in range(count):
            raw = syscall.args[i]
            if proto.known and _is_string(proto.types[i], proto.names[i]) and raw:
                args.append(await _read_string(raw))
            else:
                args.append(proto.domain(i).value(raw))
        error = None
        if retval is not None and -4095 <= retval < 0:
            error = errno.errorcode.get(-retval, f"E{-retval}")
        self.count += 1
        self.emit(
            TraceRecord(
                pid=syscall.task.tgid,
                tid=syscall.task.pid,
                comm=syscall.task.comm,
                nr=syscall.nr,
                name=proto.name,
                args=args,
                retval=retval,
                error=error,
                restarted=syscall.restarted,
            )
        )


async def _read_string(addr: int) -> int | str:
    try:
        raw = await trap().read_cstring(addr, STRING_SHOWN + 1)
    except (GuestMemoryError, TrapGone):
        return addr
    text = raw[:STRING_SHOWN].decode(errors="backslashreplace")
    return text + "..." if len(raw) > STRING_SHOWN else text
