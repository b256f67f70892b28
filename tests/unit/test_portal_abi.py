"""The portal ABI as cffi sees it, and the hook table encoding."""

from __future__ import annotations

import pytest

from syscalls_async.errors import InvalidValue, PortalVersionError
from syscalls_async.portal import FilterKind, GuestFilter, HookSpec
from syscalls_async.portal.abi import C, check_layout, ffi, header_path, parse_header
from syscalls_async.portal.hooks import encode_hooks


def test_layout_matches_the_header_constants() -> None:
    check_layout()
    assert ffi.sizeof("struct sa_slot_guest") + ffi.sizeof("struct sa_slot_host") == (
        C.SA_SLOT_G2H_OFF
    )
    assert C.SA_SLOTS_OFF + C.SA_SLOT_COUNT * C.SA_SLOT_SIZE <= C.SA_REGION_MIN_SIZE
    assert C.SA_MAX_HOOKS == 64 * C.SA_MATCH_WORDS
    assert ffi.offsetof("struct sa_slot_host", "seq") == 0  # written last, read first
    assert ffi.offsetof("struct sa_slot_host", "epoch") == 4


def test_cdef_part_is_plain() -> None:
    decls, consts = parse_header(header_path().read_text())
    assert "#" not in decls and "_Static_assert" not in decls
    assert consts["SA_VERSION"] == C.SA_VERSION


def test_header_without_markers_is_refused() -> None:
    with pytest.raises(PortalVersionError):
        parse_header("struct x { int a; };")
    with pytest.raises(PortalVersionError):
        parse_header("/* SA_CDEF_BEGIN */\n#ifdef X\n/* SA_CDEF_END */")


def test_hook_encoding_round_trips_through_cffi() -> None:
    spec = HookSpec(
        id=77,
        nr=16,
        enter=True,
        ret=True,
        comm="send_syscall",
        pid=42,
        args=(
            None,
            GuestFilter(FilterKind.RANGE, -5, 7, width=32, signed=True),
            GuestFilter(FilterKind.STR_CONTAINS, text=b"etc"),
        ),
        retval=GuestFilter(FilterKind.ERROR),
    )
    raw = encode_hooks([spec, HookSpec(id=2, nr=-1, enabled=False)])
    assert len(raw) == 2 * C.SA_HOOK_SIZE
    h = ffi.from_buffer("struct sa_hook[]", raw)
    assert (h[0].id, h[0].nr, h[0].pid) == (77, 16, 42)
    assert h[0].flags == (
        C.SA_HOOK_ENABLED | C.SA_HOOK_ENTER | C.SA_HOOK_RETURN | C.SA_HOOK_PID | C.SA_HOOK_COMM
    )
    assert ffi.string(h[0].comm) == b"send_syscall"
    assert h[0].args[0].kind == C.SA_F_NONE
    a1 = h[0].args[1]
    assert (a1.kind, a1.cmp, a1.a, a1.b) == (
        C.SA_F_RANGE,
        C.SA_CMP_32 | C.SA_CMP_SIGNED,
        2**64 - 5,
        7,
    )
    assert (h[0].args[2].str_len, ffi.string(h[0].args[2].str)) == (3, b"etc")
    assert h[0].ret.kind == C.SA_F_ERROR
    assert (h[1].nr, h[1].flags) == (C.SA_NR_ALL, C.SA_HOOK_ENTER)


@pytest.mark.parametrize(
    "spec",
    [
        HookSpec(id=1, nr=1, comm="x" * 16),
        HookSpec(id=1, nr=-3),
        HookSpec(id=1, nr=1, args=(None,) * 7),
        HookSpec(id=1, nr=1, args=(GuestFilter(FilterKind.STR_EXACT, text=b"x" * 200),)),
        HookSpec(id=1, nr=1, retval=GuestFilter(FilterKind.STR_EXACT, text=b"x")),
        HookSpec(id=1, nr=1, args=(GuestFilter(FilterKind.EXACT, width=16),)),
    ],
)
def test_invalid_hooks_are_refused_on_the_host(spec: HookSpec) -> None:
    with pytest.raises(ValueError):
        encode_hooks([spec])


def test_too_many_hooks() -> None:
    with pytest.raises(ValueError):
        encode_hooks([HookSpec(id=i, nr=0) for i in range(C.SA_MAX_HOOKS + 1)])


def test_hook_numbers_lose_the_guests_base() -> None:
    # mipsel: o32 number 4003 (read) is table entry 3; all/unknown stay as they are
    raw = encode_hooks(
        [
            HookSpec(id=1, nr=4003),
            HookSpec(id=2, nr=C.SA_NR_ALL),
            HookSpec(id=3, nr=C.SA_NR_UNKNOWN),
        ],
        nr_base=4000,
    )
    h = ffi.from_buffer("struct sa_hook[]", raw)
    assert [h[i].nr for i in range(3)] == [3, C.SA_NR_ALL, C.SA_NR_UNKNOWN]


def test_a_number_below_the_guests_base_is_refused() -> None:
    with pytest.raises(InvalidValue, match="start at 4000"):
        encode_hooks([HookSpec(id=1, nr=3)], nr_base=4000)
