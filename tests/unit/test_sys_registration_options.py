"""Registration options beyond the reference document (issue 11) and registry limits, host only.

``read_only``, ``enabled``, plain-str filters, registration handles, unknown
keywords, ``on_error``, the hook-table limit and comm filters with NUL.
"""

from __future__ import annotations

import errno
from typing import Any

import pytest
from sysproto_table import GETPID, IOCTL, OPENAT, make_table

from syscalls_async import FailClosed, Session
from syscalls_async.api.syscalls import SyscallsAPI
from syscalls_async.errors import RegistrationError
from syscalls_async.portal.hooks import FilterKind, encode_hooks
from syscalls_async.syscalls import Registry, ValueFilter
from syscalls_async.syscalls.policy import parse_errno
from syscalls_async.syscalls.registry import MAX_HOOKS, Hook, HookKwargs, HookOptions


def h(regs: Any, proto: Any, syscall: Any, *args: Any) -> None:
    pass


@pytest.fixture
def api() -> SyscallsAPI:
    api = SyscallsAPI()
    api.registry.bind(make_table())
    return api


# -- one options structure, unknown keywords ---------------------------------------------


def test_the_typed_keywords_are_the_options_fields() -> None:
    assert tuple(HookKwargs.__annotations__) == HookOptions.__struct_fields__


@pytest.mark.parametrize("form", ["decorator", "registry"])
def test_an_unknown_keyword_names_itself_and_the_accepted_ones(form: str) -> None:
    api = SyscallsAPI()
    with pytest.raises(RegistrationError) as info:
        if form == "decorator":
            api.syscall("ioctl", readonly=True)  # type: ignore[call-arg]
        else:
            api.registry.add(h, "ioctl", readonly=True)
    msg = str(info.value)
    assert "unknown keyword argument 'readonly' (did you mean read_only?)" in msg
    assert "accepted: name_or_pattern, on_enter, on_return, comm_filter" in msg
    assert "read_only, batch, enabled, on_error" in msg
    assert api.hooks == []


async def test_register_refuses_an_unknown_keyword_too(api: SyscallsAPI) -> None:
    with pytest.raises(RegistrationError, match="register\\(\\): unknown keyword argument 'x'"):
        await api.register(h, "ioctl", x=1)  # type: ignore[call-arg]
    assert api.hooks == []


# -- read_only, enabled -------------------------------------------------------------------


def test_read_only_and_enabled_are_kept_on_the_hook(registry: Registry) -> None:
    ro = registry.add(h, "ioctl", read_only=True)
    off = registry.add(h, "ioctl", enabled=False)
    assert (ro.read_only, ro.enabled, off.read_only, off.enabled) == (True, True, False, False)
    # a disabled registration is not in the guest's table until enabled
    assert registry.table()[1] == [ro]
    # read_only hooks are observe-only: they run on observed (ring) events only
    assert registry.candidates(IOCTL.nr, True, observed=True) == [ro]
    assert registry.candidates(IOCTL.nr, True) == []
    registry.set_enabled(off, True)
    assert registry.table()[1] == [ro, off]


@pytest.mark.parametrize("flag", ["read_only", "enabled"])
def test_read_only_and_enabled_must_be_bools(registry: Registry, flag: str) -> None:
    with pytest.raises(RegistrationError, match=f"{flag} must be True or False, not 1"):
        registry.add(h, "ioctl", **{flag: 1})


# -- plain str filters ----------------------------------------------------------------------


def test_a_plain_str_filter_means_starts_with_on_pointer_arguments(registry: Registry) -> None:
    hook = registry.add(h, "openat", arg_filters=[None, "/etc/"])
    spec = hook.spec().args[1]
    assert spec is not None and (spec.kind, spec.text) == (FilterKind.STR_STARTSWITH, b"/etc/")
    assert hook.arg_filters[1] is not None and hook.arg_filters[1].matches_string(b"/etc/passwd")
    assert not hook.arg_filters[1].matches_string(b"/tmp/etc/")
    raw = registry.add(h, "on_all_sys_enter", arg_filters=["/x"])  # raw args: any may point
    assert raw.spec().args[0] is not None


