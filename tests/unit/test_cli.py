"""The command line on its own: values refused before boot, errors printed safely."""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import sys
from pathlib import Path

import pytest

import syscalls_async
from syscalls_async import cli
from syscalls_async.errors import MachineError, SetupError
from syscalls_async.machine import hosttools, image
from syscalls_async.machine.agent import MAX_INPUT

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


@pytest.mark.parametrize("option", ["--timeout", "--handler-timeout"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-0.5", "soon"])
def test_timeouts_must_be_finite_and_positive(
    option: str, value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "Session", None)  # nothing may start a session
    with pytest.raises(SystemExit) as info:
        cli.main(["run", option, value, "plugin.py", "--", "true"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: " in err
    assert repr(value) in err
    assert "greater than 0" in err or "not a number" in err


@pytest.mark.parametrize("command", ["exec", "trace", "demo"])
def test_every_booting_command_checks_its_timeout(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.main([command, "--timeout", "0", "--", "true"])
    assert "must be a number greater than 0 (e.g. 600), not '0'" in capsys.readouterr().err


def test_good_values_are_taken() -> None:
    args = cli.parser().parse_args(
        ["run", "--timeout", "2.5", "--handler-timeout", "1e-3", "p.py", "--", "true"]
    )
    assert (args.timeout, args.handler_timeout) == (2.5, 0.001)


def test_cli_error_escapes_quoted_guest_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(args: object) -> int:
        raise MachineError("QEMU exited", "line one\x1b[2J\nline two\r")

    monkeypatch.setattr(cli, "cmd_image", fail)
    assert cli.main(["image", "info"]) == 1
    err = capsys.readouterr().err
    assert not CONTROL.search(err.replace("\n", ""))
    assert "line one\\x1b[2J\nline two\\r" in err


# -- a command line that behaves (issue 9) ------------------------------------------------


def test_options_after_plugin_are_options() -> None:
    args = cli.parse(["run", "p.py", "--timeout", "5", "--stats", "--", "ls", "--timeout", "-l"])
    assert (args.plugin, args.timeout, args.stats) == ("p.py", 5.0, True)
    assert args.command == ["ls", "--timeout", "-l"]


@pytest.mark.parametrize(
    "command", ["exec", "run", "trace", "replay", "demo", "bench", "setup", "image"]
)
def test_verbose_is_taken_by_every_command(command: str) -> None:
    extra = {"image": ["info"], "run": ["p.py"], "replay": ["r.rec", "p.py"]}.get(command, [])
    tail = ["--", "true"] if command in ("exec", "run", "trace") else []
    assert cli.parse([command, *extra, "-v", *tail]).verbose is True
    assert cli.parse(["-v", command, *extra, *tail]).verbose is True
    assert getattr(cli.parse([command, *extra, *tail]), "verbose", False) is False


def test_the_command_keeps_its_own_double_dash() -> None:
    assert cli.parse(["exec", "-v", "--", "sh", "-c", "x -- y"]).command == ["sh", "-c", "x -- y"]
    assert cli.parse(["exec", "ls", "--", "-x"]).command == ["ls", "--", "-x"]
    assert cli.parse(["exec", "--timeout", "3", "ls", "-l"]).command == ["ls", "-l"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"syscalls-async {syscalls_async.__version__}"


@pytest.mark.parametrize(
    "command", ["setup", "image", "exec", "run", "trace", "replay", "demo", "bench"]
)
def test_help_has_an_example_and_no_markup(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert "syscalls-async " + command in out.split("example", 1)[1]
    assert "`" not in out and "::" not in out
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    top = capsys.readouterr().out
    assert "`" not in top and "::" not in top and '"--"' in top


def test_files_options_only_where_they_work(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.parse(["demo", "--add", "/etc/hostname"]).add == ["/etc/hostname"]
    for argv in (["demo", "--collect", "/root/x:y"], ["bench", "--add", "/etc/hostname"]):
        with pytest.raises(SystemExit):
            cli.parse(argv)
        assert "unrecognized arguments" in capsys.readouterr().err


def test_add_and_collect_specs(tmp_path: Path) -> None:
    prog = tmp_path / "prog"
    prog.write_bytes(b"x")
    args = cli.parse(
        ["exec", "--add", str(prog), "--add", f"{prog}:/opt/p", "--collect", "/root/o:out",
         "--", "true"]
    )  # fmt: skip
    assert args.add == [str(prog), f"{prog}:/opt/p"]
    assert args.collect == [("/root/o", "out")]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["exec", "--collect", "/root/o", "--", "true"], "expected GUEST_PATH:HOST_DIR"),
        (["exec", "--collect", "root/o:x", "--", "true"], "must be absolute"),
        (["exec", "--collect", "/root/../etc:x", "--", "true"], "plain path"),
    ],
)
def test_bad_collect_is_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def _refused_before_boot(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.setattr(cli, "Session", None)  # nothing may boot
    monkeypatch.setattr(cli, "Machine", None)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("syscalls-async: ") and err.count("\n") == 1
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["trace", "-o", "/nonexistent/x", "--", "true"], "-o /nonexistent/x: no folder"),
        (["exec", "--console-log", "/nonexistent/c.log", "--", "true"], "--console-log"),
        (["trace", "-o", "/", "--", "true"], "is a folder"),
        (["run", "p.py", "--add", "/nonexistent/prog", "--", "true"], "does not exist"),
        (["exec", "--add", "/etc/hostname:/proc/x", "--", "true"], "mounted over at boot"),
        (["exec", "--collect", "/root/o:/etc/hostname", "--", "true"], "not a folder"),
        (["exec", "--collect", "/root/o:/proc/1/x", "--", "true"], "not writable"),
    ],
)
def test_unusable_paths_are_one_line_before_boot(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert message in _refused_before_boot(argv, capsys, monkeypatch)


def test_stdin_is_forwarded_to_exec_only_when_wanted(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdin:
        def __init__(self, data: bytes, tty: bool) -> None:
            self.buffer = io.BytesIO(data)
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    seen: list[bytes] = []

    async def fake_exec(args: argparse.Namespace) -> int:
        seen.append(args.input)
        return 0

    monkeypatch.setattr(cli, "_exec", fake_exec)
    monkeypatch.setattr(sys, "stdin", Stdin(b"piped", tty=False))
    assert cli.main(["exec", "--", "cat"]) == 0  # an open pipe is never read without -i
    monkeypatch.setattr(sys, "stdin", Stdin(b"piped", tty=False))
    assert cli.main(["exec", "-i", "--", "cat"]) == 0
    monkeypatch.setattr(sys, "stdin", Stdin(b"typed", tty=True))
    assert cli.main(["exec", "-i", "--", "cat"]) == 0
    assert seen == [b"", b"piped", b"typed"]


def test_too_much_stdin_is_refused_before_boot(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x" * (MAX_INPUT + 1))))
    argv = ["exec", "-i", "--", "cat"]
    assert "stdin is more than" in _refused_before_boot(argv, capsys, monkeypatch)


def test_the_library_never_installs_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hosttools, "missing_packages", lambda target=None: ["gcc"])
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # even as root

    def no_apt(args: object) -> None:
        raise AssertionError("apt-get was run")

    monkeypatch.setattr(hosttools, "_apt", no_apt)
    with pytest.raises(SetupError, match="syscalls-async setup"):
        image.build_image()


@pytest.mark.parametrize("tty", [True, False])
def test_progress_lines_on_a_terminal_only(
    tty: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = logging.getLogger("syscalls.machine")
    monkeypatch.setattr(machine, "handlers", [])
    monkeypatch.setattr(machine, "level", logging.NOTSET)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    cli._show_progress()
    machine.info("booting the guest ...")
    machine.debug("detail")
    err = capsys.readouterr().err
    assert err == ("==> booting the guest ...\n" if tty else "")
