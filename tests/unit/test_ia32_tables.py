"""The compat ABI on the host (x86_64's ia32): which table names a call, which hooks
take it, what handlers see.  Host only; the real guest is in tests/api/test_ia32.py."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest
from sysproto_table import GETPID, LSEEK, OPENAT, PROTOS

from syscalls_async.errors import RegistrationError
from syscalls_async.portal import decode
from syscalls_async.portal.abi import C
from syscalls_async.portal.arch import IA32, X86_64, compat_abi
from syscalls_async.portal.hooks import NR_ALL, NR_NONE, NR_UNKNOWN, HookSpec, encode_hooks
from syscalls_async.portal.types import Phase, RawEvent, SyscallMeta
from syscalls_async.syscalls import Dispatcher, PrototypeTable, Registry, SyscallPrototype
from syscalls_async.syscalls.prototypes import Domain, domain_of
from syscalls_async.testing import FakeMemory, FakeTrap


def _ia32(name: str, nr: int, types: tuple[str, ...] = (), names: tuple[str, ...] = (),
          **kw: Any) -> SyscallPrototype:  # fmt: skip
    return SyscallPrototype(name, nr, len(types), types, names, compat=True, **kw)


OPENAT32 = _ia32("sys_openat", 295, OPENAT.types, OPENAT.names)
GETPID32 = _ia32("sys_getpid", 20)
LSEEK32 = _ia32("sys_lseek", 19, LSEEK.types, LSEEK.names)
# the ia32 pread64 takes its offset in two registers
PREAD32 = _ia32("sys_pread64", 180, ("unsigned int", "char *", "u32", "u32", "u32"),
                ("fd", "ubuf", "count", "poslo", "poshi"))  # fmt: skip
SOCKETCALL32 = _ia32("sys_socketcall", 102, ("int", "unsigned long *"), ("call", "args"))
STAT64 = _ia32("sys_stat64", 195, prototype=False)
PREAD = SyscallPrototype(
    "sys_pread64", 17, 4, ("unsigned int", "char *", "size_t", "loff_t"),
    ("fd", "buf", "count", "pos"),
)  # fmt: skip
UNKNOWN32 = _ia32("sys_unknown_17", 17, known=False)
COMPAT = (OPENAT32, GETPID32, LSEEK32, PREAD32, SOCKETCALL32, STAT64, UNKNOWN32)


def table() -> PrototypeTable:
    return PrototypeTable((*PROTOS, PREAD), COMPAT)


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.bind(table())
    return reg


def event(nr: int, *args: int, compat: bool = True, phase: Phase = Phase.ENTER,
          retval: int = 0, comm: str = "prog32") -> RawEvent:  # fmt: skip
    args6 = (*args, *(0,) * (6 - len(args)))
    block = [0] * len(X86_64.regs)
    # the module copies pt_regs whatever the ABI: ebx is rbx's word
    arch = IA32 if compat else X86_64
    for reg, value in zip(arch.arg_regs, args6, strict=True):
        block[arch.regs.index(reg)] = value
    block[arch.regs.index(arch.nr_reg)] = nr
    return RawEvent(
        slot=0, epoch=1, seq=1, phase=phase, nr=nr, pid=7, tgid=7, comm=comm, args=args6,
        retval=retval, pc=0x1000, sp=0x2000, matched=(), regs=tuple(block), compat=compat,
    )  # fmt: skip


# -- tables ------------------------------------------------------------------------------


def test_each_abi_has_its_own_table() -> None:
    t = table()
    assert t.for_abi(False) is t and t.for_abi(True) is t.compat
    assert t.by_nr(257) is OPENAT and t.for_abi(True).by_nr(295) is OPENAT32
    assert t.for_abi(True).by_nr(257).known is False  # 257 is no ia32 number
    assert t.for_abi(True).by_nr(999).compat is True
    assert t.by_name("openat") is OPENAT and t.for_abi(True).by_name("openat") is OPENAT32
    assert sorted(p.nr for p in t.all() if p.compat) == sorted(p.nr for p in COMPAT)
    # a guest without a compat ABI: its compat table is empty
    plain = PrototypeTable(PROTOS)
    assert len(plain.for_abi(True)) == 0 and not plain.for_abi(True).by_nr(257).known
    with pytest.raises(Exception, match="other ABI"):
        PrototypeTable([OPENAT32])


def test_tables_from_the_guest_metadata() -> None:
    metas = [SyscallMeta(257, "sys_openat", 4, OPENAT.types, OPENAT.names, True)]
    metas32 = [
        SyscallMeta(0, "", 0, (), (), False, hookable=False),
        SyscallMeta(1, "sys_stat64", 0, (), (), True, prototype=False),
    ]
    t = PrototypeTable.from_meta(metas, metas32=metas32)
    assert t.for_abi(True).by_nr(0).name == "sys_unknown_0"
    stat64 = t.for_abi(True).by_nr(1)
    assert (stat64.compat, stat64.known, stat64.prototype) == (True, True, False)


def test_ia32_registers_are_32_bits_wide() -> None:
    assert domain_of("long", 4) == domain_of("off_t", 4) == Domain(32, True)
    assert domain_of("long") == Domain(64, True)
    assert domain_of("int", 4) == Domain(32, True) and domain_of("char *", 4).width == 64
    assert LSEEK32.domain(1).value(0xFFFFFFFF) == -1
    assert LSEEK.domain(1).value(0xFFFFFFFF) == 0xFFFFFFFF
    assert compat_abi(X86_64) is IA32 and IA32.arg_regs[0] == "ebx"


# -- hooks --------------------------------------------------------------------------------


def nothing(regs: Any, proto: Any, syscall: Any, *args: Any) -> None:
    pass


def test_a_name_hooks_the_syscall_in_both_abis(registry: Registry) -> None:
    hook = registry.add(nothing, "openat")
    spec = hook.spec()
    assert (spec.nr, spec.nr32) == (257, 295)
    assert registry.candidates(295, True, compat=True) == [hook]
    assert registry.candidates(257, True, compat=True) == []
    assert registry.candidates(257, True) == [hook]
    assert registry.candidates(295, True) == []


def test_a_syscall_only_the_compat_abi_has(registry: Registry) -> None:
    hook = registry.add(nothing, "socketcall", arg_filters=[3])
    assert (hook.spec().nr, hook.spec().nr32) == (NR_NONE, 102)
    assert hook.proto is SOCKETCALL32
    assert registry.candidates(102, True, compat=True) == [hook]
    assert registry.candidates(102, True) == []  # 102 is getuid natively


def test_a_hook_whose_filters_do_not_fit_the_ia32_prototype_stays_native(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "syscalls"):
        hook = registry.add(nothing, "pread64", arg_filters=[None, None, None, 4096])
    assert (hook.spec().nr, hook.spec().nr32) == (17, NR_NONE)
    assert "not hooked for 32-bit" in caplog.text and "poslo" in caplog.text
    # without filters it takes both, each with its own prototype
    both = registry.add(nothing, "pread64")
    assert (both.spec().nr, both.spec().nr32) == (17, 180)
    assert (both.proto, both.proto32, both.nargs_passed32) == (PREAD, PREAD32, 5)


def test_unknown_names_are_looked_up_in_both_tables(registry: Registry) -> None:
    with pytest.raises(RegistrationError, match="socketcall"):
        registry.add(nothing, "socketcal")


def test_all_and_unknown_hooks_take_every_abi(registry: Registry) -> None:
    every = registry.add(nothing, "on_all_sys_enter")
    unknown = registry.add(nothing, "on_unknown_sys_enter")
    assert registry.candidates(20, True, compat=True) == [every]
    assert registry.candidates(17, True, compat=True) == [every, unknown]  # ni there
    assert registry.candidates(17, True) == [every]  # pread64 natively
    assert every.spec().nr == NR_ALL and unknown.spec().nr == NR_UNKNOWN


def test_the_hook_table_carries_both_numbers() -> None:
    raw = encode_hooks([HookSpec(id=1, nr=NR_NONE, nr32=102), HookSpec(id=2, nr=257, nr32=295)])
    hooks = [decode.ffi.from_buffer("struct sa_hook *", raw[i * C.SA_HOOK_SIZE :])
             for i in range(2)]  # fmt: skip
    assert [(h.nr, h.nr32) for h in hooks] == [(NR_NONE, 102), (257, 295)]
    with pytest.raises(Exception, match="no syscall number"):
        encode_hooks([HookSpec(id=1, nr=NR_NONE)])


# -- events -------------------------------------------------------------------------------


def test_compat_flag_comes_with_either_phase() -> None:
    assert decode.eflags_ok(C.SA_EV_COMPAT, Phase.ENTER)
    assert decode.eflags_ok(C.SA_EV_COMPAT | C.SA_EV_RESTARTED, Phase.RETURN)
    assert not decode.eflags_ok(C.SA_EV_RESTARTED, Phase.ENTER)
    assert not decode.eflags_ok(8, Phase.RETURN)


async def test_a_handler_gets_the_ia32_name_prototype_and_registers(registry: Registry) -> None:
    seen: list[Any] = []

    def on_lseek(regs: Any, proto: Any, syscall: Any, fd: int, offset: int, whence: int) -> None:
        if syscall.abi == "x86_64":
            seen.append((syscall.abi, syscall.nr, syscall.name, proto is LSEEK32, fd, offset))
            return
        seen.append((syscall.abi, syscall.nr, syscall.name, proto is LSEEK32, fd, offset,
                     regs.ebx, regs.ecx, regs.orig_eax))  # fmt: skip
        regs.edx = 2  # whence, through its ia32 register

    registry.add(on_lseek, "lseek", arg_filters=[9, -1])
    d = Dispatcher(registry, table(), arch=X86_64)
    trap = FakeTrap(event(19, 9, 0xFFFFFFFF, 0), FakeMemory(), tuple(h.id for h in registry))
    await d(trap)
    assert seen == [("ia32", 19, "sys_lseek", True, 9, -1, 9, 0xFFFFFFFF, 19)]
    assert trap.calls == [("set_arg", 2, 2)]
    # the same filter on the native call: -1 is all 64 bits there
    trap = FakeTrap(event(8, 9, 0xFFFFFFFF, 0, compat=False), FakeMemory(), ())
    await d(trap)
    assert len(seen) == 1
    native = FakeTrap(event(8, 9, (1 << 64) - 1, 0, compat=False), FakeMemory(), ())
    await d(native)
    assert seen[-1] == ("x86_64", 8, "sys_lseek", False, 9, -1)


async def test_a_call_without_prototype_shows_all_its_registers(registry: Registry) -> None:
    seen: list[Any] = []
    registry.add(lambda regs, proto, syscall: seen.append((syscall.name, syscall.argc)), None)
    d = Dispatcher(registry, table(), arch=X86_64)
    await d(FakeTrap(event(195, 1, 2), FakeMemory(), ()))
    await d(FakeTrap(event(20), FakeMemory(), ()))
    assert seen == [("sys_stat64", 6), ("sys_getpid", 0)]
    assert GETPID.nr == 39  # (the native getpid is another number)


def test_an_old_cache_entry_reads_as_native() -> None:
    old = b'{"name":"sys_openat","nr":257,"nargs":0,"types":[],"names":[],"known":true}'
    proto = msgspec.json.decode(old, type=SyscallPrototype)
    assert (proto.compat, proto.prototype) == (False, True)


def test_a_filter_value_beyond_32_bits_keeps_the_hook_native(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    # off_t: a 64-bit operand cannot be an ia32 value; the native hook stands
    with caplog.at_level(logging.WARNING, "syscalls"):
        hook = registry.add(nothing, "lseek", arg_filters=[None, 0x7FFF_FFFF_FFFF_FFFF])
    assert (hook.spec().nr, hook.spec().nr32) == (8, NR_NONE)
    assert "not hooked for 32-bit" in caplog.text and "signed 32-bit" in caplog.text
