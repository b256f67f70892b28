"""The supervisor: one task owning an anyio task group, entered and closed from any task."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from syscalls_async._aio import Supervisor


async def test_work_started_and_closed_from_other_tasks_ends_with_aclose() -> None:
    supervisor = Supervisor("test")
    ended: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    async def enter() -> None:
        await supervisor.start()
        supervisor.start_soon(forever, "a")

    await asyncio.create_task(enter())
    supervisor.start_soon(forever, "b")
    await asyncio.sleep(0.01)
    assert supervisor.running
    await asyncio.create_task(supervisor.aclose())  # another task than the one that started it
    assert sorted(ended) == ["a", "b"]
    assert not supervisor.running
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_failing_child_cancels_its_siblings_and_aclose_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    supervisor = Supervisor("test")
    await supervisor.start()
    cancelled = asyncio.Event()

    async def sibling() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def fails() -> None:
        raise RuntimeError("boom")

    supervisor.start_soon(sibling)
    await asyncio.sleep(0)
    supervisor.start_soon(fails)
    await asyncio.wait_for(cancelled.wait(), 5)
    await supervisor.aclose()  # does not raise
    assert "test: a background task failed" in caplog.text
    await supervisor.aclose()  # a second close does nothing


async def test_cancelled_while_closing_the_group_still_ends() -> None:
    supervisor = Supervisor("test")
    await supervisor.start()
    ended = asyncio.Event()

    async def slow_to_end() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            with anyio.CancelScope(shield=True):
                await asyncio.sleep(0.05)
            ended.set()

    supervisor.start_soon(slow_to_end)
    await asyncio.sleep(0)
    closing = asyncio.create_task(supervisor.aclose())
    await asyncio.sleep(0.01)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    await asyncio.wait_for(ended.wait(), 5)
