"""The strace-like tracer on the real guest, and `syscalls-async trace` end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import msgspec

from syscalls_async import Session
from syscalls_async.api.record import Recording, read_recording
from syscalls_async.api.trace import Tracer, TraceRecord
from syscalls_async.api.trace_inject import parse_injection
from syscalls_async.api.trace_record import SCHEMA_VERSION, Bytes, Num, Str, Strings

CLI = [sys.executable, "-m", "syscalls_async.cli"]


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
        .endswith(
            'openat(AT_FDCWD, "/no/such/file", O_RDONLY) = -1 ENOENT (No such file or directory)'
        )
    )
    last = records[-1]
    assert (last.name, last.args, last.retval, last.format().endswith("exit_group(1) = ?")) == (
        "sys_exit_group",
        [1],
        None,
        True,
    )
    assert (last.phase, records[0].phase) == ("enter", "call")
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


def test_trace_command_prints_json_records(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "syscalls_async.cli",
            "trace",
            "--json",
            "--record",
            str(tmp_path / "trace.rec"),
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
    [record] = [check_against_schema(line) for line in proc.stderr.splitlines()]
    assert record.decoded == [
        Num(0xFFFFFF9C, "AT_FDCWD", -100),
        Str(record.decoded[1].raw, '"/etc/group"', "/etc/group"),
        Num(0, "O_RDONLY", 0),
    ]
    assert (record.phase, record.version, record.error) == ("call", SCHEMA_VERSION, None)
    # --record kept the events the tracer's hooks saw, for replay
    recording = read_recording(tmp_path / "trace.rec")
    assert recording.complete
    opens = [e for e in recording.events if e.event.nr == recording_nr(recording, "openat")]
    assert opens and all(e.event.comm == "cat" for e in opens)


def recording_nr(recording: Recording, name: str) -> int:
    # (the header holds the ia32 table's prototypes too)
    [nr] = [p.nr for p in recording.header.prototypes if p.name == f"sys_{name}" and not p.compat]
    return nr


def check_against_schema(line: str) -> TraceRecord:
    """One --json line: it decodes as a TraceRecord (no unknown fields, every tag
    known) and has exactly the fields the printed schema names."""
    schema = json.loads(
        subprocess.run([*CLI, "trace", "--schema"], capture_output=True, check=True).stdout
    )
    record_schema = schema["$defs"]["TraceRecord"]
    fields = json.loads(line)
    assert set(record_schema["required"]) <= set(fields) <= set(record_schema["properties"])
    tags = {
        d["properties"]["kind"]["enum"][0]
        for d in schema["$defs"].values()
        if "kind" in d.get("properties", {})
    }
    assert {a["kind"] for a in fields["decoded"]} <= tags
    return msgspec.json.decode(line, type=TraceRecord)


def test_trace_command_json_records_of_a_process_tree() -> None:
    proc = subprocess.run(
        [
            *CLI,
            "trace",
            "--json",
            "-s",
            "4",
            "-e",
            "trace=execve,write,exit_group,openat",
            "-e",
            "status=successful",
            "--",
            "sh",
            "-c",
            "echo hello; cat /nope",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    records = [
        check_against_schema(line) for line in proc.stderr.splitlines() if line.startswith("{")
    ]
    assert all(r.error is None for r in records)  # status=successful
    execs = [r for r in records if r.name == "sys_execve"]
    cat_exec = execs[-1].decoded
    assert isinstance(cat_exec[0], Str) and cat_exec[0].value == "/proc/self/exe"
    assert isinstance(cat_exec[1], Strings) and cat_exec[1].value == ["cat", "/nope"]
    assert cat_exec[1].text == '["cat", "/nop"...]'
    assert isinstance(cat_exec[2], Strings) and cat_exec[2].value == [] and cat_exec[2].count > 0
    write = next(r for r in records if r.name == "sys_write")
    assert write.decoded[1] == Bytes(write.decoded[1].raw, '"hell"...', b"hell", 6)
    assert write.retval == 6
    # status=successful: the failed openat is left out, and so is exit_group (no result)
    assert [r.name for r in records if r.name in ("sys_openat", "sys_exit_group")] == []


async def test_tracer_follows_the_command_tree_with_arguments_read_at_entry(
    session: Session,
) -> None:
    records: list[TraceRecord] = []
    tracer = Tracer(session.plugins, string_limit=16, emit=records.append)
    await tracer.start()
    result = await session.run("sh -c 'cat /etc/passwd | head -1; send_syscall getppid'")
    await tracer.stop()
    assert result.stdout.startswith(b"root:x:0:0:root:/root:/bin/sh\nsend_syscall: ")
    lines = [r.call() for r in records]
    by_pid: dict[int, list[str]] = {}
    for r in records:
        by_pid.setdefault(r.pid, []).append(r.call())
    # busybox runs its applets as /proc/self/exe (argv says which; head runs in
    # its forked sh without an execve)
    execs = [r.call() for r in records if r.name == "sys_execve" and r.retval == 0]
    assert [e[: e.rindex(", 0x")] for e in execs] == [
        'execve("/bin/sh", ["sh", "-c", "sh -c \'cat /etc/"...]',
        'execve("/proc/self/exe", ["sh", "-c", "cat /etc/passwd "...]',
        'execve("/proc/self/exe", ["cat", "/etc/passwd"]',
        'execve("/bin/send_syscall", ["send_syscall", "getppid"]',
    ], lines
    assert all(e.endswith("vars */) = 0") for e in execs), execs
    assert {"sh", "cat", "head", "send_syscall"} <= {r.comm for r in records}
    # the command's sh (which ends by running send_syscall) and the pipeline's two children
    assert len(by_pid) == 3, by_pid.keys()
    cat = next(r.pid for r in records if r.comm == "cat")
    assert 'openat(AT_FDCWD, "/etc/passwd", O_RDONLY) = 3' in by_pid[cat], by_pid[cat]
    head = next(r.pid for r in records if r.comm == "head")
    assert 'read(0, "root:x:0:0:root:"..., 4096) = 30' in by_pid[head], by_pid[head]
    assert 'write(1, "root:x:0:0:root:"..., 30) = 30' in by_pid[head], by_pid[head]
    assert by_pid[head][-1] == "exit_group(0) = ?"
    sh = records[0].pid
    assert any(c.startswith("pipe2([3, 4], 0) = 0") for c in by_pid[sh]), by_pid[sh]
    assert any(
        c.startswith("wait4(-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = ")
        for c in by_pid[sh]
    ), by_pid[sh]
    # nothing of the agent's: its child is traced from its execve on
    assert records[0].name == "sys_execve"


def test_trace_command_lines_and_summary_agree() -> None:
    proc = subprocess.run(
        [
            *CLI,
            "trace",
            "-C",
            "-T",
            "-s",
            "12",
            "-e",
            "trace=openat,write,execve",
            "--",
            "sh",
            "-c",
            "cat /etc/group /nonexistent | head -1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "root:x:0:\n"
    lines, _, table = proc.stderr.partition("% time")
    calls = whole_calls(lines.splitlines())
    names = [re.sub(r"^\[pid \d+\] ", "", c).split("(")[0] for c in calls]
    assert set(names) == {"openat", "write", "execve"}, calls
    assert all(re.search(r" <\d+\.\d{6}>$", c) for c in calls), calls
    # once the command has forked, every line says whose it is
    assert calls[0].startswith("execve(") and calls[-1].startswith("[pid "), calls
    assert any(
        c.endswith(
            'openat(AT_FDCWD, "/nonexistent", O_RDONLY) = -1 ENOENT (No such file or directory)'
        )
        for c in (re.sub(r" <[\d.]+>$", "", c) for c in calls)
    ), calls
    assert any('write(1, "root:x:0:\\n", 10) = 10' in c for c in calls), calls
    assert any('write(2, "cat: can\'t o"..., ' in c for c in calls), calls
    total = next(line.split() for line in table.splitlines() if line.endswith(" total"))
    assert int(total[-3]) == len(calls), table
    assert int(total[-2]) == sum("= -1 " in c for c in calls) == 1


def whole_calls(lines: list[str]) -> list[str]:
    """strace lines with each ``<unfinished ...>`` joined to its ``<... resumed>``."""
    started: dict[str, str] = {}
    calls = []
    for line in lines:
        prefix, rest = re.fullmatch(r"(\[pid \d+\] )?(.*)", line).groups("")  # type: ignore[union-attr]
        if rest.endswith("<unfinished ...>"):
            head = rest.removesuffix("<unfinished ...>")
            started[prefix] = head if head.endswith(", ") else head.removesuffix(" ")
        elif rest.startswith("<... "):
            calls.append(prefix + started.pop(prefix) + rest.split("resumed>", 1)[1])
        elif "(" in rest and " = " in rest:
            calls.append(line)
    return calls


async def test_injection_fails_only_the_matched_path(session: Session) -> None:
    records: list[TraceRecord] = []
    rule = parse_injection("openat:error=EACCES:path=/etc/pass*")
    tracer = Tracer(session.plugins, syscalls=["openat"], inject=[rule], emit=records.append)
    await tracer.start()
    result = await session.run("cat /etc/group /etc/passwd /etc/group")
    await tracer.stop()
    assert result.exit_status == 1
    assert result.stdout == b"root:x:0:\nroot:x:0:\n"
    assert result.stderr == b"cat: can't open '/etc/passwd': Permission denied\n"
    assert [r.call() for r in records] == [
        'openat(AT_FDCWD, "/etc/group", O_RDONLY) = 3',
        'openat(AT_FDCWD, "/etc/passwd", O_RDONLY) = -1 EACCES (Permission denied) (INJECTED)',
        'openat(AT_FDCWD, "/etc/group", O_RDONLY) = 3',
    ]
    assert [r.injected for r in records] == [False, True, False]
    assert tracer.inject_counts == [1]


async def test_injection_counts_calls_and_can_fake_a_result(session: Session) -> None:
    records: list[TraceRecord] = []
    rules = [parse_injection("openat:error=ENOENT:when=2+2"), parse_injection("read:retval=0")]
    # read is injected without being traced: head reads an empty file (cat sends
    # its files with sendfile)
    tracer = Tracer(session.plugins, syscalls=["openat"], inject=rules, emit=records.append)
    await tracer.start()
    result = await session.run(
        "cat /etc/group /etc/group /etc/group /etc/group; head -1 /etc/passwd"
    )
    await tracer.stop()
    assert result.stdout == b"root:x:0:\nroot:x:0:\n"
    assert result.stderr.count(b"No such file or directory") == 2
    assert [r.error for r in records if r.comm == "cat"] == [None, "ENOENT", None, "ENOENT"]
    assert {r.name for r in records} == {"sys_openat"}


async def test_fd_paths_like_strace_y(session: Session) -> None:
    records: list[TraceRecord] = []
    tracer = Tracer(
        session.plugins, syscalls=["openat", "close"], fd_paths=True, emit=records.append
    )
    await tracer.start()
    await session.run("cat /etc/group")
    await tracer.stop()
    assert [r.call() for r in records if r.comm == "cat"] == [
        'openat(AT_FDCWD, "/etc/group", O_RDONLY) = 3</etc/group>',
        "close(3</etc/group>) = 0",
    ]
    assert records[0].fd_path == "/etc/group"
