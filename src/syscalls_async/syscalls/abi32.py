"""32-bit syscall ABIs: a prototype's arguments over 32-bit register words.

On a 32-bit guest every argument register is one 32-bit word, and a 64-bit
argument (``loff_t pos`` of ``pread64``, ``u64 mask`` of ``fanotify_mark``)
takes two of them.  ARM EABI and MIPS o32 put such a pair at an even word
index, leaving a word of padding before it when needed (``pread64(fd, buf,
count, pos)``: fd r0, buf r1, count r2, padding r3, pos r4:r5); the low half
comes first on a little-endian guest, the high half on a big-endian one.
Arguments after a pair move up by the padding (``readahead(fd, offset,
count)``: count is in r4).  Syscalls that take explicit halves
(``_llseek``'s ``offset_high``, ``offset_low``) are plain 32-bit words.

:func:`layout` turns a prototype's types into an :class:`ArgLayout` (which
words each argument occupies) for an :class:`~syscalls_async.portal.arch.ArchInfo`;
the layout joins the event's register words into the prototype's arguments
(one 64-bit value for a pair) and splits a rewritten argument back into the
words the guest changes.  On 64-bit ABIs there is no layout: argument ``i``
is register ``i``.

Types are 32-bit on these ABIs where they are ``long`` on x86_64 (``long``,
``off_t``, ``ssize_t``, ``time_t``): :func:`domain_of_word` says how a
one-word argument reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ..errors import InvalidValue
from ..portal.arch import ArchInfo

if TYPE_CHECKING:
    from .prototypes import Domain

T = TypeVar("T")

#: types of 64 bits on every ABI: a register pair on a 32-bit one
WIDE_SIGNED = frozenset({
    "loff_t", "long long", "signed long long", "long long int", "s64", "__s64",
    "__kernel_loff_t", "off64_t", "int64_t",
})  # fmt: skip
WIDE_UNSIGNED = frozenset({
    "unsigned long long", "unsigned long long int", "u64", "__u64", "__aligned_u64",
    "uint64_t",
})  # fmt: skip
#: types that are ``long`` underneath: 32-bit signed on a 32-bit ABI
LONG_SIGNED = frozenset({
    "long", "signed long", "long int", "off_t", "__kernel_off_t", "ssize_t",
    "__kernel_ssize_t", "time_t", "__kernel_old_time_t", "clock_t", "__kernel_clock_t",
})  # fmt: skip

#: how many argument registers a syscall has (ARM r0-r5, MIPS a0-a3 and the
#: two stack words the module copies)
ARG_WORDS = 6


def _plain(ctype: str) -> str:
    words = [w for w in ctype.replace("__user", "").split() if w not in ("const", "volatile")]
    return " ".join(words)


def is_wide(ctype: str) -> bool:
    """Whether an argument of C type ``ctype`` is 64 bits on a 32-bit ABI."""
    return "*" not in ctype and _plain(ctype) in WIDE_SIGNED | WIDE_UNSIGNED


def domain_of_word(ctype: str, word_bits: int) -> Domain:
    """How an argument of ``ctype`` reads on an ABI with ``word_bits``-bit
    registers; a 64-bit type's domain is 64 bits (the joined pair)."""
    from .prototypes import Domain, domain_of  # prototypes builds on this module

    if word_bits == 64:
        return domain_of(ctype)
    t = _plain(ctype)
    if "*" in ctype:
        return Domain(word_bits, False)
    if t in WIDE_SIGNED:
        return Domain(64, True)
    if t in WIDE_UNSIGNED:
        return Domain(64, False)
    if t in LONG_SIGNED:
        return Domain(word_bits, True)
    d = domain_of(ctype)
    return d if d.width <= word_bits else Domain(word_bits, d.signed)


