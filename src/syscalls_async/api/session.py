"""A session: the guest, the portal and the plugins' hooks, scoped by ``async with``.

Example::

    from syscalls_async import Session, plugins

    @plugins.syscalls.syscall("on_sys_ioctl_enter", arg_filters=[None, 0xabcd])
    def fake_ioctl(regs, proto, syscall, fd, cmd, arg):
        syscall.skip_syscall = True
        syscall.retval = 43

    async def main():
        async with Session() as session:   # boots, hooks are live when this returns
            result = await session.run("send_syscall ioctl 9 0xabcd")
            assert result.stdout == b"send_syscall: syscall returned 43\\n"

Order of start: boot the guest (unless a running ``machine`` is given),
attach the portal, resolve every registered hook against the guest kernel's
prototypes (a :class:`RegistrationError` is raised here for hooks declared
before the prototypes were known), put the hook table in force.  Only then
does ``__aenter__`` return.

On exit (normally, by error or cancellation) the hooks are cleared in the
guest, open traps are answered, the portal detaches and the guest stops (if
the session booted it); the plugins object can serve another session after.

If the portal is lost while the session runs (the guest module unloaded or
reloaded, the region overwritten), no hook is in force any more: the session
fails with :class:`PortalLost`, which :meth:`Session.run` raises (a command
running then is stopped, a later one never starts) and so does leaving the
``async with`` block.  With ``reattach=SECONDS`` the session instead waits
that long for a module to be ready again, attaches to it and puts the hooks
in force again: a command running when the portal was lost still raises
:class:`PortalLost` (it ran partly unhooked), commands started meanwhile wait
for the hooks; only if no module comes back in time does the session fail.

What runs where: the session's background work -- the watch on the portal
(which also re-attaches, entering the new portal there) and the syncs of the
hook table after a registry change -- runs in one anyio task group owned by
the session's supervisor task (:class:`~syscalls_async._aio.Supervisor`),
so the session may be entered and left by different tasks.  The portal and
the machine supervise their own background work the same way.  Leaving the
block ends that group first (its tasks are cancelled and awaited), then the
hooks are cleared, the portal detaches and the guest stops; cancelling the
task that leaves it still does all of this.  A background failure never
cancels the session's own task: a lost portal becomes :class:`PortalLost`, a
failed hook sync or (with ``fail_fast``) a handler error becomes the
session's failure, raised by :meth:`Session.run` and on leaving the block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, TypeVar

import anyio
import msgspec

from .._aio import Interrupted, Supervisor, unless_set
from ..errors import HandlerError, OutOfRange, PortalError, PortalLost, StateError
from ..machine import AddSpec, CommandResult, Image, Machine
from ..machine.targets import DEFAULT_TARGET, target_for
from ..portal import HostCounters, Portal
from ..portal.arch import arch_by_name
from ..portal.rings import OBSERVE_QUEUE, check_observe_options
from ..portal.trap import TrapProtocol as Trap
from ..portal.types import GuestCounters
from ..syscalls.dispatch import Dispatcher, DispatchStats
from ..syscalls.policy import OnError, failure_policy
from ..syscalls.prototypes import PrototypeTable
from .plugins import Plugin, Plugins, load_plugin_file, plugins
from .record import Recorder, header
from .syscalls import remember_prototypes

log = logging.getLogger("syscalls")
T = TypeVar("T")

#: the guest waits for a verdict this much longer than the handlers' budget (at
#: least VERDICT_MARGIN_MIN s), so the verdict the host writes when the budget
#: runs out still finds its task waiting, even on a slow host
VERDICT_MARGIN = 0.25
VERDICT_MARGIN_MIN = 0.5
#: how long Session.run waits for the observe-only handlers of its command's events
FLUSH_TIMEOUT = 30.0
#: the guest module waits at most 600 s; the budget leaves room for the margin
MAX_HANDLER_TIMEOUT = 480.0


def check_handler_timeout(value: object) -> float:
    """``value`` as a handler budget in seconds, or :class:`OutOfRange` (a
    ValueError) saying what is allowed."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= MAX_HANDLER_TIMEOUT
    ):
        raise OutOfRange(
            f"handler_timeout must be a number of seconds above 0 and at most "
            f"{MAX_HANDLER_TIMEOUT:g}, not {value!r}"
        )
    return float(value)


