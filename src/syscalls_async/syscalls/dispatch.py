"""The dispatcher: one trapped syscall in, handlers run in order, one verdict out.

For each trap the host re-checks every candidate hook's filters (the guest's
check only saves round trips; the host's is the authority), runs the
handlers that match in registration order on one shared
:class:`~.event.SyscallEvent` -- so a later handler sees what an earlier one
changed -- and turns the event's final state into the verdict.

``handler_timeout`` is the budget of one event: its handlers together.  A
handler that raises, or is still running when the budget runs out, is
logged on the ``syscalls`` logger with the event and counted in
:attr:`Dispatcher.stats` (an async one that awaits after the budget ran out
is cancelled there); then its failure policy (:mod:`.policy`: the hook's
``on_error``, else the dispatcher's) decides: ``"continue"`` runs the
remaining handlers and the guest continues with the verdict so far;
``FailClosed(errno)`` stops there and refuses the call with ``-errno``.  With
``fail_fast`` the first such failure is also handed to ``on_fatal`` (the
session ends with it).  ``KeyboardInterrupt`` and ``SystemExit`` from a
handler are counted and logged the same way, the verdict so far is still
given to the trap, and then they propagate (out of the event loop, which
stops the program; ``asyncio.run`` cleans up the session).  Cancellation
(the portal or session closing) also leaves the verdict so far on the trap.

A ``read_only`` hook is observe-only: its events come from the guest's rings
(``raw.observed``; the guest task did not wait) and only read_only hooks run
on them, while blocking events run only the other hooks, so each hook sees
each event once.  Its handler runs with the event's write guard on: any
change to the call raises :class:`ReadOnlyHookError` at that point, is not
applied, and is counted (``read_only_refused``) and logged.  String filters
of an observed event are checked on the captured strings; where a capture
was truncated the guest's check (on more of the string) stands.

A ``read_only`` hook registered with ``batch=True`` takes its events in
batches (:mod:`.batch`): :meth:`Dispatcher.observe_batch` takes a chunk of
observed events, runs the one-event-at-a-time hooks on each as
:meth:`__call__` does, checks each batch hook's filters on the host (the same
checks, without an ``await``) and then calls each batch hook once with the
events that passed, as read-only :class:`~.batch.ObservedSyscall` views.  A
batch call has the budget of one event; one that raises or outlives it is
counted and logged as any handler (``handler_errors``, ``handler_timeouts``;
a read_only hook's policy is always "continue").  ``plugins.mem`` in a batch
handler raises :class:`ObserveOnlyError`.  An observed event handed to
:meth:`__call__` alone (a recording session, the testing kit) reaches the
batch hooks as a batch of one.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Sequence

import msgspec

from .._aio import pending
from .._text import printable
from ..errors import GuestMemoryError, OutOfRange, PortalError
from ..portal.arch import X86_64, ArchInfo, compat_abi
from ..portal.trap import TrapProtocol as Trap
from ..portal.types import CapturedString, GuestCounters, Phase, RawEvent
from .abi32 import ArgLayout
from .batch import BATCH_TRAP, ObservedSyscall, SyscallKind
from .event import Args, Regs, SyscallEvent, Task
from .filters import STRING_READ
from .policy import FailClosed, Policy
from .prototypes import RETVAL, PrototypeTable, SyscallPrototype
from .registry import Hook, Registry

log = logging.getLogger("syscalls")

#: The trap whose handlers run in this context (``plugins.mem`` reads through it).
current_trap: contextvars.ContextVar[Trap] = contextvars.ContextVar("current_trap")

#: (nr, phase, compat) -> observed-event plans kept at most (the guest picks nr)
_PLANS = 1024
#: what observe_batch knows of one (nr, phase, ABI): the one-at-a-time hooks,
#: the batch hooks, and the syscall's kind (None without batch hooks)
_Plan = tuple[list[Hook], list[Hook], SyscallKind | None]


class DispatchStats(msgspec.Struct):
    """Counts since the dispatcher started."""

    events: int = 0
    handler_calls: int = 0
    handler_errors: int = 0
    handler_timeouts: int = 0
    filtered_on_host: int = 0
    #: hooks where the guest's prefilter and the host's check disagreed (should stay 0)
    guest_disagreed: int = 0
    #: calls refused with -errno because a handler failed under a fail-closed policy
    failed_closed: int = 0
    #: changes a read_only handler tried to make (refused with ReadOnlyHookError)
    read_only_refused: int = 0
    #: verdicts that reached no waiting guest task (counted by the portal, which
    #: the session reads them from)
    late_verdicts: int = 0
    #: observe-only events (from the guest's rings) handed to handlers
    observed_events: int = 0
    #: observe-only events dropped, per ring (CPU n uses ring n % 8): the guest's
    #: ring was full (filled in by the session)
    ring_drops: tuple[int, ...] = ()
    #: observe-only events dropped, per hook name (guest rings and the host's
    #: queue; filled in by the session)
    hook_drops: dict[str, int] = msgspec.field(default_factory=dict)
    #: observe-only events dropped on the host: the handlers' queue was full
    queue_drops: int = 0
    #: what the guest module counted (filled in by the session)
    guest: GuestCounters = msgspec.field(default_factory=GuestCounters)


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
        on_error: Policy = "continue",
        arch: ArchInfo = X86_64,
    ) -> None:
        self.registry = registry
        #: the guest's architecture: what ``regs`` names
        self.arch = arch
        #: its compat ABI (x86_64: ia32), what ``regs`` names for those calls
        self.compat_arch = compat_abi(arch) or arch
        self.prototypes = prototypes
        self.handler_timeout = handler_timeout
        self.fail_fast = fail_fast
        #: the failure policy of hooks that do not set their own
        self.on_error = on_error
        self.on_fatal = on_fatal
        self.stats = DispatchStats()
        self._plans: dict[tuple[int, Phase, bool], _Plan] = {}
        self._plans_version = -1

    async def __call__(self, trap: Trap, *, _in_batch: bool = False) -> None:
        raw = trap.event
        if raw.observed and not _in_batch and self.registry.has_batch:
            await self.observe_batch((trap,))
            return
        enter = raw.phase is Phase.ENTER
        compat = raw.compat
        hooks = self.registry.candidates(raw.nr, enter, raw.observed, compat)
        if not hooks:
            return
        self.stats.events += 1
        if raw.observed:
            self.stats.observed_events += 1
        arch = self.compat_arch if compat else self.arch
        proto = self.prototypes.for_abi(compat).by_nr(raw.nr)
        event = _user_event(raw, proto, arch.name)
        regs = Regs(raw.regs, event, arch)
        token = current_trap.set(trap)
        strings: dict[int, bytes | None] | None = None
        # a syscall hook's filters are on the prototype's arguments (one value
        # for a 32-bit guest's register pair), an all-syscall hook's on registers
        args = event.args._values
        words = event.args.words
        due = self._due()
        try:
            for hook in hooks:
                if not hook.enabled:
                    continue  # disabled while this event was being handled
                values = words if hook.proto is None else args
                if hook.string_filters:
                    if strings is None:
                        strings = {}
                    # captured strings per register word (all-syscall hooks) or
                    # per argument, as the filters are
                    captured = raw.strings if hook.proto is None else event.strings
                    matched = await self._host_match(hook, raw, trap, strings, values, captured)
                else:
                    matched = _plain_match(hook, raw, values)
                guest = hook.id in trap.hook_ids
                if matched != guest and not (guest and hook.host_only_filters):
                    self.stats.guest_disagreed += 1
                    log.debug("guest prefilter disagreed on %s for %s", hook.name, raw)
                if not matched:
                    self.stats.filtered_on_host += 1
                    continue
                if not await self._call(hook, regs, proto, event, due):
                    policy = self.on_error if hook.on_error is None else hook.on_error
                    if isinstance(policy, FailClosed) and not hook.read_only:
                        self._fail_closed(hook, event, policy)
                        break
        finally:
            current_trap.reset(token)
            # whatever ended the handlers (KeyboardInterrupt, SystemExit, the
            # portal cancelling them), the guest gets the verdict so far (an
            # observed event has none: its handlers are read_only, their guard
            # refused every change, and its guest task did not wait)
            if not raw.observed:
                _apply(trap, raw, event)

    async def observe_batch(self, traps: Sequence[Trap]) -> None:
        """Run the observe-only hooks on a chunk of observed events (ring order):
        the one-event-at-a-time hooks on each event, then each batch hook once
        with the events that passed its filters."""
        registry = self.registry
        if not registry.has_batch:
            for trap in traps:
                try:
                    await self(trap, _in_batch=True)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self._dispatch_failed(trap)
            return
        if self._plans_version != registry.version:
            self._plans.clear()
            self._plans_version = registry.version
        plans = self._plans
        stats = self.stats
        pending: dict[int, tuple[Hook, list[ObservedSyscall]]] = {}
        for trap in traps:
            raw = trap.event
            plan = plans.get((raw.nr, raw.phase, raw.compat))
            if plan is None:
                plan = self._plan(raw)
            single, batch, kind = plan
            if single:
                try:
                    await self(trap, _in_batch=True)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self._dispatch_failed(trap)
            if not batch:
                continue
            assert kind is not None
            if not single:
                stats.events += 1
                stats.observed_events += 1
            view = None
            for hook in batch:
                if not hook.enabled:
                    continue  # disabled while this chunk was being handled
                if not hook.unfiltered and not self._observed_match(hook, raw, kind, trap):
                    stats.filtered_on_host += 1
                    continue
                if view is None:
                    view = ObservedSyscall(raw, kind)
                entry = pending.get(hook.id)
                if entry is None:
                    pending[hook.id] = (hook, [view])
                else:
                    entry[1].append(view)
        for hook, events in pending.values():
            if hook.enabled:
                await self._call_batch(hook, tuple(events))

    def _dispatch_failed(self, trap: Trap) -> None:
        """The dispatcher itself failed on one observed event of a chunk (not a
        handler: those are counted in _call): counted, logged, the chunk goes on."""
        self.stats.handler_errors += 1
        log.exception("dispatching observed event %s failed", trap.event)

    def _plan(self, raw: RawEvent) -> _Plan:
        enter = raw.phase is Phase.ENTER
        single = self.registry.candidates(raw.nr, enter, True, raw.compat)
        batch = self.registry.candidates(raw.nr, enter, True, raw.compat, batch=True)
        kind = None
        if batch:
            arch = self.compat_arch if raw.compat else self.arch
            kind = SyscallKind(self.prototypes.for_abi(raw.compat).by_nr(raw.nr), arch.name)
        if len(self._plans) >= _PLANS:
            self._plans.clear()
        plan = self._plans[(raw.nr, raw.phase, raw.compat)] = (single, batch, kind)
        return plan

    def _observed_match(self, hook: Hook, raw: RawEvent, kind: SyscallKind, trap: Trap) -> bool:
        """:meth:`_host_match` of an observed event for a batch hook (strings are
        the captured ones: nothing to await); counts a disagreeing guest."""
        values: Sequence[int] = raw.args
        # the guest captures strings per register word, as the registers are
        captured: Sequence[CapturedString | None] = raw.strings
        if (
            hook.proto is not None
            and kind.layout is not None
            and (hook.arg_filters32 if raw.compat else hook.arg_filters)
        ):
            # a syscall hook's filters are on the prototype's arguments
            values = kind.layout.join(list(raw.args) + [0] * (6 - len(raw.args)))
            captured = kind.layout.per_argument(raw.strings)
        matched = _observed_filters(hook, raw, values, captured, trap)
        guest = hook.id in trap.hook_ids
        if matched != guest and not (guest and hook.host_only_filters):
            self.stats.guest_disagreed += 1
            log.debug("guest prefilter disagreed on %s for %s", hook.name, raw)
        return matched

    async def _call_batch(self, hook: Hook, events: tuple[ObservedSyscall, ...]) -> None:
        """Run one batch handler under one event's budget; a failure is counted
        and logged (its policy is "continue": it is read_only)."""
        self.stats.handler_calls += 1
        token = current_trap.set(BATCH_TRAP)
        deadline: asyncio.Timeout | None = None
        try:
            rest = pending(hook.handler(events))
            if rest is not None:
                deadline = asyncio.timeout_at(self._due())
                async with deadline:
                    await rest
        except TimeoutError as exc:
            if deadline is None or not deadline.expired():
                self._batch_failed(hook, events, exc)
            else:
                self.stats.handler_timeouts += 1
                log.error(
                    "batch handler %s outlived the %gs budget of its batch of %d events; cancelled",
                    hook.name,
                    self.handler_timeout,
                    len(events),
                )
                self._fatal(TimeoutError(f"batch handler {hook.name} timed out"))
        except (KeyboardInterrupt, SystemExit) as exc:
            self._batch_failed(hook, events, exc)
            raise
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._batch_failed(hook, events, exc)
        finally:
            current_trap.reset(token)

    def _due(self) -> float | None:
        budget = self.handler_timeout
        return None if budget is None else asyncio.get_running_loop().time() + budget

    def _batch_failed(
        self, hook: Hook, events: tuple[ObservedSyscall, ...], exc: BaseException
    ) -> None:
        self.stats.handler_errors += 1
        first = f", the first {events[0]!r}" if events else ""
        log.error(
            "batch handler %s failed on a batch of %d events%s",
            hook.name,
            len(events),
            first,
            exc_info=exc,
        )
        self._fatal(exc)

    async def _host_match(
        self,
        hook: Hook,
        raw: RawEvent,
        trap: Trap,
        strings: dict[int, bytes | None],
        values: Sequence[int],
        captured_strings: Sequence[CapturedString | None],
    ) -> bool:
        if raw.observed:  # the captured strings are all there is: nothing to await
            return _observed_filters(hook, raw, values, captured_strings, trap)
        if hook.comm is not None and raw.comm != hook.comm:
            return False
        if hook.pid is not None and raw.tgid != hook.pid:
            return False
        for i, f in enumerate(hook.arg_filters32 if raw.compat else hook.arg_filters):
            if f is None:
                continue
            if not f.is_string:
                if not f.matches(values[i]):
                    return False
                continue
            addr = values[i]
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
        self,
        hook: Hook,
        regs: Regs,
        proto: SyscallPrototype,
        event: SyscallEvent,
        due: float | None = None,
    ) -> bool:
        """Run one handler under its event's deadline; False if it failed (raised,
        timed out, left a bad retval)."""
        values = event.args._values
        if hook.proto is proto:  # the converters prepared when the hook was resolved
            args = [convert(values[i]) for i, convert in enumerate(hook.converters)]
        elif hook.proto32 is proto:  # the same for the compat ABI's prototype
            args = [convert(values[i]) for i, convert in enumerate(hook.converters32)]
        else:
            args = [proto.domain(i).value(values[i]) for i in range(hook.nargs_passed)]
        self.stats.handler_calls += 1
        retval = event.retval
        guard = event.args.guard
        refused = guard.refused
        ok = True
        deadline: asyncio.Timeout | None = None
        if hook.read_only:
            guard.handler = hook.name
        # A coroutine handler runs at once up to its first ``await`` that
        # suspends; only then is the deadline armed (its due time is the
        # event's, whenever armed): one that never suspends cannot outlive it.
        try:
            try:
                rest = pending(hook.handler(regs, proto, event, *args))
                if rest is not None:
                    deadline = asyncio.timeout_at(due)
                    async with deadline:
                        await rest
            except TimeoutError as exc:
                ok = False
                if deadline is None or not deadline.expired():
                    # the handler's own TimeoutError (e.g. its wait_for), not our deadline
                    self._failed(hook, event, exc)
                else:
                    self.stats.handler_timeouts += 1
                    log.error(
                        "handler %s outlived the %gs deadline of its event on %s; cancelled",
                        hook.name,
                        self.handler_timeout,
                        _describe(event),
                    )
                    self._fatal(
                        TimeoutError(f"handler {hook.name} timed out on {_describe(event)}")
                    )
            except PortalError as exc:
                # the trap is gone (guest deadline, signal, host shutting down): no verdict
                # can reach it, whatever the policy.  (A failed memory access is no
                # PortalError: it is the handler's error, below.)
                self.stats.handler_errors += 1
                log.warning("handler %s lost its trap on %s: %s", hook.name, _describe(event), exc)
            except (KeyboardInterrupt, SystemExit) as exc:
                # the handler asked the program to stop: counted and logged like any
                # failure, then it goes on (after the verdict so far is written, see
                # __call__) out of the event loop, as asyncio does for these two
                self._failed(hook, event, exc)
                raise
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                self._failed(hook, event, exc)
                ok = False
        finally:
            guard.handler = None
            if guard.refused > refused:
                self.stats.read_only_refused += event.guard.refused - refused
                log.error(
                    "read_only handler %s tried to change the call on %s (%d change(s) "
                    "refused, none applied)",
                    hook.name,
                    _describe(event),
                    event.guard.refused - refused,
                )
            # a bad value would break the verdict of every handler: refuse it here
            # and keep the one before (never wrapped to something else)
            bad = event.retval
            if bad is retval:
                pass  # unchanged: already a valid 64-bit result
            elif isinstance(bad, bool) or not isinstance(bad, int):
                event.retval = retval
                self._failed(hook, event, TypeError(
                    f"handler {hook.name} set syscall.retval to {bad!r}; it must be an int"
                ))  # fmt: skip
                ok = False
            elif not -(1 << 63) <= bad < 1 << 64:
                event.retval = retval
                self._failed(hook, event, OutOfRange(
                    f"handler {hook.name} set syscall.retval to {bad}; it must fit in 64 "
                    "bits (-2**63 .. 2**64-1)"
                ))  # fmt: skip
                ok = False
            else:
                event.retval = RETVAL.value(bad)
        return ok

    def _fail_closed(self, hook: Hook, event: SyscallEvent, policy: FailClosed) -> None:
        """Refuse the call: on entry skipped with -errno (a skip decided before the failure
        stands, with its return value), on return -errno as its result."""
        self.stats.failed_closed += 1
        if event.is_enter and event.skip_syscall:
            log.error("handler %s failed on %s: the call stays skipped", hook.name,
                      _describe(event))  # fmt: skip
            return
        log.error("handler %s failed on %s: %s", hook.name, _describe(event), policy)
        event.retval = -policy.errno
        if event.is_enter:
            event.skip_syscall = True

    def _failed(self, hook: Hook, event: SyscallEvent, exc: BaseException) -> None:
        self.stats.handler_errors += 1
        log.error("handler %s failed on %s", hook.name, _describe(event), exc_info=exc)
        self._fatal(exc)

    def _fatal(self, exc: BaseException) -> None:
        if self.fail_fast and self.on_fatal is not None:
            self.on_fatal(exc)


def _plain_match(hook: Hook, raw: RawEvent, values: Sequence[int]) -> bool:
    """:meth:`Dispatcher._host_match` for a hook without string filters (no await)."""
    if hook.comm is not None and raw.comm != hook.comm:
        return False
    if hook.pid is not None and raw.tgid != hook.pid:
        return False
    for i, f in enumerate(hook.arg_filters32 if raw.compat else hook.arg_filters):
        if f is not None and not f.matches(values[i]):
            return False
    if raw.phase is Phase.RETURN and hook.retval_filter is not None:
        return hook.retval_filter.matches(raw.retval)
    return True


def _observed_filters(
    hook: Hook,
    raw: RawEvent,
    values: Sequence[int],
    captured_strings: Sequence[CapturedString | None],
    trap: Trap,
) -> bool:
    """The host's check of ``hook``'s filters on an observed event, whose
    ``values`` and ``captured_strings`` are per argument for a syscall hook
    and per register for an all-syscall one: string filters on the captured
    strings, and the guest's check where a capture was truncated or is missing."""
    if hook.comm is not None and raw.comm != hook.comm:
        return False
    if hook.pid is not None and raw.tgid != hook.pid:
        return False
    for i, f in enumerate(hook.arg_filters32 if raw.compat else hook.arg_filters):
        if f is None:
            continue
        if not f.is_string:
            if not f.matches(values[i]):
                return False
            continue
        captured = captured_strings[i] if i < len(captured_strings) else None
        if captured is None or captured.truncated:
            # no capture to check (or not all of it): the guest saw more
            return hook.id in trap.hook_ids
        if captured.fault or not f.matches_string(captured.data):
            return False
    if raw.phase is Phase.RETURN and hook.retval_filter is not None:
        return hook.retval_filter.matches(raw.retval)
    return True


