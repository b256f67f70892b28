"""Small asyncio helpers shared by the layers (no layer of its own)."""

from __future__ import annotations

import asyncio
import contextlib
import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


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