def test_a_plain_str_filter_on_a_number_is_refused_at_registration(registry: Registry) -> None:
    with pytest.raises(RegistrationError) as info:
        registry.add(h, "ioctl", arg_filters=["9"])
    msg = str(info.value)
    assert "argument 0 (unsigned int fd)" in msg
    assert "plain str filter means" in msg and "needs a pointer argument" in msg


def test_a_plain_str_filter_is_checked_when_prototypes_come_later() -> None:
    registry = Registry()
    registry.add(h, "ioctl", arg_filters=["9"])  # no prototypes yet: accepted for now
    with pytest.raises(RegistrationError, match="needs a pointer argument"):
        registry.bind(make_table())
    assert list(registry) == []


@pytest.mark.parametrize("retval_filter", ["/etc", ValueFilter.string_contains("x")])
def test_a_string_retval_filter_is_refused_before_prototypes(retval_filter: object) -> None:
    registry = Registry()  # nothing bound: this check needs no prototypes
    with pytest.raises(RegistrationError, match="return values are compared as numbers"):
        registry.add(h, "on_sys_openat_return", retval_filter=retval_filter)


# -- handles ---------------------------------------------------------------------------------


async def test_the_decorator_returns_a_handle_that_calls_the_handler(api: SyscallsAPI) -> None:
    @api.syscall("on_sys_ioctl_enter", arg_filters=[None, 0xABCD])
    async def on_ioctl(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int, arg: int) -> int:
        """Doc kept."""
        return fd + cmd + arg

    assert isinstance(on_ioctl, Hook)
    assert await on_ioctl(None, None, None, 1, 2, 3) == 6  # still the function
    assert on_ioctl.__name__ == "on_ioctl" and on_ioctl.__doc__ == "Doc kept."
    assert on_ioctl == on_ioctl.handler and on_ioctl.handler == on_ioctl
    assert api.hooks == [on_ioctl]
    assert "on_ioctl on ioctl (enter)" in repr(on_ioctl)


def test_stacked_decorators_register_the_function_twice(api: SyscallsAPI) -> None:
    @api.syscall("getpid")
    @api.syscall("ioctl")
    def both(regs: Any, proto: Any, syscall: Any, *args: Any) -> str:
        return "called"

    first, second = api.hooks
    assert first.handler is second.handler and first is not second
    assert both is second and both(1, 2, 3) == "called"
    assert (first.proto, second.proto) == (IOCTL, GETPID)


def test_a_decorated_method_still_binds_when_called_directly() -> None:
    api = SyscallsAPI()

    class P:
        @api.syscall("getpid")
        def method(self, *args: Any) -> tuple[Any, ...]:
            return (self, *args)

    p = P()
    assert p.method(1, 2) == (p, 1, 2)
    assert isinstance(P.__dict__["method"], Hook)


def test_unregister_by_handle_function_and_name(registry: Registry) -> None:
    class P:
        def count(self, regs: Any, proto: Any, syscall: Any) -> None:
            pass

    p, q = P(), P()
    first = registry.add(p.count, "getpid")
    second = registry.add(p.count, "getpid")  # the same method, the same filters
    other = registry.add(q.count, "getpid")
    plain = registry.add(h, "getpid")
    again = registry.add(h, "ioctl")

    assert registry.remove(first) == [first]  # a handle: that registration only
    assert registry.candidates(GETPID.nr, True) == [second, other, plain]
    assert registry.remove(p.count) == [second]  # a bound method: every registration of it
    assert registry.set_enabled("h", False) == [plain, again]  # a name: every one so named
    assert registry.remove(h) == [plain, again]
    assert list(registry) == [other]
    with pytest.raises(RegistrationError, match="no hook for"):
        registry.remove(first)  # already gone


# -- on_error --------------------------------------------------------------------------------


