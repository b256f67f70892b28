"""Hook table entries as the host writes them for the guest's prefilters."""

from __future__ import annotations

import enum
from collections.abc import Sequence

import msgspec

from ..errors import InvalidValue
from .abi import COMM_MAX, FILTER_STRING_MAX, MASK64, C, ffi

#: ``HookSpec.nr`` values that are not syscall numbers.
NR_ALL: int = C.SA_NR_ALL
NR_UNKNOWN: int = C.SA_NR_UNKNOWN
#: ``HookSpec.nr`` / ``nr32``: the syscall has no number in that ABI's table
NR_NONE: int = C.SA_NR_NONE


class FilterKind(enum.IntEnum):
    """What a value filter tests; the values are the ABI's ``SA_F_*``.

    The one enum of filter kinds: ``ValueFilter`` (``syscalls/``) builds them too.
    """

    EXACT = C.SA_F_EXACT
    NOT_EQUAL = C.SA_F_NOT_EQUAL
    GREATER = C.SA_F_GREATER
    GREATER_EQUAL = C.SA_F_GREATER_EQUAL
    LESS = C.SA_F_LESS
    LESS_EQUAL = C.SA_F_LESS_EQUAL
    RANGE = C.SA_F_RANGE
    SUCCESS = C.SA_F_SUCCESS
    ERROR = C.SA_F_ERROR
    BITMASK_SET = C.SA_F_BITMASK_SET
    BITMASK_CLEAR = C.SA_F_BITMASK_CLEAR
    STR_EXACT = C.SA_F_STR_EXACT
    STR_CONTAINS = C.SA_F_STR_CONTAINS
    STR_STARTSWITH = C.SA_F_STR_STARTSWITH
    STR_ENDSWITH = C.SA_F_STR_ENDSWITH

    @property
    def is_string(self) -> bool:
        return self >= FilterKind.STR_EXACT

    @property
    def label(self) -> str:
        """The kind as users spell it (``exact``, ``string_startswith``)."""
        name = self.name.lower()
        return "string_" + name[4:] if self.is_string else name


class GuestFilter(msgspec.Struct, frozen=True):
    """One value filter as the guest evaluates it.

    ``width`` (32 or 64) and ``signed`` say how the register is compared: an
    ``int`` argument is 32-bit signed whatever its upper register bits hold;
    pointers and sizes are unsigned 64-bit; return values signed 64-bit.
    String kinds compare ``text`` with the NUL-terminated string the argument
    points to (at most ``SA_FILTER_STR_READ`` bytes of it are read).
    """

    kind: FilterKind
    a: int = 0
    b: int = 0
    text: bytes = b""
    width: int = 64
    signed: bool = False


class HookSpec(msgspec.Struct, frozen=True):
    """One hook table entry.  ``nr`` is a syscall number, NR_ALL or NR_UNKNOWN
    (which match calls of every ABI), or NR_NONE.  ``nr32`` is the same
    syscall's number in the guest's compat ABI (x86_64: ia32, 32-bit
    programs), NR_NONE if it is not hooked there.

    ``pid`` filters on the process id (tgid); ``comm`` is exact, at most 15
    bytes.  ``args[i]`` filters argument ``i`` (``None``: any).  ``observe``:
    the guest task does not wait; the event goes into a ring.
    """

    id: int
    nr: int
    enter: bool = True
    ret: bool = False
    enabled: bool = True
    comm: str | None = None
    pid: int | None = None
    args: tuple[GuestFilter | None, ...] = ()
    retval: GuestFilter | None = None
    observe: bool = False
    nr32: int = NR_NONE


def _encode_filter(dst: object, f: GuestFilter | None) -> None:
    if f is None:
        return
    if f.width not in (32, 64):
        raise InvalidValue(f"filter width must be 32 or 64, not {f.width}")
    if len(f.text) > FILTER_STRING_MAX:
        raise InvalidValue(f"filter string longer than {FILTER_STRING_MAX} bytes")
    dst.kind = int(f.kind)  # type: ignore[attr-defined]
    dst.cmp = (C.SA_CMP_SIGNED if f.signed else 0) | (  # type: ignore[attr-defined]
        C.SA_CMP_32 if f.width == 32 else 0
    )
    dst.a = f.a & MASK64  # type: ignore[attr-defined]
    dst.b = f.b & MASK64  # type: ignore[attr-defined]
    dst.str_len = len(f.text)  # type: ignore[attr-defined]
    ffi.memmove(dst.str, f.text, len(f.text))  # type: ignore[attr-defined]


def encode_hooks(hooks: Sequence[HookSpec], nr_base: int = 0) -> bytes:
    """The hook table bytes for ``hooks`` (index in the sequence = table index);
    syscall numbers become the guest's table indices (``ArchInfo.nr_base``)."""
    if len(hooks) > C.SA_MAX_HOOKS:
        raise InvalidValue(f"at most {C.SA_MAX_HOOKS} hooks, not {len(hooks)}")
    table = ffi.new("struct sa_hook[]", max(len(hooks), 1))
    for h, spec in zip(table, hooks, strict=False):
        if (
            spec.nr < C.SA_NR_NONE
            or 0 <= spec.nr < nr_base
            or spec.nr32 < C.SA_NR_NONE
            or spec.nr32 in (NR_ALL, NR_UNKNOWN)
        ):
            raise InvalidValue(
                f"bad syscall numbers {spec.nr}, {spec.nr32}"
                + (f" (this guest's numbers start at {nr_base})" if nr_base else "")
            )
        if spec.nr == NR_NONE and spec.nr32 == NR_NONE:
            raise InvalidValue(f"hook {spec.id} names no syscall number in any ABI")
        if len(spec.args) > C.SA_MAX_ARGS:
            raise InvalidValue(f"at most {C.SA_MAX_ARGS} argument filters")
        h.id = spec.id & 0xFFFFFFFF
        h.nr = spec.nr - nr_base if spec.nr >= 0 else spec.nr
        h.nr32 = spec.nr32
        h.flags = (
            (C.SA_HOOK_ENABLED if spec.enabled else 0)
            | (C.SA_HOOK_ENTER if spec.enter else 0)
            | (C.SA_HOOK_RETURN if spec.ret else 0)
            | (C.SA_HOOK_OBSERVE if spec.observe else 0)
        )
        if spec.pid is not None:
            h.flags |= C.SA_HOOK_PID
            h.pid = spec.pid
        if spec.comm is not None:
            comm = spec.comm.encode()
            if len(comm) > COMM_MAX:
                raise InvalidValue(f"comm filter longer than {COMM_MAX} bytes: {comm!r}")
            h.flags |= C.SA_HOOK_COMM
            ffi.memmove(h.comm, comm, len(comm))
        for i, f in enumerate(spec.args):
            _encode_filter(h.args[i], f)
        if spec.retval is not None and spec.retval.kind.is_string:
            raise InvalidValue("return values have no string filters")
        _encode_filter(h.ret, spec.retval)
    return bytes(ffi.buffer(table))[: len(hooks) * C.SA_HOOK_SIZE]
