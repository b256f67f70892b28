"""Syscall prototypes and how each argument type is compared.

The prototypes come from the guest kernel's own syscall metadata (the portal
sends it when the module loads).  The comparison rule for filters and for the
values handed to handlers: an argument is taken as its C type -- ``int fd``
is a 32-bit signed value whatever the upper register bits hold, ``unsigned
int`` 32-bit unsigned, ``long``/``off_t`` 64-bit signed -- while pointers,
sizes and anything unrecognised are 64-bit unsigned.  Return values are
64-bit signed.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import msgspec

from ..errors import InvalidValue
from ..portal.arch import X86_64, ArchInfo
from ..portal.types import SyscallMeta
from .abi32 import FIXED_PROTOTYPES, ArgLayout, domain_of_word, layout
from .names import normalize, unknown_name

_SIGNED32 = {
    "int",
    "signed int",
    "pid_t",
    "key_serial_t",
    "clockid_t",
    "timer_t",
    "mqd_t",
    "rwf_t",
    "s32",
    "__s32",
    "key_t",
}
_UNSIGNED32 = {
    "unsigned int",
    "unsigned",
    "u32",
    "__u32",
    "uid_t",
    "gid_t",
    "old_uid_t",
    "old_gid_t",
    "umode_t",
    "mode_t",
    "qid_t",
    "unsigned short",
    "u16",
    "__u16",
}
_SIGNED64 = {
    "long",
    "signed long",
    "long long",
    "off_t",
    "loff_t",
    "ssize_t",
    "time_t",
    "__kernel_old_time_t",
    "s64",
    "__s64",
}


@dataclass(frozen=True)
class Domain:
    """How a register value is read: ``width`` bits, signed or not."""

    width: int
    signed: bool

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    def value(self, raw: int) -> int:
        """The register ``raw`` as this C type."""
        v = raw & self.mask
        if self.signed and v >> (self.width - 1):
            v -= 1 << self.width
        return v

    def accepts(self, operand: int) -> bool:
        """Operands may be written signed or unsigned, within ``width`` bits."""
        return -(1 << (self.width - 1)) <= operand <= self.mask

    def describe(self) -> str:
        return f"{'signed' if self.signed else 'unsigned'} {self.width}-bit"


RAW = Domain(64, False)
RETVAL = Domain(64, True)


def normalize_type(ctype: str) -> str:
    """``ctype`` without qualifiers (``const``, ``volatile``, ``__user``)."""
    words = [w for w in ctype.replace("__user", "").split() if w not in ("const", "volatile")]
    return " ".join(words)


def domain_of(ctype: str) -> Domain:
    """The comparison domain of an argument declared as ``ctype`` (64-bit ABIs;
    32-bit ones: :func:`~.abi32.domain_of_word`)."""
    if "*" in ctype:
        return RAW
    t = normalize_type(ctype)
    if t in _SIGNED32:
        return Domain(32, True)
    if t in _UNSIGNED32:
        return Domain(32, False)
    if t in _SIGNED64:
        return Domain(64, True)
    return RAW


def is_pointer(ctype: str) -> bool:
    return "*" in ctype


class SyscallPrototype(msgspec.Struct, frozen=True):
    """A syscall's metadata: ``name`` (``sys_openat``), ``nr``, ``nargs``, ``types``, ``names``.

    ``known`` is False for syscalls the kernel has no metadata for; those reach
    ``on_unknown_sys_*`` hooks and have no argument names or types.

    ``truncated`` is True when the guest had to cut a name or type to fit the
    portal's metadata table: ``name``, ``types`` or ``names`` may then be
    incomplete (registering a hook on such a syscall logs a warning once).
    ``hookable`` is False for a syscall the guest module cannot hook (its
    entry is not traceable): a hook on it would never fire, so registering one
    is refused.

    On a 32-bit guest ``word_bits`` is 32 and ``slots`` says which register
    words each argument occupies (two for a 64-bit argument, see
    :mod:`.abi32`); on a 64-bit one ``slots`` is empty: argument ``i`` is
    register ``i``.

    This is the syscalls layer's prototype, what handlers get as ``proto`` and
    what ``prototypes.json`` caches.  The portal decodes the guest's table into
    :class:`~syscalls_async.portal.SyscallMeta` (the same facts as sent, for code
    on the bare portal, which must not import this layer); :meth:`PrototypeTable.from_meta`
    carries every one of them over.
    """

    name: str
    nr: int
    nargs: int
    types: tuple[str, ...]
    names: tuple[str, ...]
    known: bool = True
    truncated: bool = False
    hookable: bool = True
    word_bits: int = 64
    slots: tuple[tuple[int, ...], ...] = ()
    big_endian: bool = False

    @property
    def short_name(self) -> str:
        return normalize(self.name)

    @property
    def layout(self) -> ArgLayout | None:
        """Which register words hold which argument (32-bit guests), else None."""
        if self.word_bits == 64:
            return None
        return _layout(self.slots, self.word_bits, self.big_endian)

    def domain(self, index: int) -> Domain:
        if index >= len(self.types):
            return RAW
        if self.word_bits == 64:
            return domain_of(self.types[index])
        return domain_of_word(self.types[index], self.word_bits)


@functools.cache
def _layout(slots: tuple[tuple[int, ...], ...], word_bits: int, big_endian: bool) -> ArgLayout:
    return ArgLayout(slots, word_bits, big_endian)


class PrototypeTable:
    """All of a guest kernel's syscalls, by number and by normalized name."""

    def __init__(self, protos: Iterable[SyscallPrototype]) -> None:
        self._by_nr: dict[int, SyscallPrototype] = {}
        self._by_name: dict[str, SyscallPrototype] = {}
        for p in protos:
            self._by_nr[p.nr] = p
            if p.known:
                self._by_name.setdefault(p.short_name, p)

    @classmethod
    def from_meta(cls, metas: Iterable[SyscallMeta], arch: ArchInfo = X86_64) -> PrototypeTable:
        """The guest's table; on a 32-bit ``arch`` each prototype also says
        which register words its arguments occupy (:mod:`.abi32`)."""
        return cls(_from_meta(m, arch) for m in metas)

    def __len__(self) -> int:
        return len(self._by_nr)

    def __contains__(self, nr: object) -> bool:
        """Whether ``nr`` is in the guest's table (numbers beyond it exist too)."""
        return nr in self._by_nr

    def by_name(self, name: str) -> SyscallPrototype | None:
        return self._by_name.get(normalize(name))

    def by_nr(self, nr: int) -> SyscallPrototype:
        proto = self._by_nr.get(nr)
        if proto is None:
            return SyscallPrototype(unknown_name(nr), nr, 0, (), (), known=False)
        return proto

    def close_matches(self, name: str) -> list[str]:
        return difflib.get_close_matches(normalize(name), list(self._by_name), n=4, cutoff=0.6)

    def __iter__(self) -> Iterator[SyscallPrototype]:
        return iter(self._by_nr.values())


