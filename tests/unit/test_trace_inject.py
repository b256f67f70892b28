"""Fault injection rules (``-e inject=``, ``--inject``): host-only."""

from __future__ import annotations

import re

import pytest

from syscalls_async import cli
from syscalls_async.api.trace import parse_expressions
from syscalls_async.api.trace_inject import Injection, parse_injection


def test_rules() -> None:
    assert parse_injection("openat:error=ENOENT") == Injection(
        frozenset({"openat"}), -2, 1, 1, None, "openat:error=ENOENT"
    )
    rule = parse_injection("open,sys_openat:error=13:path=/etc/*")
    assert (rule.syscalls, rule.retval, rule.path) == (frozenset({"open", "openat"}), -13, "/etc/*")
    assert rule.matches_path("/etc/passwd") and not rule.matches_path("/tmp/etc/x")
    assert not rule.matches_path(None)
    assert parse_injection("read:retval=0").retval == 0
    assert "mmap" in parse_injection("%memory:error=ENOMEM").syscalls


@pytest.mark.parametrize(
    ("when", "fired"),
    [
        ("3", [3]),
        ("3+", [3, 4, 5, 6, 7, 8]),
        ("2+3", [2, 5, 8]),
        ("1+1", [1, 2, 3, 4, 5, 6, 7, 8]),
    ],
)
def test_when(when: str, fired: list[int]) -> None:
    rule = parse_injection(f"read:retval=1:when={when}")
    assert [n for n in range(1, 9) if rule.fires(n)] == fired


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("openat", "says no result"),
        ("openat:when=2", "says no result"),
        ("openat:error=ENOPE", "is not an errno name or number"),
        ("openat:error=ENOENT:retval=1", "one of error= and retval="),
        ("openat:retval=-1", "retval must be 0 or more"),
        ("openat:retval=x", "retval='x' is not a number"),
        ("openat:error=ENOENT:when=0", "needs numbers from 1"),
        ("openat:error=ENOENT:when=2+0", "needs numbers from 1"),
        ("openat:error=ENOENT:signal=SIGSEGV", "unknown key 'signal'"),
        ("open at:error=ENOENT", "not a syscall name or class"),
        ("openat:error", "is not KEY=VALUE"),
    ],
)
def test_bad_rules(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        parse_injection(text)


def test_inject_in_expressions() -> None:
    sel = parse_expressions(["trace=openat", "inject=openat:error=EPERM:when=2"])
    assert [(r.retval, r.first, r.step) for r in sel.injections] == [(-1, 2, 0)]


def test_cli_refuses_a_bad_rule_before_booting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "Session", None)  # nothing may start a session
    assert cli.main(["trace", "--inject", "openat:error=ENOPE", "--", "cat", "/etc/group"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("syscalls-async: inject: 'ENOPE' is not an errno name")
    assert len(err.strip().splitlines()) == 1
