"""Blocking events carry the user strings the prototype marks, captured when the
guest wrote the event: ``plugins.mem.read_str`` of such an argument is answered
from the capture, without a round trip to the guest, unless the capture is cut
short or a handler wrote guest memory since."""

from __future__ import annotations

from typing import Any

from syscalls_async import Session, plugins


def _requests(session: Session) -> int:
    return session.portal.guest_counters().requests


async def test_a_string_argument_is_read_from_the_capture(session: Session, calls: Any) -> None:
    async def on_openat(
        regs: Any, proto: Any, syscall: Any, dfd: int, filename: int, flags: int, mode: int
    ) -> None:
        before = _requests(session)
        path = await plugins.mem.read_str(filename)
        # the blocking event shows its capture too, per argument
        calls.add((path, syscall.strings[1].text, _requests(session) - before))

    reads = session.portal.host_counters.captured_reads
    await session.plugins.syscalls.register(on_openat, "openat", comm_filter="cat")
    result = await session.run("cat /etc/group")
    assert result.stdout == b"root:x:0:\n"
    assert ("/etc/group", "/etc/group", 0) in await calls.wait(1)
    assert session.portal.host_counters.captured_reads > reads


async def test_after_a_write_the_string_is_read_from_the_guest(
    session: Session, calls: Any
) -> None:
    async def swap_path(
        regs: Any, proto: Any, syscall: Any, dfd: int, filename: int, flags: int, mode: int
    ) -> None:
        if await plugins.mem.read_str(filename) == "/tmp/peach":
            await plugins.mem.write_str(filename, "/tmp/mango")
            calls.add(await plugins.mem.read_str(filename))  # not the stale capture

    await session.run("echo PEACH > /tmp/peach; echo MANGO > /tmp/mango")
    await session.plugins.syscalls.register(swap_path, "openat", comm_filter="cat")
    result = await session.run("cat /tmp/peach")
    assert result.stdout == b"MANGO\n"
    assert await calls.wait(1) == ["/tmp/mango"]


async def test_a_string_longer_than_the_capture_is_read_whole(session: Session, calls: Any) -> None:
    long = "/tmp/" + "x" * 300  # past the 256 bytes an event captures

    async def on_openat(
        regs: Any, proto: Any, syscall: Any, dfd: int, filename: int, flags: int, mode: int
    ) -> None:
        reads = session.portal.host_counters.captured_reads
        path = await plugins.mem.read_str(filename)
        captured = syscall.strings[1]
        answered_from_capture = session.portal.host_counters.captured_reads - reads
        calls.add((path, captured.truncated, len(captured.data), answered_from_capture))

    await session.plugins.syscalls.register(
        on_openat, "openat", comm_filter="cat", arg_filters=[None, "/tmp/xxx"]
    )
    await session.run(f"cat {long}")
    assert await calls.wait(1) == [(long, True, 256, 0)]
