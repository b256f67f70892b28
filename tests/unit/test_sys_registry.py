"""Hook registration rules (syscalls.registry, api.syscalls), host only.

Each test uses its own ``Registry``/``SyscallsAPI``, never the global ``plugins``.
"""

from __future__ import annotations

import functools
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from sysproto_table import GETPID, IOCTL, OPENAT, UNKNOWN_NR, make_table

from syscalls_async.api.syscalls import (
    SyscallsAPI,
    load_prototypes,
    prototype_cache,
    save_prototypes,
)
from syscalls_async.errors import RegistrationError
from syscalls_async.portal.abi import C
from syscalls_async.portal.hooks import NR_ALL, NR_UNKNOWN, FilterKind, encode_hooks
from syscalls_async.portal.types import SyscallMeta
from syscalls_async.syscalls import PrototypeTable, Registry, ValueFilter
from syscalls_async.syscalls.filters import STRING_MAX
from syscalls_async.syscalls.names import TargetKind
from syscalls_async.syscalls.registry import COMM_MAX, MAX_ARGS

M64 = (1 << 64) - 1


def h(regs: Any, proto: Any, syscall: Any, *args: Any) -> None:
    """Accepts anything a hook may be called with."""


def h3(regs: Any, proto: Any, syscall: Any) -> None:
    pass


async def ah(regs: Any, proto: Any, syscall: Any, *args: Any) -> None:
    pass


# -- directions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "kwargs", "enter", "ret"),
    [
        ("openat", {}, True, False),
        ("openat", {"on_enter": True}, True, False),
        ("openat", {"on_return": True}, False, True),
        ("openat", {"on_enter": True, "on_return": True}, True, True),
        ("openat", {"on_enter": True, "on_return": False}, True, False),
        ("openat", {"on_enter": False, "on_return": True}, False, True),
        ("openat", {"on_enter": False}, False, True),  # only the return is left
        ("openat", {"on_return": False}, True, False),
        ("openat", {"retval_filter": ValueFilter.success()}, False, True),
        ("openat", {"retval_filter": -2, "on_enter": False}, False, True),
        ("openat", {"retval_filter": 0, "on_enter": True, "on_return": True}, True, True),
        ("on_sys_openat_enter", {}, True, False),
        ("on_sys_openat_return", {}, False, True),
        ("on_sys_openat_enter", {"on_return": True}, True, True),
        ("on_sys_openat_return", {"on_enter": False}, False, True),
        ("on_sys_openat_return", {"retval_filter": 3}, False, True),
        ("on_all_sys_enter", {}, True, False),
        ("on_all_sys_return", {"retval_filter": ValueFilter.error()}, False, True),
        ("on_unknown_sys_return", {}, False, True),
        (None, {}, True, False),
    ],
)
def test_directions(
    registry: Registry, pattern: str | None, kwargs: dict[str, Any], enter: bool, ret: bool
) -> None:
    hook = registry.add(h, pattern, **kwargs)
    assert (hook.enter, hook.ret) == (enter, ret)
    assert (hook.spec().enter, hook.spec().ret) == (enter, ret)