def _user_event(raw: RawEvent, proto: SyscallPrototype, abi: str) -> SyscallEvent:
    return SyscallEvent.build(
        name=proto.name,
        nr=raw.nr,
        pc=raw.pc,
        sp=raw.sp,
        argc=proto.nargs if proto.known and proto.prototype else len(raw.args),
        args=Args(raw.args, proto.layout),
        task=Task(raw.comm, raw.pid, raw.tgid),
        phase="enter" if raw.phase is Phase.ENTER else "return",
        retval=RETVAL.value(raw.retval) if raw.phase is Phase.RETURN else 0,
        restarted=raw.restarted,
        observed=raw.observed,
        strings=_arg_strings(raw.strings, proto.layout),
        abi=abi,
    )


def _arg_strings(
    per_word: tuple[CapturedString | None, ...], layout: ArgLayout | None
) -> tuple[CapturedString | None, ...]:
    """The guest's captured strings (per register word) per argument."""
    if layout is None:  # a 64-bit ABI: argument i is register word i
        return per_word + (None,) * (6 - len(per_word))
    return layout.per_argument(per_word)


def _apply(trap: Trap, raw: RawEvent, event: SyscallEvent) -> None:
    if raw.phase is Phase.ENTER:
        if event.skip_syscall:
            trap.skip(event.retval)
            return
        for reg, value in event.args.changed_words():
            trap.set_arg(reg, value)
    elif event.retval != RETVAL.value(raw.retval):
        if raw.restarted:
            # the call runs again: there is no result to replace
            log.warning("retval of a restarted call cannot be changed: %s", _describe(event))
            return
        trap.set_retval(event.retval)


def _describe(event: SyscallEvent) -> str:
    return (
        f"{event.name} {event.phase} by {printable(event.task.comm)}[{event.task.pid}] "
        f"args={event.args!r} retval={event.retval}"
    )
