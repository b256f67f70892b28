"""``ValueFilter``: conditions on syscall arguments and return values.

A filter is checked twice: in the guest (to save round trips) and on the
host, which is the authority.  Values are compared as their C type (see
:mod:`.prototypes`); an operand may be written signed or unsigned within the
type's width, so ``ValueFilter.exact(-1)`` and ``ValueFilter.exact(0xffffffff)``
are the same filter on an ``int`` argument, and ``exact(-100)`` matches
``AT_FDCWD``.  An operand that does not fit the type is refused at
registration.

Example::

    ValueFilter.range(0x1000, 0x2000)      # inclusive
    ValueFilter.bitmask_set(0x1)           # all these bits set
    ValueFilter.string_startswith("/etc/") # for pointer arguments
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import RegistrationError
from ..portal.abi import FILTER_STRING_MAX as STRING_MAX
from ..portal.abi import C
from ..portal.hooks import FilterKind, GuestFilter
from .prototypes import Domain

#: the guest compares at most this many bytes of a string argument
STRING_READ = C.SA_FILTER_STR_READ


def _int(v: object, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise RegistrationError(f"ValueFilter.{what} takes an int, not {type(v).__name__} {v!r}")
    return v


def _text(v: object, what: str) -> bytes:
    if isinstance(v, str):
        b = v.encode()
    elif isinstance(v, bytes):
        b = v
    else:
        raise RegistrationError(f"ValueFilter.{what} takes a str or bytes, not {type(v).__name__}")
    if len(b) > STRING_MAX:
        raise RegistrationError(
            f"ValueFilter.{what}: {len(b)} bytes is longer than the {STRING_MAX} the guest keeps"
        )
    if b"\0" in b:
        raise RegistrationError(f"ValueFilter.{what}: a C string cannot contain NUL")
    return b


@dataclass(frozen=True)
class ValueFilter:
    """One condition on a value.  Build it with the class methods."""

    kind: FilterKind
    a: int = 0
    b: int = 0
    text: bytes = b""

    @classmethod
    def exact(cls, value: int) -> ValueFilter:
        return cls(FilterKind.EXACT, _int(value, "exact"))

    @classmethod
    def not_equal(cls, value: int) -> ValueFilter:
        return cls(FilterKind.NOT_EQUAL, _int(value, "not_equal"))

    @classmethod
    def greater(cls, value: int) -> ValueFilter:
        return cls(FilterKind.GREATER, _int(value, "greater"))

    @classmethod
    def greater_equal(cls, value: int) -> ValueFilter:
        return cls(FilterKind.GREATER_EQUAL, _int(value, "greater_equal"))

    @classmethod
    def less(cls, value: int) -> ValueFilter:
        return cls(FilterKind.LESS, _int(value, "less"))

    @classmethod
    def less_equal(cls, value: int) -> ValueFilter:
        return cls(FilterKind.LESS_EQUAL, _int(value, "less_equal"))

    @classmethod
    def range(cls, low: int, high: int) -> ValueFilter:
        """``low <= value <= high``."""
        return cls(FilterKind.RANGE, _int(low, "range"), _int(high, "range"))

    @classmethod
    def success(cls) -> ValueFilter:
        """``value >= 0`` (for return values)."""
        return cls(FilterKind.SUCCESS)

    @classmethod
    def error(cls) -> ValueFilter:
        """``value < 0`` (for return values: ``-errno``)."""
        return cls(FilterKind.ERROR)

    @classmethod
    def bitmask_set(cls, mask: int) -> ValueFilter:
        """All bits of ``mask`` are set."""
        return cls(FilterKind.BITMASK_SET, _int(mask, "bitmask_set"))

    @classmethod
    def bitmask_clear(cls, mask: int) -> ValueFilter:
        """All bits of ``mask`` are clear."""
        return cls(FilterKind.BITMASK_CLEAR, _int(mask, "bitmask_clear"))

    @classmethod
    def string_exact(cls, text: str | bytes) -> ValueFilter:
        """The argument points to exactly this string."""
        return cls(FilterKind.STR_EXACT, text=_text(text, "string_exact"))

    @classmethod
    def string_contains(cls, text: str | bytes) -> ValueFilter:
        return cls(FilterKind.STR_CONTAINS, text=_text(text, "string_contains"))

    @classmethod
    def string_startswith(cls, text: str | bytes) -> ValueFilter:
        return cls(FilterKind.STR_STARTSWITH, text=_text(text, "string_startswith"))

    @classmethod
    def string_endswith(cls, text: str | bytes) -> ValueFilter:
        return cls(FilterKind.STR_ENDSWITH, text=_text(text, "string_endswith"))

    def bind(self, domain: Domain, where: str, *, pointer: bool) -> BoundFilter:
        """Check this filter against the value's type and fix its operands."""
        if self.kind.is_string and not pointer:
            raise RegistrationError(
                f"{where}: ValueFilter.{self.kind.label} (what a plain str filter means: "
                f"string_startswith) needs a pointer argument, but this one is a "
                f"{domain.describe()} value"
            )
        operands = (self.a, self.b) if self.kind is FilterKind.RANGE else (self.a,)
        for v in operands:
            if not domain.accepts(v):
                raise RegistrationError(
                    f"{where}: {v:#x} does not fit a {domain.describe()} value "
                    f"(allowed {-(1 << (domain.width - 1)):#x} .. {domain.mask:#x})"
                )
        a, b = domain.value(self.a), domain.value(self.b)
        if self.kind is FilterKind.RANGE and a > b:
            raise RegistrationError(f"{where}: range({self.a:#x}, {self.b:#x}) is empty")
        return BoundFilter(self, domain, a, b)