@pytest.mark.parametrize(
    ("pattern", "kwargs", "message"),
    [
        ("openat", {"retval_filter": 0, "on_enter": True}, "retval_filter needs a return hook"),
        ("openat", {"retval_filter": 0, "on_return": False}, "retval_filter needs a return hook"),
        ("on_sys_openat_enter", {"retval_filter": 0}, "retval_filter needs a return hook"),
        ("on_sys_openat_enter", {"on_enter": False}, "contradicts"),
        ("on_sys_openat_return", {"on_return": False}, "contradicts"),
        ("on_all_sys_enter", {"on_enter": False}, "contradicts"),
        ("openat", {"on_enter": False, "on_return": False}, "never"),
        ("openat", {"on_enter": 1}, "on_enter must be True, False or None"),
        ("openat", {"on_return": "yes"}, "on_return must be True, False or None"),
    ],
)
def test_direction_errors(
    registry: Registry, pattern: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(RegistrationError, match=message):
        registry.add(h, pattern, **kwargs)
    assert len(registry) == 0


# -- comm, pid, arg_filters ---------------------------------------------------------


def test_comm_filter_limits(registry: Registry) -> None:
    assert COMM_MAX == 15
    assert registry.add(h, "openat", comm_filter="a" * 15).comm == "a" * 15
    assert registry.add(h, "openat", comm_filter="x").spec().comm == "x"
    with pytest.raises(RegistrationError, match="1 to 15 bytes") as info:
        registry.add(h, "openat", comm_filter="a" * 16)
    assert "'aaaaaaaaaaaaaaa'" in str(info.value)  # the name the kernel would keep
    with pytest.raises(RegistrationError, match="16 bytes"):
        registry.add(h, "openat", comm_filter="é" * 8)  # 8 characters, 16 bytes
    with pytest.raises(RegistrationError, match="1 to 15 bytes"):
        registry.add(h, "openat", comm_filter="")
    for bad in (b"cat", 1, ["cat"]):
        with pytest.raises(RegistrationError, match="comm_filter must be a str"):
            registry.add(h, "openat", comm_filter=bad)
    assert len(registry) == 2


@pytest.mark.parametrize("pid", [0, -1, True, "1", 1.0, 1 << 31, [1]])
def test_pid_filter_bad_values(registry: Registry, pid: object) -> None:
    with pytest.raises(RegistrationError, match="pid_filter must be a positive int"):
        registry.add(h, "openat", pid_filter=pid)


def test_pid_filter_good_value(registry: Registry) -> None:
    hook = registry.add(h, "on_all_sys_enter", pid_filter=1234, comm_filter="cat")
    assert (hook.spec().pid, hook.spec().comm) == (1234, "cat")


@pytest.mark.parametrize(
    ("arg_filters", "message"),
    [
        (5, "arg_filters must be a list"),
        ("abc", "arg_filters must be a list"),
        (b"abc", "arg_filters must be a list"),
        ({0: 1}, "arg_filters must be a list"),
        ([None] * 7, "7 arg_filters; a syscall has at most 6"),
        ([b"x"], r"arg_filters\[0\]: expected None, an int or a ValueFilter, not bytes"),
        ([None, 1.5], r"arg_filters\[1\]: expected None, an int or a ValueFilter, not float"),
        ([None, True], r"arg_filters\[1\]: expected None, an int or a ValueFilter, not bool"),
        ([ValueFilter], r"arg_filters\[0\]"),  # the class, not a filter
    ],
)
def test_arg_filters_shape_errors(registry: Registry, arg_filters: object, message: str) -> None:
    assert MAX_ARGS == 6
    with pytest.raises(RegistrationError, match=message):
        registry.add(h, "on_all_sys_enter", arg_filters=arg_filters)


def test_arg_filter_entries_none_int_or_valuefilter(registry: Registry) -> None:
    hook = registry.add(
        h, "ioctl", arg_filters=(None, 0xABCD, ValueFilter.range(100, 200))
    )  # a tuple is a sequence too
    spec = hook.spec()
    assert spec.args[0] is None
    assert (spec.args[1].kind, spec.args[1].a, spec.args[1].width) == (FilterKind.EXACT, 0xABCD, 32)
    assert (spec.args[2].kind, spec.args[2].a, spec.args[2].b) == (FilterKind.RANGE, 100, 200)
    # trailing Nones are no filters at all, so they never exceed the argument count
    assert registry.add(h, "getpid", arg_filters=[None, None]).arg_filters == ()


def test_more_arg_filters_than_arguments_names_them(registry: Registry) -> None:
    with pytest.raises(RegistrationError) as info:
        registry.add(h, "ioctl", arg_filters=[None, None, None, 1])
    msg = str(info.value)
    assert "4 arg_filters" in msg and "ioctl has 3 arguments" in msg
    assert "unsigned int fd, unsigned int cmd, unsigned long arg" in msg
    with pytest.raises(RegistrationError, match="getpid has 0 arguments"):
        registry.add(h, "getpid", arg_filters=[0])


def test_filter_that_does_not_fit_the_argument_names_it(registry: Registry) -> None:
    with pytest.raises(RegistrationError) as info:
        registry.add(h, "openat", arg_filters=[1 << 32])
    msg = str(info.value)
    assert "argument 0 (int dfd)" in msg and "signed 32-bit" in msg
    with pytest.raises(RegistrationError, match=r"argument 1 \(unsigned int cmd\)"):
        registry.add(h, "ioctl", arg_filters=[None, ValueFilter.string_exact("x")])
    with pytest.raises(RegistrationError, match="return value"):
        registry.add(h, "openat", retval_filter=ValueFilter.string_exact("x"))
    with pytest.raises(RegistrationError, match="retval_filter: expected None"):
        registry.add(h, "openat", on_return=True, retval_filter="0")


def test_string_filter_on_pointer_and_on_all_syscall_args(registry: Registry) -> None:
    hook = registry.add(h, "openat", arg_filters=[None, ValueFilter.string_startswith("/etc/")])
    assert hook.spec().args[1].kind is FilterKind.STR_STARTSWITH
    hook = registry.add(h, "on_all_sys_enter", arg_filters=[ValueFilter.string_exact("/x")])
    assert hook.spec().args[0].text == b"/x"


def test_unknown_syscall_suggests_close_matches(registry: Registry) -> None:
    with pytest.raises(RegistrationError) as info:
        registry.add(h, "opnat")
    assert "unknown syscall 'opnat'" in str(info.value)
    assert "did you mean openat" in str(info.value)
    with pytest.raises(RegistrationError, match="did you mean"):
        registry.add(h, "on_sys_iocttl_return")
    with pytest.raises(RegistrationError) as info:
        registry.add(h, "zzzzzz")
    assert "did you mean" not in str(info.value)
    # a number without metadata has no name to hook by
    with pytest.raises(RegistrationError, match="unknown syscall"):
        registry.add(h, f"sys_unknown_{UNKNOWN_NR}")
    assert len(registry) == 0


# -- handlers ----------------------------------------------------------------------


def test_handler_must_be_callable(registry: Registry) -> None:
    with pytest.raises(RegistrationError, match="must be callable, not str"):
        registry.add("handler", "openat")  # type: ignore[arg-type]
    with pytest.raises(RegistrationError, match="must be callable, not NoneType"):
        registry.add(None, "openat")  # type: ignore[arg-type]


def test_generator_handlers_are_refused(registry: Registry) -> None:
    def gen(regs: Any, proto: Any, syscall: Any) -> Generator[None, None, None]:
        yield

    async def agen(regs: Any, proto: Any, syscall: Any) -> Any:
        yield

    for handler in (gen, agen):
        with pytest.raises(RegistrationError, match=r"generator.*async def.*await"):
            registry.add(handler, "openat")


def test_handler_needs_three_positional_parameters(registry: Registry) -> None:
    def two(regs: Any, proto: Any) -> None:
        pass

    def kw(regs: Any, proto: Any, *, syscall: Any) -> None:
        pass

    def required_kw(regs: Any, proto: Any, syscall: Any, *, extra: Any) -> None:
        pass

    for handler in (two, lambda: None):
        with pytest.raises(RegistrationError, match="at least \\(regs, proto, syscall\\)"):
            registry.add(handler, "openat")
    with pytest.raises(RegistrationError, match="keyword-only parameters \\['syscall'\\]"):
        registry.add(kw, "openat")
    with pytest.raises(RegistrationError, match="keyword-only parameters \\['extra'\\]"):
        registry.add(required_kw, "openat")
    # *args alone is enough; so is a default-less trio with optional extras
    registry.add(lambda *a: None, "openat")
    registry.add(lambda r, p, s, fd=0, **kw: None, "openat")
    registry.add(functools.partial(h, None), "openat")


def test_handler_requiring_more_arguments_than_the_syscall_has(registry: Registry) -> None:
    def five(regs: Any, proto: Any, syscall: Any, fd: Any, cmd: Any, arg: Any, extra: Any) -> None:
        pass

    with pytest.raises(RegistrationError, match="requires 4 syscall arguments, but ioctl has 3"):
        registry.add(five, "ioctl")
    with pytest.raises(RegistrationError, match="requires 1 syscall arguments, but getpid has 0"):
        registry.add(lambda r, p, s, x: None, "getpid")
    # fewer is fine: only as many as the handler takes are passed
    assert registry.add(lambda r, p, s, dfd: None, "openat").nargs_passed == 1
    assert registry.add(lambda r, p, s, dfd, name=0: None, "openat").nargs_passed == 2
    assert registry.add(h, "openat").nargs_passed == 4
    assert registry.add(h3, "openat").nargs_passed == 0
    # all-syscall and unknown hooks never get unpacked arguments
    assert registry.add(h, "on_all_sys_enter").nargs_passed == 0
    assert registry.add(h, "on_unknown_sys_enter").nargs_passed == 0


def test_star_args_do_not_excuse_missing_required_arguments(registry: Registry) -> None:
    with pytest.raises(RegistrationError, match="requires 1 syscall arguments, but getpid has 0"):
        registry.add(lambda r, p, s, x, *rest: None, "getpid")
    with pytest.raises(RegistrationError, match="requires 4 syscall arguments, but ioctl has 3"):
        registry.add(lambda r, p, s, a, b, c, d, *rest: None, "ioctl")
    assert registry.add(lambda r, p, s, fd, *rest: None, "ioctl").nargs_passed == 3


@pytest.mark.parametrize("pattern", ["on_all_sys_enter", "on_unknown_sys_return", None])
def test_all_and_unknown_handlers_cannot_require_unpacked_arguments(
    registry: Registry, pattern: str | None
) -> None:
    with pytest.raises(RegistrationError, match=r"get none \(read syscall.args\)"):
        registry.add(lambda r, p, s, fd: None, pattern)
    with pytest.raises(RegistrationError, match="get none"):
        registry.add(lambda r, p, s, fd, *rest: None, pattern)
    # optional extras are fine: they keep their defaults
    assert registry.add(lambda r, p, s, fd=None: None, pattern).nargs_passed == 0
    # and the same check runs when the prototypes arrive later
    late = Registry()
    late.add(lambda r, p, s, fd: None, pattern)
    with pytest.raises(RegistrationError, match="get none"):
        late.bind(make_table())


def test_bound_methods_and_async_handlers(registry: Registry) -> None:
    class P:
        def on_open(self, regs: Any, proto: Any, syscall: Any, dfd: Any, filename: Any) -> None:
            pass

    p = P()
    hook = registry.add(p.on_open, "openat")
    assert hook.nargs_passed == 2 and hook.name == "on_open"
    assert registry.add(ah, "openat").name == "ah"


# -- late resolution -----------------------------------------------------------------


def test_hooks_before_prototypes_are_resolved_by_bind() -> None:
    reg = Registry()
    a = reg.add(h, "sys_openat", arg_filters=[-100])
    b = reg.add(h, "on_all_sys_return")
    c = reg.add(h, "on_unknown_sys_enter")
    assert not any(x.resolved for x in (a, b, c))
    assert reg.table() == ([], [])  # nothing for the guest yet
    assert reg.candidates(OPENAT.nr, True) == []
    reg.bind(make_table())
    assert (a.spec_nr, b.spec_nr, c.spec_nr) == (OPENAT.nr, NR_ALL, NR_UNKNOWN)
    assert a.proto == OPENAT and a.spec().args[0].a == -100 and a.spec().args[0].width == 32
    specs, hooks = reg.table()
    assert hooks == [a, b, c] and [s.id for s in specs] == [a.id, b.id, c.id]


def test_bind_raises_for_an_invalid_early_hook_and_keeps_the_good_ones() -> None:
    reg = Registry()
    good = reg.add(h, "ioctl", arg_filters=[None, 0x5401])
    reg.add(h, "opnat")
    with pytest.raises(RegistrationError, match="did you mean openat"):
        reg.bind(make_table())
    assert list(reg) == [good] and good.resolved


def test_bind_reports_every_invalid_hook() -> None:
    reg = Registry()
    reg.add(h, "opnat")
    reg.add(h, "getpid", arg_filters=[1])
    with pytest.raises(RegistrationError) as info:
        reg.bind(make_table())
    assert "opnat" in str(info.value) and "getpid has 0 arguments" in str(info.value)
    assert len(reg) == 0


def test_listeners_hear_every_change(registry: Registry) -> None:
    heard: list[int] = []
    registry.listeners.append(lambda: heard.append(len(registry)))
    registry.add(h, "openat")
    registry.set_enabled(h, False)
    registry.remove(h)
    assert heard == [1, 1, 0]


# -- candidates, enable/disable/remove ---------------------------------------------------


def test_candidates_in_registration_order(registry: Registry) -> None:
    a = registry.add(h, "openat")
    b = registry.add(h, "on_all_sys_enter")
    c = registry.add(h, "on_unknown_sys_enter")
    d = registry.add(h, "on_sys_openat_return")
    e = registry.add(h, "openat", on_enter=True, on_return=True)
    f = registry.add(h, "on_all_sys_return")
    g = registry.add(h, "on_unknown_sys_return")
    i = registry.add(h, "ioctl")
    assert registry.candidates(OPENAT.nr, True) == [a, b, e]
    assert registry.candidates(OPENAT.nr, False) == [d, e, f]
    assert registry.candidates(IOCTL.nr, True) == [b, i]
    assert registry.candidates(GETPID.nr, True) == [b]
    assert registry.candidates(UNKNOWN_NR, True) == [b, c]
    assert registry.candidates(UNKNOWN_NR, False) == [f, g]
    # a number the table has never heard of is unknown too
    assert registry.candidates(999, True) == [b, c]
    registry.set_enabled(b, False)
    assert registry.candidates(OPENAT.nr, True) == [a, e]
    assert registry.candidates(UNKNOWN_NR, True) == [c]
    registry.set_enabled(b, True)
    assert registry.candidates(OPENAT.nr, True) == [a, b, e]
    registry.remove(a)
    assert registry.candidates(OPENAT.nr, True) == [b, e]
    new = registry.add(h, "openat")
    assert registry.candidates(OPENAT.nr, True) == [b, e, new]


def test_disable_enable_remove_by_function_method_and_name(registry: Registry) -> None:
    class P:
        def on_ioctl(self, regs: Any, proto: Any, syscall: Any) -> None:
            pass

    p1, p2 = P(), P()
    f1 = registry.add(h, "openat")
    f2 = registry.add(h, "on_all_sys_enter")
    m1 = registry.add(p1.on_ioctl, "ioctl")
    m2 = registry.add(p2.on_ioctl, "ioctl")
    a = registry.add(ah, "openat")

    assert registry.set_enabled(h, False) == [f1, f2]  # every hook of the function
    assert registry.table()[1] == [m1, m2, a]
    assert [s.id for s in registry.table()[0]] == [m1.id, m2.id, a.id]
    registry.set_enabled(h, True)

    assert registry.set_enabled(p1.on_ioctl, False) == [m1]  # the bound method, not p2's
    assert registry.candidates(IOCTL.nr, True) == [f2, m2]
    assert registry.set_enabled("on_ioctl", False) == [m1, m2]  # by name: both
    assert registry.candidates(IOCTL.nr, True) == [f2]
    registry.set_enabled("on_ioctl", True)
    assert registry.candidates(IOCTL.nr, True) == [f2, m1, m2]

    assert registry.set_enabled(a, False) == [a]  # by Hook object
    assert registry.table()[1] == [f1, f2, m1, m2]

    assert registry.remove("ah") == [a]
    assert registry.remove(p2.on_ioctl) == [m2]
    assert registry.remove(h) == [f1, f2]
    assert list(registry) == [m1]
    with pytest.raises(RegistrationError, match=r"no hook for 'ah'.*\['on_ioctl'\]"):
        registry.remove("ah")
    with pytest.raises(RegistrationError, match="no hook for"):
        registry.set_enabled(h, True)
    with pytest.raises(RegistrationError, match="no hook for"):
        registry.set_enabled(a, True)  # removed Hook object


def test_limits_accepted_at_registration_are_encodable_for_the_guest(registry: Registry) -> None:
    hooks = [
        registry.add(
            h,
            "openat",
            on_enter=True,
            on_return=True,
            comm_filter="é" * 7 + "x",  # 15 bytes
            pid_filter=(1 << 31) - 1,
            arg_filters=[
                ValueFilter.range(-(1 << 31), 0xFFFFFFFF),
                ValueFilter.string_endswith("z" * STRING_MAX),
                ValueFilter.bitmask_clear(-1),
                ValueFilter.exact(0xFFFFFFFF),
            ],
            retval_filter=ValueFilter.range(-(1 << 63), M64),
        ),
        registry.add(h, "on_all_sys_enter", arg_filters=[-1] * 6),
        registry.add(h, "on_unknown_sys_return", retval_filter=-(1 << 63)),
    ]
    table = encode_hooks([x.spec() for x in hooks])
    assert len(table) == 3 * C.SA_HOOK_SIZE


# -- the API object ----------------------------------------------------------------------


def test_decorator_registers_and_returns_the_handler() -> None:
    api = SyscallsAPI()

    @api.syscall("on_sys_ioctl_enter", arg_filters=[None, 0xABCD])
    async def on_ioctl(regs: Any, proto: Any, syscall: Any, fd: int, cmd: int, arg: int) -> None:
        pass

    @api.syscall()
    def every(regs: Any, proto: Any, syscall: Any) -> None:
        pass

    assert callable(on_ioctl)
    assert [x.handler for x in api.hooks] == [on_ioctl, every]
    assert api.hooks[1].target.kind is TargetKind.ALL and api.hooks[1].enter
    api.registry.bind(make_table())
    assert api.hooks[0].spec().nr == IOCTL.nr


def test_decorator_checks_the_pattern_before_a_handler_is_given() -> None:
    api = SyscallsAPI()
    with pytest.raises(RegistrationError, match="bad hook pattern"):
        api.syscall("on_sys_ioctl")
    with pytest.raises(RegistrationError, match="comm_filter"):
        api.syscall("ioctl", comm_filter="x" * 16)(h)
    assert api.hooks == []


def test_decorator_without_parentheses_is_refused() -> None:
    api = SyscallsAPI()
    with pytest.raises(RegistrationError, match=r"name_or_pattern must be a str.*not function"):
        api.syscall(h)  # type: ignore[arg-type]  # @api.syscall instead of @api.syscall()
    assert api.hooks == []


async def test_awaitable_forms_without_a_session() -> None:
    api = SyscallsAPI()
    api.registry.bind(make_table())
    hook = await api.register(h, "openat", on_return=True, retval_filter=ValueFilter.error())
    assert hook.ret and not hook.enter and api.hooks == [hook]
    await api.disable_syscall(h)
    assert not hook.enabled and api.registry.table() == ([], [])
    await api.enable_syscall("h")
    assert hook.enabled
    await api.unregister(h)
    assert api.hooks == []
    with pytest.raises(RegistrationError, match="unknown syscall"):
        await api.register(h, "opnat")
    with pytest.raises(RegistrationError, match="no hook"):
        await api.disable_syscall("nothing")


@pytest.mark.parametrize(
    "name", ["openat", "sys_openat", "_sys_openat", "__x64_sys_openat", "on_sys_openat_enter"]
)
def test_get_syscall_info_by_name(name: str) -> None:
    api = SyscallsAPI()
    assert api.get_syscall_info_by_name("openat") is None  # no prototypes yet
    api.registry.bind(make_table())
    proto = api.get_syscall_info_by_name(name)
    if name.startswith("on_"):
        assert proto is None  # a pattern is not a name
        return
    assert proto == OPENAT
    assert (proto.name, proto.nr, proto.nargs) == ("sys_openat", 257, 4)
    assert proto.types == ("int", "const char *", "int", "umode_t")
    assert proto.names == ("dfd", "filename", "flags", "mode")


def test_get_syscall_info_by_name_unknown() -> None:
    api = SyscallsAPI()
    api.registry.bind(make_table())
    assert api.get_syscall_info_by_name("opnat") is None
    assert api.get_syscall_info_by_name(f"sys_unknown_{UNKNOWN_NR}") is None
    assert api.get_syscall_info_by_name("") is None
    assert api.get_syscall_info_by_name("sys_getpid") == GETPID


# -- prototypes -----------------------------------------------------------------------------


def test_prototype_table_lookups() -> None:
    t = make_table()
    assert len(t) == 6
    assert t.by_nr(257) == OPENAT and t.by_name("__x64_sys_ioctl") == IOCTL
    assert t.by_nr(UNKNOWN_NR).known is False
    missing = t.by_nr(1000)
    assert (missing.name, missing.nr, missing.nargs, missing.known) == (
        "sys_unknown_1000",
        1000,
        0,
        False,
    )
    assert t.close_matches("sys_ioct") == ["ioctl"]
    assert OPENAT.short_name == "openat"
    assert sorted(p.nr for p in t) == [0, 8, 16, 39, 257, UNKNOWN_NR]


def test_prototypes_from_guest_metadata() -> None:
    metas = [
        SyscallMeta(257, "sys_openat", 4, OPENAT.types, OPENAT.names, True),
        SyscallMeta(UNKNOWN_NR, f"sys_unknown_{UNKNOWN_NR}", 0, (), (), False),
    ]
    t = PrototypeTable.from_meta(metas)
    assert t.by_name("openat") == OPENAT
    assert t.by_nr(UNKNOWN_NR).known is False and t.by_name(f"unknown_{UNKNOWN_NR}") is None


def test_prototype_cache_round_trip(tmp_path: Path) -> None:
    path = prototype_cache(tmp_path)
    assert load_prototypes(path) is None  # no cache yet
    save_prototypes(path, make_table())
    loaded = load_prototypes(path)
    assert loaded is not None and sorted(loaded, key=lambda p: p.nr) == sorted(
        make_table(), key=lambda p: p.nr
    )
    path.write_bytes(b"{not json")
    assert load_prototypes(path) is None


def test_comm_hint_is_cut_by_bytes_not_characters() -> None:
    from syscalls_async.syscalls.registry import COMM_MAX, _check_comm

    with pytest.raises(RegistrationError) as info:
        _check_comm("é" * 10)  # 20 bytes
    hint = str(info.value).rsplit("use ", 1)[1].rstrip(")").strip("'")
    assert len(hint.encode()) <= COMM_MAX and hint == "é" * 7


def test_get_syscall_info_by_name_refuses_a_non_str() -> None:
    from syscalls_async.api.syscalls import SyscallsAPI

    with pytest.raises(TypeError, match="str"):
        SyscallsAPI().get_syscall_info_by_name(None)  # type: ignore[arg-type]
