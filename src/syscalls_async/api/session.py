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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from .._aio import Interrupted, unless_set
from ..errors import HandlerError
from ..machine import CommandResult, Image, Machine
from ..portal import Portal
from ..syscalls.dispatch import Dispatcher, DispatchStats
from ..syscalls.prototypes import PrototypeTable
from .plugins import Plugin, Plugins, load_plugin_file, plugins
from .syscalls import prototype_cache, save_prototypes

log = logging.getLogger("syscalls")
T = TypeVar("T")


class Session:
    """Plugins at work on a guest.

    :param plugins: the plugins object (default: the global ``plugins``).
    :param machine: a running :class:`Machine` to use; otherwise one is booted
        with ``image``, ``smp`` and ``memory_mib`` and stopped at the end.
    :param handler_timeout: seconds a handler may run before it is cancelled.
    :param fail_fast: end the session with the first handler error.
    :param deadline_ms: how long a trapped guest task waits for the host.
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
        handler_timeout: float | None = 30.0,
        fail_fast: bool = False,
        deadline_ms: int = 3000,
    ) -> None:
        self.plugins = plugins
        self.machine = machine
        self._machine_args: dict[str, Any] = dict(
            image=image, smp=smp, memory_mib=memory_mib, console_log=console_log
        )
        self.handler_timeout = handler_timeout
        self.fail_fast = fail_fast
        self.deadline_ms = deadline_ms
        self.failure: BaseException | None = None
        self.dispatcher: Dispatcher | None = None
        self._portal: Portal | None = None
        self._stack = contextlib.AsyncExitStack()
        self._version = 0
        self._in_force = -1
        self._sync_lock = asyncio.Lock()
        self._failed = asyncio.Event()
        self._scheduled: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def portal(self) -> Portal:
        if self._portal is None:
            raise RuntimeError("the session is not running")
        return self._portal

    @property
    def stats(self) -> DispatchStats:
        """Events, handler calls, errors and timeouts so far."""
        return self.dispatcher.stats if self.dispatcher else DispatchStats()

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
            raise HandlerError(f"a handler failed: {self.failure!r}") from self.failure

    async def _start(self) -> None:
        if self.machine is None:
            self.machine = await self._stack.enter_async_context(Machine(**self._machine_args))
        self._portal = await self._stack.enter_async_context(
            Portal(self.machine.shm_path, deadline_ms=self.deadline_ms)
        )
        self._stack.callback(self._abandon_portal_if_machine_failed)
        table = PrototypeTable.from_meta(self._portal.syscalls)
        self._cache_prototypes(table)
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
        )
        self._portal.handler = self.dispatcher
        registry.listeners.append(self._changed)
        self._stack.callback(registry.listeners.remove, self._changed)
        self._stack.push_async_callback(self._cancel_tasks)
        self._changed()
        await self.sync_hooks()

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
                save_prototypes(prototype_cache(image.directory), table)

    async def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- hooks ------------------------------------------------------------------

    def _changed(self) -> None:
        self._version += 1
        if self._scheduled is None or self._scheduled.done():
            self._scheduled = self._spawn(self._background_sync())

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _background_sync(self) -> None:
        try:
            await self.sync_hooks()
        except Exception as exc:
            log.exception("putting the hook table in force failed")
            self._on_fatal(exc)

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
        """Import a plugin file into this session (its hooks are scheduled)."""
        return load_plugin_file(path)

    # -- running things -----------------------------------------------------------

    def _on_fatal(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            self._failed.set()

    async def run(
        self, command: str | Sequence[str], *, timeout: float = 60.0, input: bytes = b""
    ) -> CommandResult:
        """Run a command in the guest (see :meth:`Machine.run`).

        With ``fail_fast``, a handler error while it runs raises
        :class:`HandlerError` at once (the command is killed).
        """
        assert self.machine is not None
        await self.plugins.syscalls.synced()
        return await self._unless_failed(self.machine.run(command, timeout=timeout, input=input))

    async def _unless_failed(self, aw: Awaitable[T]) -> T:
        try:
            if self.failure is None:
                return await unless_set(aw, self._failed)
        except Interrupted:
            pass
        raise HandlerError(f"a handler failed: {self.failure!r}") from self.failure
