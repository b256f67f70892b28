"""first_step/resume: a coroutine run eagerly behaves as if it was awaited."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from syscalls_async._aio import first_step, resume

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outer")


async def test_a_coroutine_that_never_suspends_finishes_in_the_first_step() -> None:
    async def quick() -> int:
        return 42

    assert first_step(quick()) == (True, 42)


async def test_an_exception_before_suspending_propagates_from_the_first_step() -> None:
    async def broken() -> None:
        raise ValueError("x")

    with pytest.raises(ValueError, match="x"):
        first_step(broken())


async def test_a_suspended_coroutine_goes_on_with_values_exceptions_and_context() -> None:
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    seen: list[object] = []

    async def waits() -> int:
        var.set("inner")
        value = await fut
        await asyncio.sleep(0)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append(var.get())
            raise
        return value

    async def run() -> int:
        coro = waits()
        done, yielded = first_step(coro)
        assert not done
        return await resume(coro, yielded)

    task = asyncio.create_task(run())
    await asyncio.sleep(0)
    fut.set_result(5)
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["inner"]


async def test_a_suspended_coroutine_returns_its_value_and_raises_its_errors() -> None:
    async def value() -> int:
        await asyncio.sleep(0)
        return 7

    async def error() -> int:
        await asyncio.sleep(0)
        raise KeyError("k")

    for make, check in ((value, 7), (error, KeyError)):
        coro = make()
        done, yielded = first_step(coro)
        assert not done
        if check is KeyError:
            with pytest.raises(KeyError):
                await resume(coro, yielded)
        else:
            assert await resume(coro, yielded) == check


async def test_a_timeout_armed_after_the_first_step_cancels_the_rest() -> None:
    async def slow() -> None:
        await asyncio.sleep(0)
        await asyncio.sleep(10)

    coro = slow()
    done, yielded = first_step(coro)
    assert not done
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await resume(coro, yielded)