def guest_deadline_ms(handler_timeout: float) -> int:
    """How long a trapped guest task waits for its verdict, for this handler budget."""
    margin = max(VERDICT_MARGIN_MIN, handler_timeout * VERDICT_MARGIN)
    return math.ceil((handler_timeout + margin) * 1000)


class Session:
    """Plugins at work on a guest.

    :param plugins: the plugins object (default: the global ``plugins``).
    :param machine: a running :class:`Machine` to use; otherwise one is booted
        with ``image``, ``smp`` and ``memory_mib`` and stopped at the end.
    :param handler_timeout: the budget of one event, in seconds: its handlers
        together; one still running when it runs out is cancelled and counted.
        The guest waits for the verdict that long plus a margin
        (:func:`guest_deadline_ms`, in :attr:`deadline_ms`), so the verdict so
        far reaches it; a verdict that still comes too late (a blocked event
        loop) is counted in ``stats.late_verdicts`` and logged.
    :param fail_fast: end the session with the first handler error.
    :param on_error: what a handler failure does to its call, for hooks that do not
        say (``"continue"``, ``"fail_closed"`` or ``FailClosed(errno)``; see
        :mod:`syscalls_async.syscalls.policy`).  Checked here, before any boot.
    :param reattach: seconds to wait for the guest module to come back when
        the portal is lost, then attach again (``None``: fail at once).
    :param ring_size: bytes of each observe-only ring in the guest (a power of
        two, 4096 to 524288; ``None``: the largest).  Small rings drop more.
    :param observe_queue: how many observed events may wait for their
        handlers on the host; more are dropped and counted.
    :param record: write the session's event stream to this file (see
        :mod:`syscalls_async.api.record`; :func:`syscalls_async.testing.replay`
        feeds it back to handlers without a guest).
    :param add: files to put into the booted guest (``Machine(add=...)``);
        files come out with ``session.machine.collect(...)``.
    :param arch: the booted guest's architecture (``Machine(arch=...)``); a
        portal whose module runs another one is refused.
    """

    def __init__(
        self,
        plugins: Plugins = plugins,
        *,
        machine: Machine | None = None,
        image: Image | None = None,
        smp: int = 2,
        memory_mib: int = 1024,
        console_log: str | None = None,
        handler_timeout: float = 30.0,
        fail_fast: bool = False,
        on_error: OnError = "continue",
        reattach: float | None = None,
        ring_size: int | None = None,
        observe_queue: int = OBSERVE_QUEUE,
        record: str | Path | None = None,
        add: Sequence[AddSpec] = (),
        arch: str = DEFAULT_TARGET,
    ) -> None:
        self.plugins = plugins
        self.record = record
        self._recorder: Recorder | None = None
        self._portal_args: dict[str, Any] = dict(ring_size=ring_size, observe_queue=observe_queue)
        check_observe_options(ring_size, observe_queue)  # refused before any boot
        self.machine = machine
        target_for(arch)  # an unknown architecture is refused before any boot
        # plugin files loaded from now on see the guest's architecture
        plugins.arch = machine.arch if machine is not None else arch
        self._machine_args: dict[str, Any] = dict(
            image=image, smp=smp, memory_mib=memory_mib, console_log=console_log, add=add, arch=arch
        )
        self.handler_timeout = check_handler_timeout(handler_timeout)
        self.fail_fast = fail_fast
        self.on_error = failure_policy(on_error, "Session")
        #: how long a trapped guest task waits for its verdict (ms)
        self.deadline_ms = guest_deadline_ms(self.handler_timeout)
        self._host_counters: HostCounters | None = None
        self._booted = False
        self._late_earlier = 0  # late verdicts of portals before a re-attach
        self.reattach = reattach
        self.failure: BaseException | None = None
        self.dispatcher: Dispatcher | None = None
        self._portal: Portal | None = None
        self._stack = contextlib.AsyncExitStack()
        self._version = 0
        self._in_force = -1
        self._sync_lock = asyncio.Lock()
        self._failed = asyncio.Event()
        #: the portal watch and background hook syncs run in its task group
        self._supervisor = Supervisor("session")
        self._sync_scheduled = False
        self._guest_base = self._guest_last = self._guest_earlier = GuestCounters()
        self._attached = asyncio.Event()
        self._fatal = asyncio.Event()  # set with ``failure``; ``_failed`` also on a loss
        self._drops_last: dict[str, Any] = {}

    @property
    def portal(self) -> Portal:
        if self._portal is None:
            raise StateError("the session is not running")
        return self._portal

    @property
    def stats(self) -> DispatchStats:
        """A snapshot of the counts so far: events, handler calls, errors,
        timeouts and late verdicts, and in ``guest`` what the guest module
        counted during this session (``no_slot``, ``deadline_expired``: hooked
        calls that ran unhooked; see
        :class:`~syscalls_async.portal.types.GuestCounters`)."""
        stats = self.dispatcher.stats if self.dispatcher else DispatchStats()
        late = self._late_earlier
        if self._host_counters is not None:
            late += self._host_counters.late_verdicts
        drops = self._drops()
        return msgspec.structs.replace(
            stats, guest=self._guest_delta(), late_verdicts=late, **drops
        )

    def _drops(self) -> dict[str, Any]:
        """Observe-only drops: per ring, per hook (by name), on the host's queue."""
        portal = self._portal
        if portal is not None:
            names = {h.id: h.name for h in self.plugins.syscalls.registry}
            by_hook: dict[str, int] = {}
            for hid, n in portal.hook_drops().items():
                name = names.get(hid, f"hook {hid}")
                by_hook[name] = by_hook.get(name, 0) + n
            self._drops_last = {
                "ring_drops": portal.ring_drops(),
                "hook_drops": by_hook,
                "queue_drops": portal.ring_stats.queue_drops,
            }
        return dict(self._drops_last)

    def _guest_delta(self) -> GuestCounters:
        if self._portal is not None:
            if self._portal.failure is None:
                with contextlib.suppress(PortalError):
                    self._portal.guest_counters()
            self._guest_last = self._portal.last_guest_counters
        return self._guest_earlier + (self._guest_last - self._guest_base)

    # -- lifetime -------------------------------------------------------------

    async def __aenter__(self) -> Session:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()
        if exc is None and self.failure is not None:
            self._raise_failure()

    async def _start(self) -> None:
        if self.record is not None:
            # created before the guest boots (a path that cannot be written fails
            # at once) and closed last, after every handler ended
            self._recorder = Recorder(self.record)
            self._stack.callback(self._recorder.close)
        if self.machine is None:
            self.machine = await self._stack.enter_async_context(Machine(**self._machine_args))
            self._booted = True
        self._portal = await self._stack.enter_async_context(
            Portal(
                self.machine.shm_path,
                deadline_ms=self.deadline_ms,
                doorbell=self.machine.doorbell_fd,
                arch=arch_by_name(self.machine.arch),
                shm_offset=self.machine.shm_offset,
                shm_size=self.machine.shm_region_size,
                **self._portal_args,
            )
        )
        self._host_counters = self._portal.host_counters
        self._guest_base = self._guest_last = self._portal.last_guest_counters
        # the last counts stay readable after the portal detaches
        self._stack.callback(self._guest_delta)
        self._stack.callback(self._drops)
        await self._supervisor.start()
        self._stack.push_async_callback(self._supervisor.aclose)  # if the start fails
        self._supervisor.start_soon(self._watch_portal)
        self._stack.callback(self._abandon_portal_if_machine_failed)
        table = PrototypeTable.from_meta(
            self._portal.syscalls, self._portal.arch, metas32=self._portal.syscalls32
        )
        self._cache_prototypes(table)
        self.plugins.arch = self._portal.arch.name  # what the guest module runs
        self.plugins._bind(self)
        self._stack.callback(self.plugins._unbind)
        registry = self.plugins.syscalls.registry
        registry.bind(table)
        self.dispatcher = Dispatcher(
            registry,
            table,
            handler_timeout=self.handler_timeout,
            fail_fast=self.fail_fast,
            on_fatal=self._on_fatal,
            on_error=self.on_error,
            arch=self._portal.arch,
        )
        if self._recorder is not None:
            image = self.machine.image
            self._recorder.start(
                header(
                    table,
                    kernel_release=image.kernel_release if image else "",
                    image_digest=image.digest if image else "",
                    handler_timeout=self.handler_timeout,
                    on_error=self.on_error,
                )
            )
        self._portal.handler = self._portal.observer = self._handler()
        self._portal.batch_observer = self._batch_handler()
        registry.listeners.append(self._changed)
        self._stack.callback(registry.listeners.remove, self._changed)
        # background work ends first on the way out (aclose runs once: the
        # earlier callback then finds it done)
        self._stack.push_async_callback(self._supervisor.aclose)
        self._changed()
        await self.sync_hooks()
        self._attached.set()

    def _handler(self) -> Callable[[Trap], Awaitable[None]]:
        """What the portal hands each trap to: the dispatcher, tapped when recording."""
        assert self.dispatcher is not None
        if self._recorder is None:
            return self.dispatcher
        return self._recorder.tap(self.dispatcher)

    def _batch_handler(self) -> Callable[[Sequence[Trap]], Awaitable[None]] | None:
        """What the portal hands each chunk of observed events to: the dispatcher's
        batch path; ``None`` when recording (the recorder takes one event at a
        time, and the dispatcher then runs batch hooks on batches of one)."""
        assert self.dispatcher is not None
        return self.dispatcher.observe_batch if self._recorder is None else None

    async def _stop(self) -> None:
        await self._stack.aclose()
        self._portal = None

    def _abandon_portal_if_machine_failed(self) -> None:
        # runs before the portal detaches: a dead guest cannot acknowledge anything
        if self.machine is not None and self.machine.failure is not None and self._portal:
            first_line = str(self.machine.failure).splitlines()[0]
            self._portal.abandon(f"the machine failed: {first_line}")

    def _cache_prototypes(self, table: PrototypeTable) -> None:
        image = self.machine.image if self.machine else None
        if image is not None:
            with contextlib.suppress(OSError):
                # a machine given to us may have run anything: only our own boot
                # is pristine (see remember_prototypes)
                remember_prototypes(image, table, pristine=self._booted)

    async def _watch_portal(self) -> None:
        while True:
            failure = await self.portal.wait_failure()
            lost = failure if isinstance(failure, PortalLost) else PortalLost(str(failure))
            if self.reattach is None:
                log.error("the session lost its portal: %s", lost)
                self._on_fatal(lost)
                return
            log.warning(
                "the session lost its portal (%s); waiting %g s for it", lost, self.reattach
            )
            self._attached.clear()
            self._failed.set()  # a command running now ran partly unhooked
            self._guest_earlier = self._guest_delta()
            try:
                await self._attach_again()
            except (PortalError, OSError) as exc:
                self._on_fatal(PortalLost(f"{lost}; not back within {self.reattach:g} s: {exc}"))
                return
            if self.failure is not None:
                return
            self._failed = asyncio.Event()
            self._attached.set()
            log.warning("the session attached again: its hooks are in force")

    async def _attach_again(self) -> None:
        assert self.machine is not None and self.reattach is not None
        portal = Portal(
            self.machine.shm_path,
            deadline_ms=self.deadline_ms,
            attach_timeout=self.reattach,
            doorbell=self.machine.doorbell_fd,
            arch=arch_by_name(self.machine.arch),
            shm_offset=self.machine.shm_offset,
            shm_size=self.machine.shm_region_size,
            **self._portal_args,
        )
        try:
            await portal.__aenter__()
        except BaseException:
            # this runs in the session's task group: a cancelled group would
            # cancel the clean-up too
            with anyio.CancelScope(shield=True):
                await portal.aclose()
            raise
        self._stack.push_async_callback(portal.aclose)
        portal.handler = portal.observer = self._handler()
        portal.batch_observer = self._batch_handler()
        self._portal = portal
        if self._host_counters is not None:
            self._late_earlier += self._host_counters.late_verdicts
        self._host_counters = portal.host_counters
        self._guest_base = self._guest_last = portal.last_guest_counters
        self._in_force = -1
        await self.sync_hooks()

    # -- hooks ------------------------------------------------------------------

    def _changed(self) -> None:
        self._version += 1
        if not self._sync_scheduled and self._supervisor.running:
            self._sync_scheduled = True
            self._supervisor.start_soon(self._background_sync)

    async def _background_sync(self) -> None:
        try:
            await self.sync_hooks()
        except Exception as exc:
            log.exception("putting the hook table in force failed")
            self._on_fatal(exc)
        finally:
            self._sync_scheduled = False

    async def sync_hooks(self) -> None:
        """Return once the guest's hook table matches the registry as of this call."""
        wanted = self._version
        async with self._sync_lock:
            if self._in_force >= wanted:
                return
            version = self._version
            specs, _ = self.plugins.syscalls.registry.table()
            await self.portal.set_hooks(specs)
            self._in_force = version

    def load_plugin_file(self, path: str | Path) -> list[Plugin]:
        """Import a plugin file into this session (its hooks are scheduled).

        Plugin files register on the global ``plugins``: a session running a
        ``Plugins()`` of its own refuses them (:class:`RegistrationError`).
        """
        return load_plugin_file(path, into=self.plugins)

    # -- running things -----------------------------------------------------------

    def _on_fatal(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            self._failed.set()
            self._fatal.set()

    async def run(
        self, command: str | Sequence[str], *, timeout: float = 60.0, input: bytes = b""
    ) -> CommandResult:
        """Run a command in the guest (see :meth:`Machine.run`).

        With ``fail_fast``, a handler error while it runs raises
        :class:`HandlerError` at once (the command is killed); so does
        :class:`PortalLost` when the portal is lost, and every later call
        raises it without running anything.
        """
        assert self.machine is not None
        if self.failure is None and not self._attached.is_set():
            # the portal was lost and the session waits for it (reattach)
            with contextlib.suppress(Interrupted):
                await unless_set(self._attached.wait(), self._fatal)
        if self.failure is not None:
            self._raise_failure()
        await self.plugins.syscalls.synced()
        result = await self._unless_failed(self.machine.run(command, timeout=timeout, input=input))
        try:
            await self.flush_observed(FLUSH_TIMEOUT)
        except TimeoutError:
            log.warning(
                "observe-only handlers still busy with this command's events %g s after it "
                "ended; returning without them",
                FLUSH_TIMEOUT,
            )
        return result

    async def flush_observed(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Return once every observe-only event the guest recorded so far has been
        handed to its handlers and they ended (or it was counted as dropped);
        later events are not waited for.  :meth:`run` does this before it
        returns, so the handlers of a command's observed events have run when its
        result is back.  ``TimeoutError`` after ``timeout`` seconds."""
        if self._portal is not None and self._portal.failure is None:
            await self._unless_failed(self._portal.flush_observed(timeout))

    async def _unless_failed(self, aw: Awaitable[T]) -> T:
        try:
            if self.failure is None:
                return await unless_set(aw, self._failed)
        except Interrupted:
            pass
        if self.failure is None:
            raise PortalLost("the portal was lost while the command ran (partly unhooked)")
        self._raise_failure()

    def _raise_failure(self) -> NoReturn:
        if isinstance(self.failure, PortalLost):
            # a new instance each time: the same one raised twice piles up tracebacks
            raise PortalLost(str(self.failure)) from self.failure
        raise HandlerError(f"a handler failed: {self.failure!r}") from self.failure