def _from_meta(m: SyscallMeta, arch: ArchInfo) -> SyscallPrototype:
    name = m.name if m.known else unknown_name(m.nr)
    types, names = m.types, m.names
    fixed = FIXED_PROTOTYPES.get((arch.name, normalize(name))) if m.known else None
    if fixed is not None:
        types, names = fixed
    lay = layout(types, arch)
    return SyscallPrototype(
        name,
        m.nr,
        len(types) if fixed else m.nargs,
        types,
        names,
        m.known,
        m.truncated,
        m.hookable,
        word_bits=8 * arch.word_size,
        slots=lay.slots if lay is not None else (),
        big_endian=arch.byteorder == "big",
    )


def syscall_nr(metas: Iterable[SyscallMeta], name: str) -> int:
    """The number of syscall ``name`` (``ioctl``, ``sys_ioctl``, ...: any spelling
    :func:`~.names.normalize` accepts) in a guest's metadata, for code that uses the
    bare portal (the portal itself knows no names but the guest's)::

        await portal.set_hooks([HookSpec(id=1, nr=syscall_nr(portal.syscalls, "ioctl"))])
    """
    table = PrototypeTable.from_meta(metas)
    proto = table.by_name(name)
    if proto is None:
        close = table.close_matches(name)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InvalidValue(f"no syscall {name!r} in the guest's metadata{hint}")
    return proto.nr
