"""The strace-like tracer on the real guest, and `syscalls-async trace` end to end."""

from __future__ import annotations

import json
import subprocess
import sys

from syscalls_async import Session
from syscalls_async.api.trace import Tracer, TraceRecord


async def test_tracer_records_decoded_syscalls_of_one_command(session: Session) -> None:
    records: list[TraceRecord] = []
    tracer = Tracer(session.plugins, comm="cat", emit=records.append)
    await tracer.start()
    result = await session.run("cat /etc/passwd /no/such/file")
    await tracer.stop()
    assert result.exit_status == 1
    assert {r.comm for r in records} == {"cat"}
    assert len({r.pid for r in records}) == 1
    opens = [r for r in records if r.name == "sys_openat"]
    assert [(r.args[:2], r.retval, r.error) for r in opens] == [
        ([-100, "/etc/passwd"], 3, None),
        ([-100, "/no/such/file"], -2, "ENOENT"),
    ]
    assert (
        opens[1]
        .format()
        .endswith('openat(-100, "/no/such/file", 0, 0) = -1 ENOENT (No such file or directory)')
    )
    last = records[-1]
    assert (last.name, last.args, last.retval, last.format().endswith("exit_group(1) = ?")) == (
        "sys_exit_group",
        [1],
        None,
        True,
    )
    # stopped: nothing more is recorded
    count = len(records)
    await session.run("cat /etc/passwd")
    assert len(records) == count


async def test_tracer_limited_to_some_syscalls(session: Session) -> None:
    records: list[TraceRecord] = []
    tracer = Tracer(session.plugins, comm="send_syscall", syscalls=["getppid"], emit=records.append)
    await tracer.start()
    await session.run("send_syscall getppid; send_syscall getpid")
    await tracer.stop()
    assert [r.name for r in records] == ["sys_getppid"]
    assert records[0].retval is not None and records[0].retval > 0


async def test_tracer_shows_an_interrupted_read_as_strace_does(session: Session) -> None:
    records: list[TraceRecord] = []
    tracer = Tracer(session.plugins, comm="interrupt", syscalls=["read"], emit=records.append)
    await tracer.start()
    await session.run("interrupt read-restart; interrupt read")
    await tracer.stop()
    shown = [r.format().split(" = ", 1)[1] for r in records]
    assert shown == [
        "? ERESTARTSYS (To be restarted if SA_RESTART is set)",
        "1",
        "-1 EINTR (Interrupted system call)",
    ]
    assert [r.restarted for r in records] == [True, False, False]


def test_trace_command_prints_json_records() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "syscalls_async.cli",
            "trace",
            "--json",
            "-e",
            "openat",
            "--",
            "cat",
            "/etc/group",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "root:x:0:\n"
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert [(r["name"], r["args"][1], r["retval"]) for r in records] == [
        ("sys_openat", "/etc/group", 3)
    ]