@dataclass(frozen=True)
class ArgLayout:
    """Which register words each of a prototype's arguments occupies.

    ``slots[i]`` is argument ``i``'s word indices in register order: one
    word, two for a 64-bit argument (low half first when ``big_endian`` is
    false), or none when it lies beyond the argument registers.
    """

    slots: tuple[tuple[int, ...], ...]
    word_bits: int = 32
    big_endian: bool = False

    @property
    def word_mask(self) -> int:
        return (1 << self.word_bits) - 1

    def owner(self, word: int) -> int | None:
        """The argument that occupies register word ``word`` (None: padding or
        beyond the prototype)."""
        for i, slot in enumerate(self.slots):
            if word in slot:
                return i
        return None

    def free(self, index: int) -> int | None:
        """Argument ``index`` beyond the prototype's: the register word of
        the same index if no argument occupies it (what all-syscall code
        sees as ``args[index]``), else None."""
        if index < len(self.slots) or index >= ARG_WORDS or self.owner(index) is not None:
            return None
        return index

    def join(self, words: Sequence[int]) -> list[int]:
        """The ``ARG_WORDS`` argument values of these register words: the
        prototype's arguments (a pair joined into one unsigned 64-bit
        value), then the free words beyond them, 0 where there is none."""
        m = self.word_mask
        out = []
        for slot in self.slots:
            if len(slot) == 2:
                lo, hi = (slot[1], slot[0]) if self.big_endian else slot
                out.append((words[lo] & m) | (words[hi] & m) << self.word_bits)
            elif slot:
                out.append(words[slot[0]] & m)
            else:
                out.append(0)
        for i in range(len(out), ARG_WORDS):
            j = self.free(i)
            out.append(0 if j is None else words[j] & m)
        return out

    def per_argument(self, per_word: Sequence[T | None]) -> tuple[T | None, ...]:
        """What ``per_word`` holds for each register word, per argument: the
        prototype's arguments (None for a pair), then the free words beyond
        them; ``ARG_WORDS`` items.  The guest's captured strings come per
        register word; ``syscall.strings[i]`` is argument ``i``'s."""

        def at(word: int | None) -> T | None:
            return per_word[word] if word is not None and word < len(per_word) else None

        out = [at(slot[0]) if len(slot) == 1 else None for slot in self.slots]
        out += [at(self.free(i)) for i in range(len(out), ARG_WORDS)]
        return tuple(out)

    def width(self, index: int) -> int:
        """Bits of argument ``index`` (0: it is in no register)."""
        if index < len(self.slots):
            return self.word_bits * len(self.slots[index])
        return self.word_bits if self.free(index) is not None else 0

    def split(self, index: int, value: int) -> tuple[tuple[int, int], ...]:
        """The (word index, word value) pairs that put ``value`` (unsigned,
        within :meth:`width` bits) into argument ``index``'s registers."""
        m, bits = self.word_mask, self.word_bits
        if index >= len(self.slots):
            j = self.free(index)
            return () if j is None else ((j, value & m),)
        slot = self.slots[index]
        if len(slot) == 2:
            lo, hi = (slot[1], slot[0]) if self.big_endian else slot
            return tuple(sorted(((lo, value & m), (hi, (value >> bits) & m))))
        return tuple((j, value & m) for j in slot)

    def with_word(self, values: Sequence[int], word: int, word_value: int) -> tuple[int, int]:
        """Register word ``word`` set to ``word_value``: (argument index, its
        new value), for a write to one register of a pair. :class:`InvalidValue`
        if no argument occupies the word."""
        i = self.owner(word)
        if i is None:
            i = word if self.free(word) is not None else None
        if i is None:
            raise InvalidValue(f"register word {word} holds no argument")
        m, bits = self.word_mask, self.word_bits
        slot = self.slots[i] if i < len(self.slots) else (word,)
        if len(slot) != 2:
            return i, word_value & m
        lo = slot[1] if self.big_endian else slot[0]
        v = values[i]
        if word == lo:
            return i, (v & (m << bits)) | (word_value & m)
        return i, (v & m) | (word_value & m) << bits


def layout(types: Sequence[str], arch: ArchInfo) -> ArgLayout | None:
    """The register words of a prototype's arguments on ``arch``; None on a
    64-bit ABI (argument ``i`` is register ``i``)."""
    if arch.word_size == 8:
        return None
    slots: list[tuple[int, ...]] = []
    word = 0
    for t in types:
        if is_wide(t):
            if arch.pair_align and word % 2:
                word += 1  # the padding word before an aligned pair
            slot: tuple[int, ...] = (word, word + 1)
            word += 2
        else:
            slot = (word,)
            word += 1
        slots.append(slot if slot[-1] < ARG_WORDS else ())
    return ArgLayout(tuple(slots), word_bits=8 * arch.word_size, big_endian=arch.byteorder == "big")


#: prototypes the kernel's metadata gets wrong for an architecture: (arch,
#: short name) -> (types, names) as the entry really takes them. ARM's
#: arm_fadvise64_64 reorders fadvise64_64's arguments so that both 64-bit
#: ones fall on aligned pairs, but ftrace matches it to fadvise64_64's
#: metadata (fd, offset, len, advice).
FIXED_PROTOTYPES: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("armhf", "fadvise64_64"): (
        ("int", "int", "loff_t", "loff_t"),
        ("fd", "advice", "offset", "len"),
    ),
}
