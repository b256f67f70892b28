"""The handler budget and the guest's deadline are one setting, checked before boot (host only)."""

from __future__ import annotations

import math

import pytest

from syscalls_async import OutOfRange, Session
from syscalls_async.api import Plugins
from syscalls_async.api.session import MAX_HANDLER_TIMEOUT, guest_deadline_ms
from syscalls_async.cli import parser

BAD = [0, -1, 0.0, math.nan, math.inf, -math.inf, MAX_HANDLER_TIMEOUT + 1, True, "3", None]


@pytest.mark.parametrize("bad", BAD, ids=repr)
def test_a_bad_handler_timeout_is_refused_before_anything_boots(bad: object) -> None:
    with pytest.raises(OutOfRange, match="handler_timeout must be a number of seconds above 0"):
        Session(Plugins(), handler_timeout=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("budget", [0.001, 0.3, 2, 30.0, MAX_HANDLER_TIMEOUT])
def test_the_guest_waits_longer_than_the_budget(budget: float) -> None:
    session = Session(Plugins(), handler_timeout=budget)
    assert session.handler_timeout == budget
    assert session.deadline_ms == guest_deadline_ms(budget)
    # the margin: at least half a second, a quarter of the budget for long ones
    assert session.deadline_ms >= budget * 1000 + max(500, budget * 250)
    assert session.deadline_ms <= 600_000  # the most the guest module waits


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "481", "soon"])
def test_the_cli_refuses_a_bad_handler_timeout(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parser().parse_args(["run", "--handler-timeout", text, "plugin.py", "--", "true"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--handler-timeout" in err
    assert any(s in err for s in ("above 0", "greater than 0", "not a number"))


def test_the_cli_takes_a_budget() -> None:
    args = parser().parse_args(["run", "--handler-timeout", "0.5", "plugin.py", "--", "true"])
    assert args.handler_timeout == 0.5
