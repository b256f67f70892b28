"""Small asyncio helpers shared by the layers (no layer of its own)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

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
