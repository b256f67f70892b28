"""32-bit syscall ABIs (``syscalls/abi32.py``): a prototype's arguments over
32-bit register words, 64-bit arguments in (aligned) register pairs, and the
dispatcher presenting and rewriting them as one value.  Host only."""

from __future__ import annotations

import asyncio

import pytest

from syscalls_async.errors import InvalidValue, RegistrationError
from syscalls_async.portal.arch import ARMHF, MIPSEL, X86_64, ArchInfo
from syscalls_async.portal.types import Phase, RawEvent, SyscallMeta
from syscalls_async.syscalls import Dispatcher, Registry, ValueFilter
from syscalls_async.syscalls.abi32 import ArgLayout, domain_of_word, is_wide, layout
from syscalls_async.syscalls.event import Args, Regs, SyscallEvent
from syscalls_async.syscalls.prototypes import Domain, PrototypeTable, SyscallPrototype
from syscalls_async.testing import FakeTrap

#: ARM EABI as the host describes it
ARM = ARMHF
_ARM_REGS = ARMHF.regs

#: a big-endian o32-like ABI (MIPS eb): the high half first
BIG = ArchInfo(
    id=99, name="mipseb", word_size=4, byteorder="big", regs=("a0",),
    arg_regs=("a0", "a1", "a2", "a3", "arg4", "arg5"), nr_reg="v0", ret_reg="v0",
    pc_reg="epc", sp_reg="sp", symbol_prefix="sys_", pair_align=True,
)  # fmt: skip
#: 32-bit without pair alignment (i386: pairs in consecutive registers)
I386 = ArchInfo(
    id=98, name="i386", word_size=4, byteorder="little", regs=("ebx",),
    arg_regs=("ebx", "ecx", "edx", "esi", "edi", "ebp"), nr_reg="eax", ret_reg="eax",
    pc_reg="ip", sp_reg="sp", symbol_prefix="sys_",
)  # fmt: skip

PREAD64 = ("unsigned int", "char *", "size_t", "loff_t")
READAHEAD = ("int", "loff_t", "size_t")
LLSEEK = ("unsigned int", "unsigned long", "unsigned long", "loff_t *", "unsigned int")
POS = 0x1_2345_6789  # above 4 GiB


def test_pair_takes_an_even_aligned_register_pair() -> None:
    lay = layout(PREAD64, ARM)
    assert lay is not None
    assert lay.slots == ((0,), (1,), (2,), (4, 5))  # r3 is padding


def test_arguments_after_a_pair_move_up_by_the_padding() -> None:
    lay = layout(READAHEAD, ARM)
    assert lay is not None and lay.slots == ((0,), (2, 3), (4,))


def test_captured_strings_per_word_become_per_argument() -> None:
    # fanotify_mark(fd, flags, u64 mask, dfd, pathname): the guest captures
    # pathname from r5; syscall.strings[4] is the pathname argument's
    lay = layout(("int", "unsigned int", "__u64", "int", "const char *"), ARM)
    assert lay is not None and lay.slots == ((0,), (1,), (2, 3), (4,), (5,))
    words = (None, None, None, None, None, "path")
    assert lay.per_argument(words) == (None, None, None, None, "path", None)
    # a free word beyond a short prototype keeps its index; a pair has no string
    short = layout(("int", "const char *"), ARM)
    assert short is not None
    assert short.per_argument(("a", "b", None, None, "e")) == ("a", "b", None, None, "e", None)
    pair = layout(READAHEAD, ARM)
    assert pair is not None
    assert pair.per_argument(("x", "y", "z", "w", "v")) == ("x", None, "v", None, None, None)


def test_explicit_halves_are_plain_words() -> None:
    lay = layout(LLSEEK, ARM)
    assert lay is not None and lay.slots == ((0,), (1,), (2,), (3,), (4,))


def test_no_alignment_without_pair_align() -> None:
    lay = layout(PREAD64, I386)
    assert lay is not None and lay.slots == ((0,), (1,), (2,), (3, 4))


def test_mips_o32_aligns_pairs_like_arm() -> None:
    lay = layout(PREAD64, MIPSEL)
    assert lay is not None and lay.slots == ((0,), (1,), (2,), (4, 5))


def test_64_bit_abis_have_no_layout() -> None:
    assert layout(PREAD64, X86_64) is None


def test_a_pair_beyond_the_registers_has_no_slot() -> None:
    lay = layout(("int", "loff_t", "loff_t", "int"), ARM)
    assert lay is not None and lay.slots == ((0,), (2, 3), (4, 5), ())
    assert lay.width(3) == 0


def test_join_and_split_little_endian() -> None:
    lay = layout(PREAD64, ARM)
    assert lay is not None
    words = [3, 0x1000, 64, 0xDEAD, POS & 0xFFFFFFFF, POS >> 32]
    values = lay.join(words)
    assert values[:4] == [3, 0x1000, 64, POS]
    assert values[4:] == [0, 0]  # r4, r5 belong to pos
    assert lay.split(3, POS) == ((4, POS & 0xFFFFFFFF), (5, POS >> 32))
    assert lay.split(0, 7) == ((0, 7),)


