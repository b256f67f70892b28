"""strace's way of showing arguments, results and summaries: host-only."""

from __future__ import annotations

import re

import pytest

from syscalls_async import cli
from syscalls_async.api import strace_decode as sd
from syscalls_async.api.trace import Selection, Summary, TraceRecord, parse_expressions
from syscalls_async.api.trace_record import LinePrinter, Num


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "O_RDONLY"),
        (0x90800, "O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY"),
        (0o1101, "O_WRONLY|O_CREAT|O_TRUNC"),
        (0o20200002, "O_RDWR|O_TMPFILE"),
        (0o4010000, "O_RDONLY|O_SYNC"),
        (0o10000, "O_RDONLY|O_DSYNC"),
        (0x40000000 | 2, "O_RDWR|0x40000000"),
    ],
)
def test_open_flags(value: int, shown: str) -> None:
    assert sd.open_flags(value) == shown


def test_constants_of_the_common_calls() -> None:
    assert sd.fd(0xFFFFFF9C) == sd.fd(-100) == "AT_FDCWD"
    assert sd.fd(0xFFFFFFFF) == "-1"
    assert sd.prot(0) == "PROT_NONE"
    assert sd.prot(5) == "PROT_READ|PROT_EXEC"
    assert sd.map_flags(0x22) == "MAP_PRIVATE|MAP_ANONYMOUS"
    assert sd.map_flags(0x812) == "MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE"
    assert sd.signal_name(9) == "SIGKILL"
    assert sd.signal_name(34) == "SIGRT_34"
    assert sd.signal_name(99) == "99"
    assert sd.clone_flags(0x1200011) == "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"
    assert sd.clone_flags(0x11) == "SIGCHLD"
    assert sd.family(10) == "AF_INET6"
    assert sd.sock_type(0o2004002) == "SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC"
    assert sd.sock_protocol(2, 17) == "IPPROTO_UDP"
    assert sd.sock_protocol(1, 0) == "0"
    assert sd.ioctl_request(0x5401) == "TCGETS"
    assert sd.ioctl_request(0x5413) == "TIOCGWINSZ"
    assert sd.ioctl_request(0xABCD) == "0xabcd"
    assert sd.access_mode(0) == "F_OK"
    assert sd.access_mode(6) == "R_OK|W_OK"
    assert sd.at_flags(0x1100) == "AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH"
    assert sd.wait_options(0x40000001) == "WNOHANG|__WALL"
    assert sd.file_mode(0o100644) == "S_IFREG|0644"
    assert sd.wait_status(0x100) == "[{WIFEXITED(s) && WEXITSTATUS(s) == 1}]"
    assert sd.wait_status(0x8B) == "[{WIFSIGNALED(s) && WTERMSIG(s) == SIGSEGV && WCOREDUMP(s)}]"
    assert sd.pipe_fds(b"\3\0\0\0\4\0\0\0") == "[3, 4]"
    stat = bytearray(sd.STAT_SIZE)
    stat[24:28] = (0o40755).to_bytes(4, "little")
    stat[48:56] = (4096).to_bytes(8, "little")
    assert sd.stat_struct(bytes(stat)) == "{st_mode=S_IFDIR|0755, st_size=4096, ...}"


def test_numbers_by_kind() -> None:
    args = [2, 1, 6]
    assert sd.number("sockproto", 6, args) == "IPPROTO_TCP"
    assert sd.number("int", 0xFFFFFFFF, args) == "-1"
    assert sd.number("long", (1 << 64) - 1, args) == "-1"
    assert sd.number("oct", 0o644, args) == "0644"
    assert sd.number("ptr", 0, args) == "NULL"
    assert sd.number("ulong", 100, args) == "100"
    assert sd.number("ulong", 0x7FFF0000, args) == "0x7fff0000"
    assert sd.number("fdflags", 0, args) == "0"
    assert sd.number("fdflags", 0o2000000, args) == "O_CLOEXEC"


def test_open_mode_only_with_o_creat() -> None:
    kinds = sd.SPECS["openat"]
    assert sd.shown_kinds("openat", kinds, [0, 0, 0, 0o644]) == kinds[:-1]
    assert sd.shown_kinds("openat", kinds, [0, 0, 0o101, 0o644]) == kinds


def test_kinds_from_a_prototype_when_no_table_entry() -> None:
    kinds = sd.spec(
        "frobnicate",
        ["const char __user *", "char __user *", "int", "size_t", "unsigned long", "void *"],
        ["path", "buf", "fd", "len", "flags", "p"],
    )
    assert kinds == ("path", "ptr", "int", "size", "ulong", "ptr")


@pytest.mark.parametrize(
    ("data", "limit", "shown"),
    [
        (b"root\n", 32, '"root\\n"'),
        (b"\x7fELF\x02\x01", 32, '"\\177ELF\\2\\1"'),
        (b"\x001", 32, '"\\0001"'),  # a digit after an octal escape: three digits
        (b'say "hi" \\', 32, '"say \\"hi\\" \\\\"'),
        (b"abcdef", 4, '"abcd"...'),
        (b"\x1b[2J\x9b", 32, '"\\33[2J\\233"'),  # nothing a terminal acts on
    ],
)
def test_escape_like_strace(data: bytes, limit: int, shown: str) -> None:
    assert sd.escape(data, limit=limit) == shown
    assert re.fullmatch(r"[\x20-\x7e]*", shown)


def test_fd_paths() -> None:
    assert sd.with_path("3", "/etc/passwd") == "3</etc/passwd>"
    assert sd.with_path("3", None) == "3"
    assert sd.with_path("3", "/tmp/\x1b[2J") == "3</tmp/\\33[2J>"
    assert sd.result("openat", 3, fd_path="/etc/group") == "3</etc/group>"


