"""Syscall names and hook patterns (syscalls.names), host only."""

from __future__ import annotations

import pytest

from syscalls_async.errors import RegistrationError, SyscallsAsyncError
from syscalls_async.syscalls.names import Target, TargetKind, normalize, parse_target


@pytest.mark.parametrize(
    "name", ["openat", "sys_openat", "_sys_openat", "__x64_sys_openat", " sys_openat "]
)
def test_name_forms_normalize_to_the_same_syscall(name: str) -> None:
    assert normalize(name) == "openat"
    assert parse_target(name) == Target(TargetKind.SYSCALL, "openat")


def test_plain_name_has_no_direction_of_its_own() -> None:
    t = parse_target("sys_getpid")
    assert (t.kind, t.name, t.enter, t.ret) == (TargetKind.SYSCALL, "getpid", False, False)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("on_sys_openat_enter", Target(TargetKind.SYSCALL, "openat", True, False)),
        ("on_sys_openat_return", Target(TargetKind.SYSCALL, "openat", False, True)),
        # names with underscores of their own
        ("on_sys_rt_sigaction_enter", Target(TargetKind.SYSCALL, "rt_sigaction", True, False)),
        ("on_sys_exit_group_return", Target(TargetKind.SYSCALL, "exit_group", False, True)),
        ("on_all_sys_enter", Target(TargetKind.ALL, None, True, False)),
        ("on_all_sys_return", Target(TargetKind.ALL, None, False, True)),
        ("on_unknown_sys_enter", Target(TargetKind.UNKNOWN, None, True, False)),
        ("on_unknown_sys_return", Target(TargetKind.UNKNOWN, None, False, True)),
    ],
)
def test_every_pattern_form(pattern: str, expected: Target) -> None:
    assert parse_target(pattern) == expected


def test_no_name_means_every_syscall() -> None:
    assert parse_target(None) == Target(TargetKind.ALL)


@pytest.mark.parametrize(
    "pattern",
    [
        "on_sys_openat",  # no direction
        "on_sys_openat_exit",  # wrong direction word
        "on_all_sys",
        "on_all_enter",
        "on_unknown_syscall_enter",
        "on_sys__enter",  # no name
        "on_openat_enter",
    ],
)
def test_bad_patterns_say_what_is_accepted(pattern: str) -> None:
    with pytest.raises(RegistrationError) as info:
        parse_target(pattern)
    msg = str(info.value)
    assert repr(pattern) in msg
    assert "on_sys_<name>_enter" in msg and "on_all_sys_enter" in msg
    assert "on_unknown_sys_enter" in msg


@pytest.mark.parametrize("name", ["open at", "sys_", "1openat", "openat()", "", "Open-At"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(RegistrationError, match="not a syscall name"):
        parse_target(name)


@pytest.mark.parametrize("value", [257, b"openat", ["openat"], 1.5])
def test_non_str_is_refused_with_the_type(value: object) -> None:
    with pytest.raises(RegistrationError) as info:
        parse_target(value)  # type: ignore[arg-type]
    assert type(value).__name__ in str(info.value)
    assert "'on_sys_openat_enter'" in str(info.value)


def test_registration_error_is_the_package_error_and_a_value_error() -> None:
    assert issubclass(RegistrationError, SyscallsAsyncError)
    assert issubclass(RegistrationError, ValueError)


@pytest.mark.parametrize("name", ["openat", "sys_openat", "_sys_openat", "__x64_sys_openat"])
def test_the_bare_portal_finds_numbers_with_the_one_normaliser(name: str) -> None:
    from syscalls_async.errors import InvalidValue
    from syscalls_async.portal import Portal, SyscallMeta
    from syscalls_async.syscalls import syscall_nr

    metas = [
        SyscallMeta(257, "sys_openat", 4, ("int",) * 4, ("a", "b", "c", "d"), True),
        SyscallMeta(400, "sys_unknown_400", 0, (), (), False),
    ]
    assert syscall_nr(metas, name) == 257
    with pytest.raises(InvalidValue, match="did you mean openat"):
        syscall_nr(metas, "opnat")
    assert not hasattr(Portal, "nr")  # the portal knows no names but the guest's