def test_join_and_split_big_endian() -> None:
    lay = layout(PREAD64, BIG)
    assert lay is not None
    words = [3, 0x1000, 64, 0, POS >> 32, POS & 0xFFFFFFFF]
    assert lay.join(words)[3] == POS
    assert lay.split(3, POS) == ((4, POS >> 32), (5, POS & 0xFFFFFFFF))


def test_free_words_after_the_prototype_read_as_registers() -> None:
    lay = layout(("int", "int"), ARM)
    assert lay is not None
    assert lay.join([1, 2, 3, 4, 5, 6]) == [1, 2, 3, 4, 5, 6]
    assert lay.split(5, 9) == ((5, 9),)


def test_one_half_of_a_pair_changes_half_of_the_value() -> None:
    lay = layout(PREAD64, ARM)
    assert lay is not None
    values = lay.join([0, 0, 0, 0, POS & 0xFFFFFFFF, POS >> 32])
    assert lay.with_word(values, 5, 7) == (3, 7 << 32 | (POS & 0xFFFFFFFF))
    assert lay.with_word(values, 4, 7) == (3, (POS >> 32) << 32 | 7)
    with pytest.raises(InvalidValue):
        lay.with_word(values, 3, 1)  # the padding


@pytest.mark.parametrize(
    ("ctype", "domain"),
    [
        ("loff_t", Domain(64, True)),
        ("u64", Domain(64, False)),
        ("long", Domain(32, True)),
        ("off_t", Domain(32, True)),
        ("unsigned long", Domain(32, False)),
        ("size_t", Domain(32, False)),
        ("const char *", Domain(32, False)),
        ("int", Domain(32, True)),
        ("unsigned int", Domain(32, False)),
    ],
)
def test_domains_on_a_32_bit_abi(ctype: str, domain: Domain) -> None:
    assert domain_of_word(ctype, 32) == domain


def test_wide_types() -> None:
    assert is_wide("loff_t") and is_wide("const __u64") and is_wide("long long")
    assert not is_wide("long") and not is_wide("loff_t *")


def _meta(nr: int, name: str, types: tuple[str, ...], names: tuple[str, ...]) -> SyscallMeta:
    return SyscallMeta(nr=nr, name=name, nargs=len(types), types=types, names=names, known=True)


NAMES = ("fd", "buf", "count", "pos")
TABLE_METAS = [
    _meta(180, "sys_pread64", PREAD64, NAMES),
    # ftrace gives arm_fadvise64_64 the metadata of fadvise64_64
    _meta(
        270,
        "sys_fadvise64_64",
        ("int", "loff_t", "loff_t", "int"),
        ("fd", "offset", "len", "advice"),
    ),
    _meta(20, "sys_getpid", (), ()),
]


def test_prototypes_carry_the_layout_of_their_arch() -> None:
    table = PrototypeTable.from_meta(TABLE_METAS, ARM)
    pread = table.by_nr(180)
    assert pread.layout == ArgLayout(((0,), (1,), (2,), (4, 5)))
    assert pread.domain(3) == Domain(64, True)
    assert pread.domain(2) == Domain(32, False)
    assert PrototypeTable.from_meta(TABLE_METAS).by_nr(180).layout is None


def test_arm_fadvise64_64_gets_its_real_argument_order() -> None:
    proto = PrototypeTable.from_meta(TABLE_METAS, ARM).by_nr(270)
    assert proto.names == ("fd", "advice", "offset", "len")
    assert proto.layout is not None
    assert proto.layout.slots == ((0,), (1,), (2, 3), (4, 5))
    # other architectures keep the metadata's order
    assert PrototypeTable.from_meta(TABLE_METAS, I386).by_nr(270).names[1] == "offset"


def _pread_words(pos: int) -> tuple[int, ...]:
    return (3, 0x1000, 64, 0, pos & 0xFFFFFFFF, pos >> 32)


def test_args_present_and_rewrite_a_pair_as_one_value() -> None:
    proto = PrototypeTable.from_meta(TABLE_METAS, ARM).by_nr(180)
    args = Args(_pread_words(POS), proto.layout)
    assert list(args)[:4] == [3, 0x1000, 64, POS]
    args[3] = 0x2_0000_0010
    assert args.changed_words() == [(4, 0x10), (5, 2)]
    assert args.word(4) == 0x10 and args.word(3) == 0
    with pytest.raises(InvalidValue):
        args[4] = 1  # r4 belongs to pos


def _event(proto: SyscallPrototype, words: tuple[int, ...]) -> SyscallEvent:
    from syscalls_async.syscalls.event import Task

    return SyscallEvent(
        name=proto.name, nr=proto.nr, pc=0, sp=0, argc=proto.nargs,
        args=Args(words, proto.layout), task=Task("t", 1, 1), phase="enter",
    )  # fmt: skip


