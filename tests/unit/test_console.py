"""The console reader on its own: bounded lines, a capped log, an escaped tail."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from syscalls_async.machine.console import MAX_LINE, SUBSCRIBER_LINES, TAIL_LINE_CHARS, Console


async def _pump(console: Console, *chunks: bytes) -> list[str]:
    """Feed ``chunks`` then EOF; return every line subscribers saw."""
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    lines: list[str] = []
    with console.subscribe() as q:
        async with asyncio.timeout(5):
            await console.pump(reader)
            while (line := await q.get()) is not None:
                lines.append(line)
    return lines


async def test_a_line_over_the_stream_limit_is_split_and_counted(tmp_path: Path) -> None:
    console = Console(tmp_path / "log", lambda line: None)
    long = b"x" * (2 * MAX_LINE + 10)  # more than asyncio's default 64 KiB, and ours
    lines = await _pump(console, b"before\n", long[:100], long[100:] + b"\n", b"after\n")
    assert lines == ["before", "x" * MAX_LINE, "x" * MAX_LINE, "x" * 10, "after"]
    assert max(map(len, lines)) <= MAX_LINE
    assert console.split_lines == 1
    console.close()
    assert (tmp_path / "log").read_bytes() == b"before\n" + long + b"\nafter\n"


async def test_a_two_mebibyte_line_ends_nothing(tmp_path: Path) -> None:
    console = Console(tmp_path / "log", lambda line: None)
    lines = await _pump(console, b"y" * (2 << 20), b"\nnext\n")
    assert lines[-1] == "next"
    assert sum(map(len, lines[:-1])) == 2 << 20
    console.close()


async def test_the_log_keeps_its_limit_and_says_what_it_dropped(tmp_path: Path) -> None:
    console = Console(tmp_path / "log", lambda line: None, log_limit=1000)
    await _pump(console, b"a" * 600 + b"\n", b"b" * 600 + b"\n", b"c" * 50)
    assert console.dropped_bytes == 1252 - 1000
    console.close()
    data = (tmp_path / "log").read_bytes()
    assert data.startswith(b"a" * 600 + b"\n" + b"b" * 399 + b"\n[syscalls-async: log limit")
    assert b"1000 bytes reached; 252 more console bytes were dropped]" in data
    assert len(data) < 1200


async def test_the_tail_is_escaped_and_short(tmp_path: Path) -> None:
    console = Console(tmp_path / "log", lambda line: None)
    await _pump(console, b"red \x1b[31m\xc2\x9b\r\n", b"z" * 5000 + b"\n")
    first, second = console.tail().splitlines()
    assert first == "red \\x1b[31m\\x9b"
    assert second == "z" * TAIL_LINE_CHARS + f"... ({5000 - TAIL_LINE_CHARS} more characters)"
    assert not re.search("[\x00-\x1f\x7f-\x9f]", console.tail().replace("\n", ""))
    console.close()


async def test_a_panic_is_reported_once_with_the_escaped_line(tmp_path: Path) -> None:
    panics: list[str] = []
    console = Console(tmp_path / "log", panics.append)
    await _pump(
        console,
        b"[ 1.0] Kernel panic - not syncing: \x1b[2J",
        b"boom\n",
        b"Kernel panic - not syncing: again\n",
    )
    assert panics == ["[ 1.0] Kernel panic - not syncing: \\x1b[2Jboom"]
    console.close()


async def test_a_subscriber_that_does_not_read_holds_a_bounded_backlog(tmp_path: Path) -> None:
    console = Console(tmp_path / "log", lambda line: None)
    reader = asyncio.StreamReader()
    reader.feed_data(b"".join(b"%d\n" % i for i in range(SUBSCRIBER_LINES + 5)))
    reader.feed_eof()
    with console.subscribe() as q:
        async with asyncio.timeout(5):
            await console.pump(reader)
        assert q.qsize() == SUBSCRIBER_LINES + 1  # the lines, then the end
        assert console.dropped_lines == 5
        lines = [q.get_nowait() for _ in range(SUBSCRIBER_LINES + 1)]
    assert lines[0] == "0" and lines[-2] == str(SUBSCRIBER_LINES - 1) and lines[-1] is None
    console.close()
