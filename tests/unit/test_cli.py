"""The command line on its own: values refused before boot, errors printed safely."""

from __future__ import annotations

import re

import pytest

from syscalls_async import cli
from syscalls_async.errors import MachineError

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