def test_on_error_values(registry: Registry) -> None:
    assert registry.add(h, "ioctl").on_error is None  # the session's policy
    assert registry.add(h, "ioctl", on_error="continue").on_error == "continue"
    assert registry.add(h, "ioctl", on_error="fail_closed").on_error == FailClosed(errno.EPERM)
    closed = registry.add(h, "ioctl", on_error=FailClosed(errno.EACCES)).on_error
    assert closed == FailClosed(13)
    with pytest.raises(RegistrationError, match="on_error must be 'continue', 'fail_closed'"):
        registry.add(h, "ioctl", on_error="closed")
    with pytest.raises(RegistrationError, match="cannot fail closed"):
        registry.add(h, "ioctl", read_only=True, on_error="fail_closed")
    assert registry.add(h, "ioctl", read_only=True, on_error="continue").read_only


@pytest.mark.parametrize("bad", [0, -13, 4096, True, "EPERM"])
def test_fail_closed_errno_must_be_an_errno(bad: Any) -> None:
    with pytest.raises(RegistrationError, match="positive errno number up to 4095"):
        FailClosed(bad)


def test_session_checks_its_failure_policy_before_booting() -> None:
    with pytest.raises(RegistrationError, match="Session: on_error must be"):
        Session(on_error="fail-closed")  # type: ignore[arg-type]
    assert Session(on_error="fail_closed").on_error == FailClosed(errno.EPERM)


@pytest.mark.parametrize(("text", "number"), [("EPERM", 1), ("eacces", 13), ("13", 13), ("0x5", 5)])
def test_parse_errno(text: str, number: int) -> None:
    assert parse_errno(text) == number


@pytest.mark.parametrize("text", ["EWHAT", "0", "-1", "4096", "x.py", "E"])
def test_parse_errno_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not an errno name or number"):
        parse_errno(text)


# -- limits ----------------------------------------------------------------------------------


def test_the_hook_table_limit_is_refused_at_registration(registry: Registry) -> None:
    hooks = [registry.add(h, "getpid", enabled=i % 2 == 0) for i in range(MAX_HOOKS)]
    with pytest.raises(RegistrationError) as info:
        registry.add(h, "getpid")
    assert f"at most {MAX_HOOKS} hooks and {MAX_HOOKS} are registered" in str(info.value)
    assert len(registry) == MAX_HOOKS
    # everything accepted fits the guest's table, even with all of them enabled
    for hook in hooks:
        hook.enabled = True
    encode_hooks([x.spec() for x in hooks])
    registry.remove(hooks[0])
    registry.add(h, "getpid")  # room again


def test_the_limit_counts_hooks_registered_before_prototypes() -> None:
    registry = Registry()
    for _ in range(MAX_HOOKS):
        registry.add(h, "openat")
    with pytest.raises(RegistrationError, match=f"at most {MAX_HOOKS} hooks"):
        registry.add(h, "openat")
    registry.bind(make_table())
    assert registry.candidates(OPENAT.nr, True)[0].proto == OPENAT


@pytest.mark.parametrize("comm", ["a\0b", "\0", "cat\0"])
def test_a_comm_filter_with_nul_is_refused(registry: Registry, comm: str) -> None:
    with pytest.raises(RegistrationError, match="contains NUL; a task's comm is a C string"):
        registry.add(h, "getpid", comm_filter=comm)
    assert list(registry) == []


# -- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fail_closed"),
    [
        (["x.py"], None),
        (["--fail-closed", "--stats", "x.py"], errno.EPERM),
        (["--fail-closed=EACCES", "x.py"], errno.EACCES),
        (["--fail-closed", "2", "x.py"], errno.ENOENT),
    ],
)
def test_run_fail_closed_option(argv: list[str], fail_closed: int | None) -> None:
    from syscalls_async.cli import parser

    args = parser().parse_args(["run", *argv, "--", "cat"])
    assert (args.fail_closed, args.plugin, args.command) == (fail_closed, "x.py", ["cat"])


def test_run_fail_closed_refuses_a_non_errno_and_says_how_to_write_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from syscalls_async.cli import parser

    with pytest.raises(SystemExit):
        parser().parse_args(["run", "--fail-closed", "x.py", "--", "cat"])
    err = capsys.readouterr().err
    assert "'x.py' is not an errno name or number" in err
    assert "--fail-closed=EPERM" in err
