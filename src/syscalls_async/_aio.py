"""Small asyncio helpers shared by the layers (no layer of its own)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

import anyio
import anyio.abc

T = TypeVar("T")

log = logging.getLogger("syscalls")


class Supervisor:
    """One task owning an anyio task group for an object's background work.

    An anyio task group must be left by the task that entered it, but our
    objects are entered and closed by whichever tasks their users pick (a
    pytest fixture, a session re-attaching in a background task).  So the
    group lives in a task of its own: :meth:`start` spawns it and returns once
    the group is open; :meth:`start_soon` runs work in it from any task;
    :meth:`aclose` cancels the group's scope and waits until every child and
    the supervisor itself have ended.

    A child that raises fails the group: its siblings are cancelled and the
    supervisor ends with the error, which :meth:`aclose` does *not* raise
    (callers who need a background error turn it into their own failure
    before it escapes, as ``Machine`` and ``Portal`` do).  Cancelling the
    task that awaits :meth:`aclose` leaves the group cancelled: it still ends
    on its own.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._group: anyio.abc.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        """Open the task group in the supervisor task; return once it takes work."""
        opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.get_running_loop().create_task(
            self._supervise(opened), name=self._name
        )
        try:
            await asyncio.wait({opened, self._task}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            await self.aclose()  # cancelled while starting: nothing left running
            raise
        if not opened.done():
            self._task.result()  # it failed before opening: say why

    async def _supervise(self, opened: asyncio.Future[None]) -> None:
        async with anyio.create_task_group() as group:
            self._group = group
            opened.set_result(None)
            await self._stop.wait()
            group.cancel_scope.cancel()

    @property
    def running(self) -> bool:
        """True while the group takes work (after :meth:`start`, before :meth:`aclose`)."""
        return self._group is not None and not self._stop.is_set()

    def start_soon(
        self, func: Callable[..., Coroutine[Any, Any, None]], *args: Any, name: str | None = None
    ) -> None:
        """Run ``func(*args)`` in the group (from any task)."""
        assert self._group is not None, "the supervisor is not running"
        self._group.start_soon(func, *args, name=name)

    async def aclose(self) -> None:
        """Cancel every child, then wait until they and the supervisor have ended."""
        self._stop.set()
        task, self._task = self._task, None
        if task is None:
            return
        self._group = None
        try:
            await asyncio.shield(task)
        except Exception:
            log.exception("%s: a background task failed", self._name)


class Interrupted(Exception):
    """The event fired before the awaited work finished (the work was cancelled)."""


async def unless_set(aw: Awaitable[T], event: asyncio.Event) -> T:
    """Await ``aw``, but if ``event`` is set first, cancel it and raise :class:`Interrupted`.

    Used to turn "the machine failed" or "a handler failed" into an immediate
    error for whatever is waiting, instead of a wait until some timeout.
    """
    work = asyncio.ensure_future(aw)
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
    if work.cancelled():
        raise Interrupted
    return work.result()


def first_step(coro: Coroutine[Any, Any, T]) -> tuple[bool, Any]:
    """Run ``coro`` up to its first suspension, in the caller's context.

    Returns ``(True, result)`` if it finished without suspending, else
    ``(False, yielded)``: then :func:`resume` goes on with it.  What it
    raises propagates.  A handler that needs no I/O thus costs no task, no
    loop iteration and no timeout.
    """
    try:
        return False, coro.send(None)
    except StopIteration as stop:
        return True, stop.value


def pending(result: object) -> Awaitable[Any] | None:
    """What is left to await of a handler's ``result`` once it ran as far as it
    can without suspending: ``None`` if it finished (a coroutine that never
    suspended, or a plain value), else the awaitable to await, under a deadline
    if the caller has one.  What the handler raises meanwhile propagates."""
    if isinstance(result, types.CoroutineType):
        done, yielded = first_step(result)
        return None if done else resume(result, yielded)
    return result if inspect.isawaitable(result) else None


@types.coroutine
def resume(coro: Coroutine[Any, Any, T], yielded: Any) -> Generator[Any, Any, T]:
    """Await the rest of ``coro`` after :func:`first_step` returned ``(False, yielded)``:
    the same as ``await coro`` from its first suspension on (values sent,
    exceptions and cancellation thrown in, close passed on)."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # thrown into the coroutine, as await does
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
