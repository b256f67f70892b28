"""The supervisor: one task owning an anyio task group, entered and closed from any task."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from syscalls_async._aio import Supervisor


async def test_work_started_and_closed_from_other_tasks_ends_with_aclose() -> None:
    # the suite's shared guest may run tasks in this loop: only ours must end
    before = asyncio.all_tasks()
    supervisor = Supervisor("test")
    started: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}
    ended: list[str] = []

    async def forever(name: str) -> None:
        started[name].set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    async def enter() -> None:
        await supervisor.start()
        supervisor.start_soon(forever, "a")

    await asyncio.create_task(enter())
    supervisor.start_soon(forever, "b")
    async with asyncio.timeout(5):
        for event in started.values():
            await event.wait()
    assert supervisor.running
    await asyncio.create_task(supervisor.aclose())  # another task than the one that started it
    assert sorted(ended) == ["a", "b"]
    assert not supervisor.running
    assert asyncio.all_tasks() - before == set()


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
    started, ending, release, ended = (asyncio.Event() for _ in range(4))

    async def slow_to_end() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ending.set()
            with anyio.CancelScope(shield=True):
                await release.wait()  # its clean-up outlasts the closer's patience
            ended.set()

    supervisor.start_soon(slow_to_end)
    await asyncio.wait_for(started.wait(), 5)
    closing = asyncio.create_task(supervisor.aclose())
    await asyncio.wait_for(ending.wait(), 5)  # the group is closing
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    release.set()
    await asyncio.wait_for(ended.wait(), 5)