def test_escape_marks_what_the_caller_cut() -> None:
    assert sd.escape(b"ab", limit=2, more=True) == '"ab"...'


def test_results() -> None:
    assert sd.result("openat", -2) == "-1 ENOENT (No such file or directory)"
    assert sd.result("read", -512, restarted=True) == (
        "? ERESTARTSYS (To be restarted if SA_RESTART is set)"
    )
    assert sd.result("mmap", 0x7F0000001000) == "0x7f0000001000"
    assert sd.result("getpid", 123456) == "123456"
    assert sd.result("exit_group", None) == "?"
    assert sd.errno_name(-13) == "EACCES"
    assert sd.errno_name(5) is None


def test_expressions() -> None:
    assert parse_expressions([]) == Selection()
    sel = parse_expressions(["openat,read", "trace=%memory", "status=failed"])
    assert sel.syscalls is not None and {"openat", "read", "mmap", "brk"} <= sel.syscalls
    assert "write" not in sel.syscalls
    assert sel.status == "failed"
    assert parse_expressions(["trace=sys_openat"]).syscalls == frozenset({"openat"})
    for bad, why in [
        (["trace=%files"], "unknown syscall class '%files'"),
        (["status=maybe"], "failed or successful"),
        (["signal=all"], "unknown -e qualifier 'signal'"),
        (["open at"], "not a syscall name"),
    ]:
        with pytest.raises(ValueError, match=re.escape(why)):
            parse_expressions(bad)


def _record(name: str, retval: int | None, duration: float | None) -> TraceRecord:
    return TraceRecord(
        1, 1, "cat", 0, f"sys_{name}", [], retval, sd.errno_name(retval or 0), duration=duration
    )


def test_summary_counts_each_record() -> None:
    summary = Summary()
    for rec in [
        _record("openat", 3, 0.002),
        _record("openat", -2, 0.001),
        _record("read", 10, 0.001),
        _record("exit_group", None, None),
    ]:
        summary.add(rec)
    table = summary.format().splitlines()
    assert summary.total == 4
    assert table[0].split() == ["%", "time", "seconds", "usecs/call", "calls", "errors", "syscall"]
    assert table[2].split() == ["75.00", "0.003000", "1500", "2", "1", "openat"]
    assert table[-1].split() == ["100.00", "0.004000", "1000", "4", "1", "total"]


def test_record_line_options() -> None:
    rec = TraceRecord(
        7, 8, "cat", 0, "sys_close", [3], 0, decoded=[Num(3, "3", 3)], time=0.5, duration=0.25
    )
    assert rec.format(pid_prefix=False) == "close(3) = 0"
    assert rec.format() == "[pid 8] close(3) = 0"
    assert rec.format(pid_prefix=False, durations=True) == "close(3) = 0 <0.250000>"
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d\.500000 close\(3\) = 0", rec.format(pid_prefix=False, timestamps=True)
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["trace", "-e", "trace=%nothing", "--", "true"], "unknown syscall class '%nothing'"),
        (["trace", "-e", "status=sometimes", "--", "true"], "failed or successful"),
    ],
)
def test_trace_refuses_bad_input_before_booting(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli, "Session", None)  # nothing may start a session
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_strace_names_of_kernel_calls() -> None:
    assert parse_expressions(["stat,sendfile,uname"]).syscalls == frozenset(
        {"newstat", "sendfile64", "newuname"}
    )
    sel = parse_expressions(["%file"])
    assert sel.syscalls is not None and "newstat" in sel.syscalls and "stat" not in sel.syscalls
    rec = TraceRecord(1, 1, "sh", 4, "sys_newstat", ["/"], 0)
    assert rec.call().startswith("stat(")
    summary = Summary()
    summary.add(rec)
    assert summary.calls == {"stat": 1}


def test_colour_only_when_asked() -> None:
    failed = TraceRecord(
        1, 2, "cat", 2, "sys_openat", [-100, "/x", 0], -2, "ENOENT", decoded=[Num(0, "AT_FDCWD", 0)]
    )
    plain = failed.format()
    assert "\x1b" not in plain
    painted = failed.format(colour=True)
    assert painted.startswith("\x1b[36m[pid 2]\x1b[0m \x1b[1mopenat\x1b[0m(AT_FDCWD) = \x1b[31m-1")
    assert re.sub("\x1b\\[[0-9;]*m", "", painted) == plain


def test_lines_of_interleaved_tasks() -> None:
    lines: list[str] = []
    printer = LinePrinter(lines.append)
    read = TraceRecord(
        1, 5, "head", 0, "sys_read", [0, 0, 4096], 3,
        decoded=[Num(0, "0", 0), Num(0, '"ab\\n"', 0), Num(4096, "4096", 4096)],
    )  # fmt: skip
    write = TraceRecord(
        2, 6, "cat", 1, "sys_write", [1, 0, 3], 3,
        decoded=[Num(1, "1", 1), Num(0, '"ab\\n"', 0), Num(3, "3", 3)],
    )  # fmt: skip
    printer.entered(5, "read(0, ", 0.0)
    printer.entered(6, 'write(1, "ab\\n", 3', 0.0)
    printer.record(write)
    printer.record(read)
    printer.record(write)  # a call whose entry was never announced: a whole line
    assert lines == [
        "[pid 5] read(0, <unfinished ...>",
        '[pid 6] write(1, "ab\\n", 3) = 3',
        '[pid 5] <... read resumed>"ab\\n", 4096) = 3',
        '[pid 6] write(1, "ab\\n", 3) = 3',
    ]
    lines.clear()
    alone = LinePrinter(lines.append)
    alone.entered(5, "read(0, ", 0.0)
    alone.record(read)
    assert lines == ['read(0, "ab\\n", 4096) = 3']  # one task: no prefix, nothing unfinished
