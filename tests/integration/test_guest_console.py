"""The console side of the real guest: bounded whatever the guest prints, escaped when quoted."""

from __future__ import annotations

import asyncio
import re

from syscalls_async.machine import Machine
from syscalls_async.machine.console import MAX_LINE

WAIT = 120.0
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


async def _until(lines: asyncio.Queue[str | None], marker: str) -> list[str]:
    """Console lines up to and including ``marker`` (fails the test after WAIT s)."""
    seen: list[str] = []
    async with asyncio.timeout(WAIT):
        while (line := await lines.get()) is not None:
            seen.append(line)
            if line == marker:
                return seen
    raise AssertionError(f"console ended before {marker!r}: {seen[-3:]}")


async def test_a_console_line_over_a_mebibyte_keeps_the_machine_alive(machine: Machine) -> None:
    size = (1 << 20) + 4096  # over asyncio's line limit the console used to read with
    split_before = machine.console.split_lines
    with machine.console.subscribe() as lines:
        result = await machine.run(
            f"(head -c {size} /dev/zero | tr '\\0' x; echo) > /dev/console;"
            " echo long-done > /dev/console",
            timeout=WAIT,
        )
        assert result.exit_status == 0
        seen = await _until(lines, "long-done")
    # kernel messages may land inside the long line: count, don't compare lines
    assert sum(line.count("x") for line in seen) >= size
    assert max(map(len, seen)) <= MAX_LINE
    assert machine.console.split_lines > split_before
    assert machine.failure is None
    assert (await machine.run("echo still here")).stdout == b"still here\n"


async def test_console_text_quoted_in_errors_is_escaped(machine: Machine) -> None:
    with machine.console.subscribe() as lines:
        await machine.run("printf 'esc \\033[31m\\033]0;title\\007 end\\n' > /dev/console")
        await machine.run("echo esc-done > /dev/console")
        seen = await _until(lines, "esc-done")
    assert "esc \x1b[31m\x1b]0;title\x07 end" in seen  # subscribers get the guest's text
    tail = machine.console.tail()
    assert "esc \\x1b[31m\\x1b]0;title\\x07 end" in tail  # error messages get it escaped
    assert not CONTROL.search(tail.replace("\n", ""))
