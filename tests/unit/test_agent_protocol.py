"""Host side of the command channel, against an in-process stream pair.

These check framing and bookkeeping only; the real agent is exercised by
tests/integration/test_commands.py.
"""

from __future__ import annotations

import asyncio
import struct

import pytest

from syscalls_async import CommandFailed, CommandTimeout, MachineError
from syscalls_async.machine.agent import (
    HEADER,
    MAX_COMMANDS,
    AgentChannel,
    Frame,
    wait_status_to_exit,
)


@pytest.mark.parametrize(
    ("status", "expected"), [(0, 0), (1 << 8, 1), (255 << 8, 255), (9, 137), (15, 143)]
)
def test_wait_status_is_decoded_like_a_shell(status: int, expected: int) -> None:
    assert wait_status_to_exit(status) == expected


class _Sink:
    """Collects what the channel writes, standing in for the serial line."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closing = False

    def write(self, b: bytes) -> None:
        self.data += b

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def is_closing(self) -> bool:
        return self.closing

    def frames(self) -> list[tuple[int, int, bytes]]:
        out, buf = [], bytes(self.data)
        while buf:
            kind, ident, n = HEADER.unpack_from(buf)
            out.append((kind, ident, buf[HEADER.size : HEADER.size + n]))
            buf = buf[HEADER.size + n :]
        return out


async def _sent(sink: _Sink, n: int = 1) -> list[tuple[int, int, bytes]]:
    """Wait until the channel has written ``n`` frames (fails after 5 s)."""
    async with asyncio.timeout(5):
        while len(sink.frames()) < n:
            await asyncio.sleep(0)
    return sink.frames()


def _frame(kind: Frame, ident: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, ident, len(payload)) + payload


async def _channel() -> tuple[AgentChannel, asyncio.StreamReader, _Sink, asyncio.Task[None]]:
    reader = asyncio.StreamReader()
    sink = _Sink()
    chan = AgentChannel(reader, sink)  # type: ignore[arg-type]
    task = asyncio.create_task(chan.serve())
    return chan, reader, sink, task


async def test_output_and_exit_are_routed_by_id() -> None:
    chan, reader, sink, task = await _channel()
    reader.feed_data(_frame(Frame.READY, 0, b"6.1.0"))
    assert await chan.ready == "6.1.0"
    run = asyncio.create_task(chan.run("echo hi", timeout=5, input=b"in"))
    [(kind, ident, payload)] = await _sent(sink)
    assert kind == Frame.RUN and payload == struct.pack("<I", 2) + b"in" + b"echo hi"
    reader.feed_data(_frame(Frame.STDOUT, 999, b"not ours"))
    reader.feed_data(_frame(Frame.STDOUT, ident, b"hi\n"))
    reader.feed_data(_frame(Frame.STDERR, ident, b"warn"))
    reader.feed_data(_frame(Frame.EXIT, ident, struct.pack("<i", 7 << 8)))
    result = await run
    assert (result.exit_status, result.stdout, result.stderr) == (7, b"hi\n", b"warn")
    task.cancel()


async def test_timeout_sends_kill_and_raises_with_partial_output() -> None:
    chan, reader, sink, task = await _channel()
    run = asyncio.create_task(chan.run("sleep 9", timeout=0.2))
    ident = (await _sent(sink))[0][1]
    reader.feed_data(_frame(Frame.STDOUT, ident, b"partial"))
    with pytest.raises(CommandTimeout) as info:
        await run
    assert info.value.stdout == b"partial"
    assert sink.frames()[-1][:2] == (Frame.KILL, ident)
    task.cancel()


async def test_failed_start_is_raised() -> None:
    chan, reader, sink, task = await _channel()
    run = asyncio.create_task(chan.run("x", timeout=5))
    reader.feed_data(_frame(Frame.FAILED, (await _sent(sink))[0][1], b"too many commands"))
    with pytest.raises(CommandFailed, match="too many commands"):
        await run
    task.cancel()


async def test_oversized_frame_or_eof_fails_every_waiter() -> None:
    chan, reader, sink, task = await _channel()
    run = asyncio.create_task(chan.run("x", timeout=5))
    await _sent(sink)
    reader.feed_data(HEADER.pack(Frame.STDOUT, 1, 1 << 30))
    with pytest.raises(MachineError, match="frame"):
        await run
    await task
    with pytest.raises(MachineError):
        await chan.run("y", timeout=5)


async def test_channel_closing_fails_waiters() -> None:
    chan, reader, sink, task = await _channel()
    run = asyncio.create_task(chan.run("x", timeout=5))
    await _sent(sink)
    reader.feed_eof()
    with pytest.raises(MachineError, match="closed"):
        await run
    await task


async def test_oversized_input_is_refused_before_sending() -> None:
    chan, _reader, sink, task = await _channel()
    with pytest.raises(ValueError, match="at most"):
        await chan.run("cat", timeout=5, input=b"x" * 70000)
    assert sink.data == b""
    task.cancel()


async def test_commands_over_the_agents_limit_wait_for_a_free_place() -> None:
    chan, reader, sink, task = await _channel()
    runs = [asyncio.create_task(chan.run(f"c{i}", timeout=5)) for i in range(MAX_COMMANDS + 2)]
    sent = await _sent(sink, MAX_COMMANDS)
    for _ in range(10):
        await asyncio.sleep(0)  # give the two extra commands every chance to be sent
    assert len(sink.frames()) == MAX_COMMANDS  # the agent would refuse a 65th
    reader.feed_data(_frame(Frame.EXIT, sent[0][1], struct.pack("<i", 0)))
    reader.feed_data(_frame(Frame.EXIT, sent[1][1], struct.pack("<i", 0)))
    frames = await _sent(sink, MAX_COMMANDS + 2)
    for _kind, ident, _payload in frames[2:]:
        reader.feed_data(_frame(Frame.EXIT, ident, struct.pack("<i", 3 << 8)))
    results = await asyncio.gather(*runs)
    assert [r.exit_status for r in results] == [0, 0] + [3] * MAX_COMMANDS
    assert [f[2][4:] for f in frames] == [f"c{i}".encode() for i in range(MAX_COMMANDS + 2)]
    task.cancel()


async def test_waiting_for_a_place_counts_in_the_timeout() -> None:
    chan, _reader, sink, task = await _channel()
    busy = [asyncio.create_task(chan.run("busy", timeout=5)) for _ in range(MAX_COMMANDS)]
    await _sent(sink, MAX_COMMANDS)
    with pytest.raises(CommandTimeout, match=r"within 0\.1 s"):
        await chan.run("late", timeout=0.1)
    assert len(sink.frames()) == MAX_COMMANDS
    for run in busy:
        run.cancel()
    task.cancel()


async def test_a_reset_channel_is_reported_by_the_closed_callback() -> None:
    async def closed() -> MachineError:
        return MachineError("QEMU was killed by signal 9 (SIGKILL)")

    reader = asyncio.StreamReader()
    sink = _Sink()
    chan = AgentChannel(reader, sink, closed=closed)  # type: ignore[arg-type]
    task = asyncio.create_task(chan.serve())
    run = asyncio.create_task(chan.run("x", timeout=5))
    await _sent(sink)
    reader.set_exception(ConnectionResetError(104, "Connection reset by peer"))
    with pytest.raises(MachineError, match="killed by signal 9"):
        await run
    await task  # ends quietly: no traceback for a closed channel