def test_regs_write_one_half_of_a_pair() -> None:
    proto = PrototypeTable.from_meta(TABLE_METAS, ARM).by_nr(180)
    event = _event(proto, _pread_words(POS))
    regs = Regs((0,) * len(_ARM_REGS), event, ARM)
    assert regs.r5 == POS >> 32
    regs.r5 = 9
    assert event.args[3] == 9 << 32 | (POS & 0xFFFFFFFF)
    assert regs.r5 == 9
    with pytest.raises(InvalidValue):
        regs.r3 = 1  # padding


def _raw(nr: int, words: tuple[int, ...]) -> RawEvent:
    return RawEvent(
        slot=0, epoch=1, seq=1, phase=Phase.ENTER, nr=nr, pid=5, tgid=5, comm="t",
        args=words, retval=0, pc=0, sp=0, matched=(0,), regs=(0,) * len(_ARM_REGS),
    )  # fmt: skip


def test_dispatcher_hands_the_offset_as_one_value_and_splits_the_rewrite() -> None:
    table = PrototypeTable.from_meta(TABLE_METAS, ARM)
    registry = Registry()
    seen: list[int] = []

    def on_pread64(regs: Regs, proto: SyscallPrototype, syscall: SyscallEvent,
                   fd: int, buf: int, count: int, pos: int) -> None:  # fmt: skip
        seen.append(pos)
        syscall.args[3] = pos + 0x1_0000_0000

    hook = registry.add(on_pread64, "pread64")
    registry.bind(table)
    trap = FakeTrap(_raw(180, _pread_words(POS)), hook_ids=(hook.id,))
    asyncio.run(Dispatcher(registry, table, arch=ARM)(trap))
    new = POS + 0x1_0000_0000
    assert seen == [POS]
    assert trap.calls == [("set_arg", 4, new & 0xFFFFFFFF), ("set_arg", 5, new >> 32)]


def test_a_filter_on_a_pair_is_checked_on_the_host() -> None:
    table = PrototypeTable.from_meta(TABLE_METAS, ARM)
    registry = Registry()
    calls: list[int] = []

    def on_pread64(regs: Regs, proto: SyscallPrototype, syscall: SyscallEvent) -> None:
        calls.append(syscall.args[3])

    hook = registry.add(
        on_pread64, "pread64",
        arg_filters=[None, None, ValueFilter.exact(64), ValueFilter.greater(1 << 32)],
    )  # fmt: skip
    registry.bind(table)
    spec = hook.spec()
    # count goes to the guest on r2; pos (r4:r5) stays on the host
    assert spec.args[2] is not None and spec.args[3] is None and spec.args[4] is None
    assert hook.host_only_filters
    dispatcher = Dispatcher(registry, table, arch=ARM)
    for pos in (POS, 5):
        asyncio.run(dispatcher(FakeTrap(_raw(180, _pread_words(pos)), hook_ids=(hook.id,))))
    assert calls == [POS]
    assert dispatcher.stats.filtered_on_host == 1
    assert dispatcher.stats.guest_disagreed == 0


SYNC_FILE_RANGE = _meta(
    4305,
    "sys_sync_file_range",
    ("int", "loff_t", "loff_t", "unsigned int"),
    ("fd", "offset", "nbytes", "flags"),
)


def test_an_argument_beyond_the_words_cannot_be_filtered() -> None:
    # MIPS o32: fd a0, offset a2:a3, nbytes in the two stack words, flags the 7th word
    table = PrototypeTable.from_meta([SYNC_FILE_RANGE], MIPSEL)
    assert table.by_nr(4305).layout == ArgLayout(((0,), (2, 3), (4, 5), ()))
    registry = Registry()
    registry.add(_nothing, "sync_file_range", arg_filters=[None, None, None, 2])
    with pytest.raises(RegistrationError, match=r"argument 3 \(unsigned int flags\).*beyond"):
        registry.bind(table)


def test_a_handler_taking_an_unseen_argument_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    table = PrototypeTable.from_meta([SYNC_FILE_RANGE], MIPSEL)

    def takes_flags(regs: Regs, proto: SyscallPrototype, syscall: SyscallEvent,
                    fd: int, offset: int, nbytes: int, flags: int) -> None:  # fmt: skip
        pass

    def stops_before(regs: Regs, proto: SyscallPrototype, syscall: SyscallEvent,
                     fd: int, offset: int) -> None:  # fmt: skip
        pass

    registry = Registry()
    registry.add(stops_before, "sync_file_range")
    registry.bind(table)
    assert "beyond" not in caplog.text
    registry.add(takes_flags, "sync_file_range")
    registry.bind(table)
    assert "unsigned int flags lies beyond the 6 argument words" in caplog.text
    assert "the handler gets 0 for it" in caplog.text


def _nothing(regs: Regs, proto: SyscallPrototype, syscall: SyscallEvent) -> None:
    pass
