"""A guest whose names and paths hold escape sequences: what the host prints has them escaped."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from syscalls_async import Session
from syscalls_async.api.trace import Tracer, TraceRecord
from syscalls_async.syscalls.event import SyscallEvent

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# a program named with a colour escape and a path holding a title-setting sequence
SETUP = "cp /bin/send_syscall \"/tmp/x$(printf '\\033[31m')\""
RUN = "\"/tmp/x$(printf '\\033[31m')\" openat -64 \"/tmp/t$(printf '\\033]0;pwned\\007')\" 0"


async def test_trace_lines_of_a_hostile_program_are_escaped(session: Session) -> None:
    await session.run(SETUP)
    records: list[TraceRecord] = []
    tracer = Tracer(session.plugins, comm="x\x1b[31m", syscalls=["openat"], emit=records.append)
    await tracer.start()
    await session.run(RUN)
    await tracer.stop()
    [record] = records
    assert record.comm == "x\x1b[31m" and record.args[1] == "/tmp/t\x1b]0;pwned\x07"
    line = record.format()
    assert not CONTROL.search(line)
    # strace's form: no comm on the line, other bytes in octal
    assert line.startswith(f"[pid {record.tid}] openat(AT_FDCWD, ")
    assert '"/tmp/t\\33]0;pwned\\7"' in line
    assert not CONTROL.search(record.format(colour=True).replace("\x1b[", ""))


async def test_handler_error_lines_of_a_hostile_program_are_escaped(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    await session.run(SETUP)

    def broken(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        raise ValueError("boom")

    await session.plugins.syscalls.register(broken, "openat", comm_filter="x\x1b[31m")
    with caplog.at_level(logging.ERROR, logger="syscalls"):
        await session.run(RUN)
    await session.plugins.syscalls.unregister(broken)
    messages = [r.getMessage() for r in caplog.records if "broken" in r.getMessage()]
    assert messages and all(not CONTROL.search(m) for m in messages), messages
    assert "by x\\x1b[31m[" in messages[0]