def coerce(value: object, where: str) -> ValueFilter | None:
    """An ``arg_filters``/``retval_filter`` entry: None, a ValueFilter, a plain int
    (``exact``) or a plain str (``string_startswith``, for pointer arguments)."""
    if value is None or isinstance(value, ValueFilter):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return ValueFilter.exact(value)
    if isinstance(value, str):
        return ValueFilter.string_startswith(value)
    raise RegistrationError(
        f"{where}: expected None, an int or a ValueFilter, not {type(value).__name__} "
        f"{value!r} (a plain str also works: it means string_startswith)"
    )


@dataclass(frozen=True)
class BoundFilter:
    """A filter fixed to its value's type: evaluated on the host, encoded for the guest."""

    filter: ValueFilter
    domain: Domain
    a: int
    b: int

    @property
    def is_string(self) -> bool:
        return self.filter.kind.is_string

    def matches(self, raw: int) -> bool:
        """The host's check of a numeric filter on the raw register ``raw``."""
        v = self.domain.value(raw)
        k = self.filter.kind
        if k is FilterKind.EXACT:
            return v == self.a
        if k is FilterKind.NOT_EQUAL:
            return v != self.a
        if k is FilterKind.GREATER:
            return v > self.a
        if k is FilterKind.GREATER_EQUAL:
            return v >= self.a
        if k is FilterKind.LESS:
            return v < self.a
        if k is FilterKind.LESS_EQUAL:
            return v <= self.a
        if k is FilterKind.RANGE:
            return self.a <= v <= self.b
        if k in (FilterKind.SUCCESS, FilterKind.ERROR):
            # a sign test reads the value as signed whatever its C type, like the guest
            sv = Domain(self.domain.width, True).value(raw)
            return sv >= 0 if k is FilterKind.SUCCESS else sv < 0
        bits, mask = raw & self.domain.mask, self.a & self.domain.mask
        if k is FilterKind.BITMASK_SET:
            return bits & mask == mask
        if k is FilterKind.BITMASK_CLEAR:
            return bits & mask == 0
        raise AssertionError(f"string filter {k} needs matches_string")

    def matches_string(self, s: bytes) -> bool:
        """The host's check of a string filter on the (at most STRING_READ) bytes read."""
        t, k = self.filter.text, self.filter.kind
        if k is FilterKind.STR_EXACT:
            return s == t
        if k is FilterKind.STR_CONTAINS:
            return t in s
        if k is FilterKind.STR_STARTSWITH:
            return s.startswith(t)
        return s.endswith(t)

    def guest(self) -> GuestFilter:
        return GuestFilter(
            kind=self.filter.kind,
            a=self.a,
            b=self.b,
            text=self.filter.text,
            width=self.domain.width,
            signed=self.domain.signed,
        )
