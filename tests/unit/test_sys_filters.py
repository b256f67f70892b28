"""ValueFilter and its comparison rule (syscalls.filters / prototypes), host only.

The rule under test: a value is compared as its C type -- ``int`` is 32-bit
signed whatever the upper register bits hold, ``unsigned int`` 32-bit
unsigned, ``off_t``/``long`` 64-bit signed, pointers/sizes 64-bit unsigned,
return values 64-bit signed.  Operands may be written signed or unsigned
within the width; ``success``/``error`` are sign tests at the type's width.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sysproto_table import IOCTL, LSEEK, OPENAT, READ

from syscalls_async.errors import RegistrationError
from syscalls_async.portal.hooks import FilterKind, GuestFilter
from syscalls_async.syscalls import ValueFilter
from syscalls_async.syscalls.filters import STRING_MAX, BoundFilter
from syscalls_async.syscalls.prototypes import RAW, RETVAL, Domain, domain_of

S32 = Domain(32, True)
U32 = Domain(32, False)
S64 = Domain(64, True)

Z, M1, MAX, MIN = 0, 0xFFFF_FFFF_FFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000
BOUNDARIES = {"0": Z, "-1": M1, "max": MAX, "min": MIN}


def bound(f: ValueFilter, domain: Domain, *, pointer: bool = False) -> BoundFilter:
    return f.bind(domain, "test", pointer=pointer)


def matching(f: ValueFilter, domain: Domain) -> set[str]:
    """Which of the four 64-bit boundary registers ``f`` matches in ``domain``."""
    b = bound(f, domain)
    return {name for name, raw in BOUNDARIES.items() if b.matches(raw)}


ALL4 = {"0", "-1", "max", "min"}

# (filter, matched as a signed 64-bit return value, matched as an unsigned 64-bit pointer/size)
BOUNDARY_CASES = [
    (ValueFilter.exact(0), {"0"}, {"0"}),
    (ValueFilter.exact(-1), {"-1"}, {"-1"}),
    (ValueFilter.exact(M1), {"-1"}, {"-1"}),
    (ValueFilter.exact(MAX), {"max"}, {"max"}),
    (ValueFilter.exact(MIN), {"min"}, {"min"}),
    (ValueFilter.exact(-(1 << 63)), {"min"}, {"min"}),
    (ValueFilter.not_equal(0), {"-1", "max", "min"}, {"-1", "max", "min"}),
    (ValueFilter.not_equal(-1), {"0", "max", "min"}, {"0", "max", "min"}),
    (ValueFilter.greater(0), {"max"}, {"-1", "max", "min"}),
    (ValueFilter.greater(-1), {"0", "max"}, set()),
    (ValueFilter.greater(MAX), set(), {"-1", "min"}),
    (ValueFilter.greater_equal(0), {"0", "max"}, ALL4),
    (ValueFilter.greater_equal(MIN), ALL4, {"-1", "min"}),
    (ValueFilter.greater_equal(-1), {"0", "-1", "max"}, {"-1"}),
    (ValueFilter.less(0), {"-1", "min"}, set()),
    (ValueFilter.less(MIN), set(), {"0", "max"}),
    (ValueFilter.less(-1), {"min"}, {"0", "max", "min"}),
    (ValueFilter.less_equal(0), {"0", "-1", "min"}, {"0"}),
    (ValueFilter.less_equal(MAX), ALL4, {"0", "max"}),
    (ValueFilter.less_equal(-1), {"-1", "min"}, ALL4),
    (ValueFilter.range(0, 0), {"0"}, {"0"}),
    (ValueFilter.range(0, MAX), {"0", "max"}, {"0", "max"}),
    (ValueFilter.range(MIN, M1), {"-1", "min"}, {"-1", "min"}),
    (ValueFilter.range(-(1 << 63), -1), {"-1", "min"}, {"-1", "min"}),
    (ValueFilter.range(-1, -1), {"-1"}, {"-1"}),
    (ValueFilter.range(MAX, MIN), None, {"max", "min"}),  # signed: 2**63-1 .. -2**63 is empty
    (ValueFilter.range(-1, MAX), {"0", "-1", "max"}, None),  # unsigned: 2**64-1 .. is empty
    (ValueFilter.success(), {"0", "max"}, {"0", "max"}),
    (ValueFilter.error(), {"-1", "min"}, {"-1", "min"}),
    (ValueFilter.bitmask_set(0), ALL4, ALL4),
    (ValueFilter.bitmask_set(MIN), {"-1", "min"}, {"-1", "min"}),
    (ValueFilter.bitmask_set(-1), {"-1"}, {"-1"}),
    (ValueFilter.bitmask_set(MAX), {"-1", "max"}, {"-1", "max"}),
    (ValueFilter.bitmask_clear(MIN), {"0", "max"}, {"0", "max"}),
    (ValueFilter.bitmask_clear(-1), {"0"}, {"0"}),
    (ValueFilter.bitmask_clear(1), {"0", "min"}, {"0", "min"}),
]


@pytest.mark.parametrize(
    ("f", "as_retval", "as_pointer"), BOUNDARY_CASES, ids=lambda v: repr(v)[:60]
)
def test_boundaries_signed_and_unsigned_64(
    f: ValueFilter, as_retval: set[str] | None, as_pointer: set[str] | None
) -> None:
    for domain, expected in ((RETVAL, as_retval), (RAW, as_pointer)):
        if expected is None:
            with pytest.raises(RegistrationError, match="is empty"):
                bound(f, domain)
        else:
            assert matching(f, domain) == expected, domain


def test_every_kind_is_covered() -> None:
    numeric = {f.kind for f, _, _ in BOUNDARY_CASES}
    assert numeric | {k for k in FilterKind if k.is_string} == set(FilterKind)


# -- 32-bit arguments with garbage in the upper register half ------------------------


@pytest.mark.parametrize(
    ("f", "raw", "expected"),
    [
        (ValueFilter.exact(9), 0xDEADBEEF_00000009, True),
        (ValueFilter.exact(0xDEADBEEF_00000009 & 0xFFFFFFFF), 0xDEADBEEF_00000009, True),
        (ValueFilter.exact(-100), 0x00000000_FFFFFF9C, True),
        (ValueFilter.exact(-100), 0xFFFFFFFF_FFFFFF9C, True),
        (ValueFilter.exact(-100), 0x12345678_FFFFFF9C, True),
        (ValueFilter.exact(0xFFFFFF9C), 0x00000000_FFFFFF9C, True),
        (ValueFilter.exact(-100), 0x00000001_00000000, False),
        (ValueFilter.not_equal(9), 0xDEADBEEF_00000009, False),
        (ValueFilter.greater(8), 0xDEADBEEF_00000009, True),
        (ValueFilter.greater(9), 0xDEADBEEF_00000009, False),
        (ValueFilter.greater(0), 0x00000000_FFFFFF9C, False),  # -100
        (ValueFilter.less(0), 0x00000000_80000000, True),  # INT_MIN
        (ValueFilter.less(0), 0xFFFFFFFF_7FFFFFFF, False),  # INT_MAX
        (ValueFilter.greater_equal(-100), 0x00000000_FFFFFF9C, True),
        (ValueFilter.less_equal(-101), 0x00000000_FFFFFF9C, False),
        (ValueFilter.range(-128, 127), 0xDEADBEEF_FFFFFF9C, True),
        (ValueFilter.range(0x80000000, 0xFFFFFFFF), 0x00000000_FFFFFF9C, True),  # -2**31..-1
        (ValueFilter.range(0, 0x7FFFFFFF), 0x00000000_FFFFFF9C, False),
        (ValueFilter.success(), 0xFFFFFFFF_00000001, True),
        (ValueFilter.success(), 0x00000000_FFFFFFFF, False),
        (ValueFilter.error(), 0x00000000_FFFFFFFF, True),
        (ValueFilter.error(), 0xFFFFFFFF_00000000, False),
        (ValueFilter.bitmask_set(0x80000000), 0x00000000_80000000, True),
        (ValueFilter.bitmask_set(-1), 0x00000000_FFFFFFFF, True),  # -1 is all 32 bits
        (ValueFilter.bitmask_clear(0xFFFF0000), 0xFFFFFFFF_0000FFFF, True),  # upper half ignored
        (ValueFilter.bitmask_clear(1), 0x00000001_00000000, True),
    ],
)
def test_int_argument_ignores_upper_register_bits(f: ValueFilter, raw: int, expected: bool) -> None:
    assert OPENAT.domain(0) == S32  # int dfd
    assert bound(f, OPENAT.domain(0)).matches(raw) is expected


@pytest.mark.parametrize(
    ("f", "raw", "expected"),
    [
        (ValueFilter.exact(9), 0xDEADBEEF_00000009, True),
        (ValueFilter.exact(-1), 0x00000000_FFFFFFFF, True),
        (ValueFilter.exact(0xFFFFFFFF), 0xFFFFFFFF_FFFFFFFF, True),
        (ValueFilter.greater(0x7FFFFFFF), 0x00000000_80000000, True),  # unsigned: no sign
        (ValueFilter.less(0x80000000), 0xFFFFFFFF_7FFFFFFF, True),
        (ValueFilter.greater_equal(-1), 0x00000000_FFFFFFFF, True),
        (ValueFilter.less(-1), 0x00000000_FFFFFFFE, True),
        (ValueFilter.error(), 0x00000000_80000000, True),  # sign test at 32 bits
        (ValueFilter.success(), 0xFFFFFFFF_7FFFFFFF, True),
    ],
)
def test_unsigned_int_argument(f: ValueFilter, raw: int, expected: bool) -> None:
    assert IOCTL.domain(1) == U32  # unsigned int cmd
    assert bound(f, IOCTL.domain(1)).matches(raw) is expected


def test_domains_of_the_prototype_types() -> None:
    assert [OPENAT.domain(i) for i in range(4)] == [S32, RAW, S32, U32]
    assert [IOCTL.domain(i) for i in range(3)] == [U32, U32, RAW]
    assert [READ.domain(i) for i in range(3)] == [U32, RAW, RAW]
    assert [LSEEK.domain(i) for i in range(3)] == [U32, S64, U32]
    assert OPENAT.domain(5) == RAW  # beyond the prototype: raw register
    assert domain_of("const int __user *") == RAW
    assert domain_of("pid_t") == S32
    assert domain_of("loff_t") == S64
    assert domain_of("struct stat *") == RAW


def test_off_t_argument_is_signed_64() -> None:
    f = bound(ValueFilter.less(0), LSEEK.domain(1))
    assert f.matches(M1) and f.matches(MIN) and not f.matches(MAX) and not f.matches(0)


# -- operands ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "signed_form", "unsigned_form"),
    [
        (S32, -1, 0xFFFFFFFF),
        (S32, -100, 0xFFFFFF9C),
        (S32, -(1 << 31), 0x80000000),
        (U32, -1, 0xFFFFFFFF),
        (RETVAL, -1, M1),
        (RETVAL, -(1 << 63), MIN),
        (RAW, -1, M1),
        (RAW, -(1 << 63), MIN),
    ],
)
def test_signed_and_unsigned_operands_are_the_same_filter(
    domain: Domain, signed_form: int, unsigned_form: int
) -> None:
    for make in (ValueFilter.exact, ValueFilter.greater, ValueFilter.bitmask_set):
        a, b = bound(make(signed_form), domain), bound(make(unsigned_form), domain)
        assert (a.a, a.b) == (b.a, b.b)
        assert a.guest() == b.guest()
    a = bound(ValueFilter.range(signed_form, signed_form), domain)
    b = bound(ValueFilter.range(unsigned_form, unsigned_form), domain)
    assert a.guest() == b.guest()


@pytest.mark.parametrize(
    ("domain", "operand"),
    [
        (S32, 1 << 32),
        (S32, -(1 << 31) - 1),
        (S32, 0xDEADBEEF_00000009),
        (U32, 1 << 32),
        (U32, -(1 << 31) - 1),
        (RETVAL, 1 << 64),
        (RETVAL, -(1 << 63) - 1),
        (RAW, 1 << 64),
        (RAW, -(1 << 63) - 1),
    ],
)
def test_out_of_range_operands_are_refused_at_bind(domain: Domain, operand: int) -> None:
    for f in (
        ValueFilter.exact(operand),
        ValueFilter.less(operand),
        ValueFilter.bitmask_clear(operand),
        ValueFilter.range(0, operand) if operand > 0 else ValueFilter.range(operand, 0),
    ):
        with pytest.raises(RegistrationError) as info:
            bound(f, domain)
        msg = str(info.value)
        assert "does not fit" in msg and domain.describe() in msg and "test" in msg


@pytest.mark.parametrize(
    ("domain", "low", "high"),
    [
        (S32, 5, 4),
        (S32, 0, -1),
        (S32, 0x7FFFFFFF, 0x80000000),  # INT_MAX .. INT_MIN
        (U32, -1, 0),  # 0xffffffff .. 0
        (RAW, -1, 0),
        (RETVAL, 0, -1),
        (RETVAL, 0, M1),
    ],
)
def test_empty_ranges_are_refused(domain: Domain, low: int, high: int) -> None:
    with pytest.raises(RegistrationError, match=r"range\(.*\) is empty"):
        bound(ValueFilter.range(low, high), domain)


def test_range_is_inclusive() -> None:
    f = bound(ValueFilter.range(10, 20), RAW)
    assert [v for v in range(8, 23) if f.matches(v)] == list(range(10, 21))


@pytest.mark.parametrize(
    "make",
    [
        lambda: ValueFilter.exact("3"),
        lambda: ValueFilter.exact(3.0),
        lambda: ValueFilter.exact(True),
        lambda: ValueFilter.exact(None),
        lambda: ValueFilter.not_equal(b"x"),
        lambda: ValueFilter.greater(1.5),
        lambda: ValueFilter.range(0, 2.5),
        lambda: ValueFilter.range("0", 2),
        lambda: ValueFilter.bitmask_set(False),
        lambda: ValueFilter.string_exact(3),
        lambda: ValueFilter.string_contains(None),
        lambda: ValueFilter.string_startswith(["/etc"]),
    ],
)
def test_wrong_operand_types_are_refused(make: object) -> None:
    with pytest.raises(RegistrationError, match=r"ValueFilter\.\w+ takes"):
        make()  # type: ignore[operator]


# -- strings ---------------------------------------------------------------------


def test_string_filters_need_a_pointer() -> None:
    for f in (
        ValueFilter.string_exact("x"),
        ValueFilter.string_contains("x"),
        ValueFilter.string_startswith("x"),
        ValueFilter.string_endswith("x"),
    ):
        with pytest.raises(RegistrationError, match="needs a pointer argument"):
            f.bind(U32, "ioctl cmd", pointer=False)
        with pytest.raises(RegistrationError, match="needs a pointer argument"):
            f.bind(RETVAL, "return value", pointer=False)
        assert f.bind(RAW, "openat filename", pointer=True).is_string


def test_string_length_limit() -> None:
    assert STRING_MAX == 103
    ok = ValueFilter.string_exact("a" * STRING_MAX)
    assert ok.text == b"a" * STRING_MAX
    for make in (
        ValueFilter.string_exact,
        ValueFilter.string_contains,
        ValueFilter.string_startswith,
        ValueFilter.string_endswith,
    ):
        with pytest.raises(RegistrationError, match=f"longer than the {STRING_MAX}"):
            make("a" * (STRING_MAX + 1))
        # the limit is in bytes: 52 two-byte characters are 104 bytes
        with pytest.raises(RegistrationError, match="104 bytes"):
            make("é" * 52)
        with pytest.raises(RegistrationError, match="NUL"):
            make("a\0b")


@pytest.mark.parametrize(
    ("f", "s", "expected"),
    [
        (ValueFilter.string_exact("/etc/passwd"), b"/etc/passwd", True),
        (ValueFilter.string_exact("/etc/passwd"), b"/etc/passwd2", False),
        (ValueFilter.string_exact("/etc/passwd"), b"/etc/passw", False),
        (ValueFilter.string_exact(b"/etc/passwd"), b"/etc/passwd", True),
        (ValueFilter.string_exact(""), b"", True),
        (ValueFilter.string_exact(""), b"x", False),
        (ValueFilter.string_contains("shadow"), b"/etc/shadow", True),
        (ValueFilter.string_contains("shadow"), b"/etc/shado", False),
        (ValueFilter.string_contains(""), b"anything", True),
        (ValueFilter.string_startswith("/etc/"), b"/etc/hosts", True),
        (ValueFilter.string_startswith("/etc/"), b"/etc", False),
        (ValueFilter.string_startswith("/etc/"), b"/tmp/etc/", False),
        (ValueFilter.string_endswith(".so"), b"/lib/libc.so", True),
        (ValueFilter.string_endswith(".so"), b"/lib/libc.so.6", False),
        (ValueFilter.string_endswith("é"), "café".encode(), True),
    ],
)
def test_string_matches(f: ValueFilter, s: bytes, expected: bool) -> None:
    assert f.bind(RAW, "test", pointer=True).matches_string(s) is expected


# -- what the guest is sent ---------------------------------------------------------


FK = FilterKind


@pytest.mark.parametrize(
    ("f", "domain", "expected"),
    [
        (ValueFilter.exact(0xFFFFFF9C), S32, (FK.EXACT, -100, 0, b"")),
        (ValueFilter.exact(-1), U32, (FK.EXACT, 0xFFFFFFFF, 0, b"")),
        (ValueFilter.not_equal(M1), RETVAL, (FK.NOT_EQUAL, -1, 0, b"")),
        (ValueFilter.greater(-1), RAW, (FK.GREATER, M1, 0, b"")),
        (ValueFilter.greater_equal(1), S64, (FK.GREATER_EQUAL, 1, 0, b"")),
        (ValueFilter.less(2), S32, (FK.LESS, 2, 0, b"")),
        (ValueFilter.less_equal(3), U32, (FK.LESS_EQUAL, 3, 0, b"")),
        (ValueFilter.range(-5, 0xFFFFFFFF), S32, (FK.RANGE, -5, -1, b"")),
        (ValueFilter.success(), RETVAL, (FK.SUCCESS, 0, 0, b"")),
        (ValueFilter.error(), RETVAL, (FK.ERROR, 0, 0, b"")),
        (ValueFilter.bitmask_set(0x41), S32, (FK.BITMASK_SET, 0x41, 0, b"")),
        (ValueFilter.bitmask_clear(-1), RAW, (FK.BITMASK_CLEAR, M1, 0, b"")),
        (ValueFilter.string_exact("a"), RAW, (FK.STR_EXACT, 0, 0, b"a")),
        (ValueFilter.string_contains("b"), RAW, (FK.STR_CONTAINS, 0, 0, b"b")),
        (ValueFilter.string_startswith("c"), RAW, (FK.STR_STARTSWITH, 0, 0, b"c")),
        (ValueFilter.string_endswith("d"), RAW, (FK.STR_ENDSWITH, 0, 0, b"d")),
    ],
)
def test_guest_filter_has_kind_width_and_sign(
    f: ValueFilter, domain: Domain, expected: tuple[FilterKind, int, int, bytes]
) -> None:
    kind, a, b, text = expected
    got = f.bind(domain, "test", pointer=f.kind.is_string).guest()
    assert got == GuestFilter(kind, a, b, text, width=domain.width, signed=domain.signed)


# -- property: BoundFilter.matches against a direct reading of the rule ----------------


def _as_type(x: int, width: int, signed: bool) -> int:
    x &= (1 << width) - 1
    if signed and x >= 1 << (width - 1):
        x -= 1 << width
    return x


def _reference(kind: FilterKind, a: int, b: int, raw: int, width: int, signed: bool) -> bool:
    v, a, b = _as_type(raw, width, signed), _as_type(a, width, signed), _as_type(b, width, signed)
    sign = _as_type(raw, width, True)
    bits, mask = raw % (1 << width), a % (1 << width)
    return {
        FilterKind.EXACT: v == a,
        FilterKind.NOT_EQUAL: v != a,
        FilterKind.GREATER: v > a,
        FilterKind.GREATER_EQUAL: v >= a,
        FilterKind.LESS: v < a,
        FilterKind.LESS_EQUAL: v <= a,
        FilterKind.RANGE: a <= v <= b,
        FilterKind.SUCCESS: sign >= 0,
        FilterKind.ERROR: sign < 0,
        FilterKind.BITMASK_SET: bits & mask == mask,
        FilterKind.BITMASK_CLEAR: bits & mask == 0,
    }[kind]


DOMAINS = [S32, U32, S64, RAW, RETVAL]
NUMERIC = [k for k in FilterKind if not k.is_string]
RAW64 = st.one_of(
    st.integers(0, M1),
    st.sampled_from([Z, M1, MAX, MIN, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 0xFFFFFFFF_00000000]),
)


@st.composite
def filters(draw: st.DrawFn) -> tuple[Domain, FilterKind, int, int]:
    domain = draw(st.sampled_from(DOMAINS))
    kind = draw(st.sampled_from(NUMERIC))
    low, high = -(1 << (domain.width - 1)), domain.mask
    special = st.sampled_from([0, -1, 1, low, high, domain.mask >> 1, (domain.mask >> 1) + 1])
    operand = st.one_of(st.integers(low, high), special)
    return domain, kind, draw(operand), draw(operand)


@given(filters(), RAW64)
def test_matches_agrees_with_the_rule(spec: tuple[Domain, FilterKind, int, int], raw: int) -> None:
    domain, kind, a, b = spec
    f = ValueFilter(kind, a, b if kind is FilterKind.RANGE else 0)
    try:
        bf = f.bind(domain, "prop", pointer=False)
    except RegistrationError:
        assert kind is FilterKind.RANGE
        assert _as_type(a, domain.width, domain.signed) > _as_type(b, domain.width, domain.signed)
        return
    assert bf.matches(raw) == _reference(kind, a, b, raw, domain.width, domain.signed)
    # the operand's other spelling (signed <-> unsigned) is the same filter
    if a < 0 or a > domain.mask >> 1:
        other = a + (1 << domain.width) if a < 0 else a - (1 << domain.width)
        twin = ValueFilter(kind, other, f.b).bind(domain, "prop", pointer=False)
        assert twin.matches(raw) == bf.matches(raw)
        assert twin.guest() == bf.guest()


@given(filters())
def test_out_of_width_operands_always_refused(spec: tuple[Domain, FilterKind, int, int]) -> None:
    domain, kind, a, _ = spec
    too_big = ValueFilter(kind, a + (1 << domain.width) if a >= 0 else a - (1 << domain.width))
    if kind in (FilterKind.SUCCESS, FilterKind.ERROR):
        return  # no operand
    with pytest.raises(RegistrationError, match="does not fit"):
        too_big.bind(domain, "prop", pointer=False)


def test_one_filter_kind_enum_from_the_abi() -> None:
    import syscalls_async.syscalls.filters as filters

    assert not hasattr(filters, "Kind") and not hasattr(filters, "_GUEST_KIND")
    for kind in FilterKind:  # every kind of the ABI has its ValueFilter builder, by its label
        assert callable(getattr(ValueFilter, kind.label))
    assert ValueFilter.string_endswith("x").kind is FilterKind.STR_ENDSWITH
    assert ValueFilter.range(1, 2).kind is FilterKind.RANGE
