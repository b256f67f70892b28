"""The dispatcher: one trapped syscall in, handlers run in order, one verdict out.

For each trap the host re-checks every candidate hook's filters (the guest's
check only saves round trips; the host's is the authority), runs the
handlers that match in registration order on one shared
:class:`~.event.SyscallEvent` -- so a later handler sees what an earlier one
changed -- and turns the event's final state into the verdict.

A handler that raises, or outlives ``handler_timeout``, is logged on the
``syscalls`` logger with the event, counted in :attr:`Dispatcher.stats`, and
the remaining handlers still run; the guest continues with the verdict so
far.  With ``fail_fast`` the first such failure is also handed to
``on_fatal`` (the session ends with it).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Callable

import msgspec

from .._text import printable
from ..errors import GuestMemoryError, PortalError
from ..portal.trap import Trap
from ..portal.types import Phase
from ..portal.types import SyscallEvent as RawEvent
from .event import Args, Regs, SyscallEvent, Task
from .filters import STRING_READ
from .prototypes import RETVAL, PrototypeTable, SyscallPrototype
from .registry import Hook, Registry

log = logging.getLogger("syscalls")

#: The trap whose handlers run in this context (``plugins.mem`` reads through it).
current_trap: contextvars.ContextVar[Trap] = contextvars.ContextVar("current_trap")


class DispatchStats(msgspec.Struct):
    """Counts since the dispatcher started."""

    events: int = 0
    handler_calls: int = 0
    handler_errors: int = 0
    handler_timeouts: int = 0
    filtered_on_host: int = 0
    #: hooks where the guest's prefilter and the host's check disagreed (should stay 0)
    guest_disagreed: int = 0


class Dispatcher:
    """Portal handler that runs the registry's hooks for each trap."""

    def __init__(
        self,
        registry: Registry,
        prototypes: PrototypeTable,
        *,
        handler_timeout: float | None = 30.0,
        fail_fast: bool = False,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.registry = registry
        self.prototypes = prototypes
        self.handler_timeout = handler_timeout
        self.fail_fast = fail_fast
        self.on_fatal = on_fatal
        self.stats = DispatchStats()

    async def __call__(self, trap: Trap) -> None:
        raw = trap.event
        enter = raw.phase is Phase.ENTER
        hooks = self.registry.candidates(raw.nr, enter)
        if not hooks:
            return
        self.stats.events += 1
        proto = self.prototypes.by_nr(raw.nr)
        event = _user_event(raw, proto)
        regs = Regs(raw.regs, event)
        token = current_trap.set(trap)
        strings: dict[int, bytes | None] = {}
        try:
            for hook in hooks:
                if not hook.enabled:
                    continue  # disabled while this event was being handled
                matched = await self._host_match(hook, raw, trap, strings)
                if matched != (hook.id in trap.hook_ids):
                    self.stats.guest_disagreed += 1
                    log.debug("guest prefilter disagreed on %s for %s", hook.name, raw)
                if not matched:
                    self.stats.filtered_on_host += 1
                    continue
                await self._call(hook, regs, proto, event)
        finally:
            current_trap.reset(token)
        _apply(trap, raw, event)

    async def _host_match(
        self, hook: Hook, raw: RawEvent, trap: Trap, strings: dict[int, bytes | None]
    ) -> bool:
        if hook.comm is not None and raw.comm != hook.comm:
            return False
        if hook.pid is not None and raw.tgid != hook.pid:
            return False
        for i, f in enumerate(hook.arg_filters):
            if f is None:
                continue
            if not f.is_string:
                if not f.matches(raw.args[i]):
                    return False
                continue
            addr = raw.args[i]
            if addr not in strings:
                try:
                    strings[addr] = await trap.read_cstring(addr, STRING_READ)
                except GuestMemoryError:
                    strings[addr] = None
            s = strings[addr]
            if s is None or not f.matches_string(s):
                return False
        if raw.phase is Phase.RETURN and hook.retval_filter is not None:
            return hook.retval_filter.matches(raw.retval)
        return True

    async def _call(
        self, hook: Hook, regs: Regs, proto: SyscallPrototype, event: SyscallEvent
    ) -> None:
        args = [proto.domain(i).value(event.args[i]) for i in range(hook.nargs_passed)]
        self.stats.handler_calls += 1
        retval = event.retval
        try:
            await self._run(hook, regs, proto, event, args)
        finally:
            if isinstance(event.retval, bool) or not isinstance(event.retval, int):
                # a non-int would break the verdict of every handler: refuse it here
                bad = event.retval
                event.retval = retval
                self._failed(hook, event, TypeError(
                    f"handler {hook.name} set syscall.retval to {bad!r}; it must be an int"
                ))  # fmt: skip

    async def _run(
        self, hook: Hook, regs: Regs, proto: SyscallPrototype, event: SyscallEvent,
        args: list[int],
    ) -> None:  # fmt: skip
        deadline = asyncio.timeout(self.handler_timeout)
        try:
            async with deadline:
                result = hook.handler(regs, proto, event, *args)
                if inspect.isawaitable(result):
                    await result
        except TimeoutError as exc:
            if not deadline.expired():
                # the handler's own TimeoutError (e.g. its wait_for), not our deadline
                self._failed(hook, event, exc)
                return
            self.stats.handler_timeouts += 1
            log.error(
                "handler %s outlived its %gs deadline on %s; cancelled",
                hook.name,
                self.handler_timeout,
                _describe(event),
            )
            self._fatal(TimeoutError(f"handler {hook.name} timed out on {_describe(event)}"))
        except GuestMemoryError as exc:
            # an uncaught failed memory access is the handler's error, not a lost trap
            self._failed(hook, event, exc)
        except PortalError as exc:
            # the trap is gone (guest deadline, signal, host shutting down)
            self.stats.handler_errors += 1
            log.warning("handler %s lost its trap on %s: %s", hook.name, _describe(event), exc)
        except Exception as exc:
            self._failed(hook, event, exc)

    def _failed(self, hook: Hook, event: SyscallEvent, exc: Exception) -> None:
        self.stats.handler_errors += 1
        log.error("handler %s failed on %s", hook.name, _describe(event), exc_info=exc)
        self._fatal(exc)

    def _fatal(self, exc: BaseException) -> None:
        if self.fail_fast and self.on_fatal is not None:
            self.on_fatal(exc)


def _user_event(raw: RawEvent, proto: SyscallPrototype) -> SyscallEvent:
    return SyscallEvent(
        name=proto.name,
        nr=raw.nr,
        pc=raw.pc,
        sp=raw.sp,
        argc=proto.nargs if proto.known else len(raw.args),
        args=Args(raw.args),
        task=Task(raw.comm, raw.pid, raw.tgid),
        phase="enter" if raw.phase is Phase.ENTER else "return",
        retval=RETVAL.value(raw.retval) if raw.phase is Phase.RETURN else 0,
    )


def _apply(trap: Trap, raw: RawEvent, event: SyscallEvent) -> None:
    if raw.phase is Phase.ENTER:
        if event.skip_syscall:
            trap.skip(event.retval)
            return
        for i in sorted(event.args.changed):
            trap.set_arg(i, event.args[i])
    elif event.retval != RETVAL.value(raw.retval):
        trap.set_retval(event.retval)


def _describe(event: SyscallEvent) -> str:
    return (
        f"{event.name} {event.phase} by {printable(event.task.comm)}[{event.task.pid}] "
        f"args={event.args!r} retval={event.retval}"
    )
