"""Guest text printed by the framework never carries a raw control character."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from sysproto_table import OPENAT
from test_sys_dispatch import dispatch, dispatcher, raw_event

from syscalls_async._text import json_safe, printable, quoted
from syscalls_async.api.trace import TraceRecord
from syscalls_async.syscalls import Registry
from syscalls_async.syscalls.event import SyscallEvent

# what a terminal may act on: C0 controls, DEL, C1 controls
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
HOSTILE = "a\x1b[31mb\x1b]0;title\x07\r\x7f\x9b2J\x00\u0085\t\nz"


def test_printable_escapes_every_control_character() -> None:
    shown = printable(HOSTILE)
    assert not CONTROL.search(shown)
    assert shown == "a\\x1b[31mb\\x1b]0;title\\x07\\r\\x7f\\x9b2J\\x00\\x85\\t\\nz"


def test_printable_keeps_ordinary_text_and_unicode() -> None:
    assert printable("cat /etc/passwd é ✓") == "cat /etc/passwd é ✓"


def test_printable_decodes_bytes_and_shows_invalid_ones() -> None:
    assert printable(b"ok\x1b\xff") == "ok\\x1b\\xff"


def test_printable_multiline_keeps_only_newlines() -> None:
    assert printable("one\x1b\ntwo\r", multiline=True) == "one\\x1b\ntwo\\r"


def test_quoted_escapes_quotes_backslashes_and_controls() -> None:
    assert quoted('say "hi"\\\x1b') == '"say \\"hi\\"\\\\\\x1b"'


def test_json_safe_keeps_the_value_and_escapes_del_and_c1() -> None:
    line = json.dumps({"comm": "x\x7f\x9b"}, ensure_ascii=False)
    safe = json_safe(line)
    assert not CONTROL.search(safe)
    assert json.loads(safe) == {"comm": "x\x7f\x9b"}


def test_trace_record_format_escapes_comm_and_strings() -> None:
    record = TraceRecord(
        pid=7, tid=7, comm="e\x1b[31m", nr=257, name="sys_openat",
        args=[-100, "/tmp/\x1b[2J\x9b"], retval=3,
    )  # fmt: skip
    line = record.format()
    assert not CONTROL.search(line)
    # strace's form: no comm on the line, bytes other than printable ASCII in octal
    assert line == '[pid 7] openat(-100, "/tmp/\\33[2J\\302\\233") = 3'


async def test_handler_error_log_escapes_the_comm(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(regs: Any, proto: Any, syscall: SyscallEvent) -> None:
        raise ValueError("boom")

    registry.add(broken, "openat")
    with caplog.at_level(logging.ERROR, logger="syscalls"):
        await dispatch(dispatcher(registry), raw_event(OPENAT.nr, comm="x\x1b]0;pwned\x07"))
    [record] = [r for r in caplog.records if r.name == "syscalls"]
    msg = record.getMessage()
    assert not CONTROL.search(msg)
    assert "by x\\x1b]0;pwned\\x07[101]" in msg
