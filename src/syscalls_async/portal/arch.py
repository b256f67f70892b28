"""The guest architectures this host knows: their registers, word size, ABI.

The guest module writes its ``SA_ARCH_*`` id into the portal header (from
``kernel/arch_<name>.c``); the host looks it up here on attach and refuses a
region whose architecture it does not know, or that is not the architecture
the machine was booted as.  A new guest architecture is one :class:`ArchInfo`
here, one :class:`~syscalls_async.machine.targets.Target` (how to build and
boot it) and one C file in ``kernel/``::

    arch = arch_by_id(C.SA_ARCH_X86_64)
    arch.arg_regs[0]  # 'rdi'
    arch_by_name("aarch64").symbol_prefix  # '__arm64_sys_'
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ..errors import InvalidValue, PortalVersionError
from .abi import C


class ArchInfo(msgspec.Struct, frozen=True):
    """What the host knows of a guest architecture."""

    #: the ``SA_ARCH_*`` id the guest module writes into the portal header
    id: int
    name: str
    #: bytes in a register, a pointer, a syscall argument
    word_size: int
    byteorder: Literal["little", "big"]
    #: the user registers in the order of the ABI's register block (``regs``)
    regs: tuple[str, ...]
    #: the registers holding the syscall arguments, in argument order
    arg_regs: tuple[str, ...]
    #: the register holding the syscall number
    nr_reg: str
    #: the register holding the return value
    ret_reg: str
    pc_reg: str
    sp_reg: str
    #: the prefix of the kernel's syscall entry symbols (``__x64_sys_openat``)
    symbol_prefix: str
    #: 32-bit ABIs: a 64-bit argument takes an even/odd aligned register pair
    #: (ARM EABI, MIPS o32; see ``syscalls/abi32.py``); False on 64-bit ABIs
    pair_align: bool = False
    #: the number user space passes for table entry 0 (MIPS o32: 4000). The
    #: guest module names entries by table index; the portal adds this to
    #: every number it reads (events, metadata) and takes it off the hook
    #: table's, so everything above the portal sees the numbers user space uses
    nr_base: int = 0


#: x86_64 ``struct pt_regs``, the order the module copies it in
_X86_64_PT_REGS = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
    "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
)  # fmt: skip

X86_64 = ArchInfo(
    id=C.SA_ARCH_X86_64,
    name="x86_64",
    word_size=8,
    byteorder="little",
    regs=_X86_64_PT_REGS,
    arg_regs=("rdi", "rsi", "rdx", "r10", "r8", "r9"),
    nr_reg="orig_rax",
    ret_reg="rax",
    pc_reg="rip",
    sp_reg="rsp",
    symbol_prefix="__x64_sys_",
)

#: x86_64's ``struct pt_regs`` as a 32-bit program's call fills it (the ia32
#: entry): the same block, the registers it uses by their 32-bit names
_IA32_PT_REGS = (
    "r15", "r14", "r13", "r12", "ebp", "ebx", "r11", "r10", "r9", "r8", "eax", "ecx",
    "edx", "esi", "edi", "orig_eax", "eip", "cs", "eflags", "esp", "ss",
)  # fmt: skip

#: the compat ABI of the x86_64 guest: 32-bit programs entering through
#: ``int 0x80``/``sysenter`` (the ia32 functions, its own numbering)
IA32 = ArchInfo(
    id=C.SA_ARCH_X86_64,
    name="ia32",
    word_size=4,
    byteorder="little",
    regs=_IA32_PT_REGS,
    arg_regs=("ebx", "ecx", "edx", "esi", "edi", "ebp"),
    nr_reg="orig_eax",
    ret_reg="eax",
    pc_reg="eip",
    sp_reg="esp",
    symbol_prefix="__ia32_sys_",
)

#: arm64 ``struct pt_regs``: ``user_pt_regs`` (x0-x30, sp, pc, pstate), then
#: orig_x0 and syscallno, the order the module copies it in
_AARCH64_PT_REGS = (
    *(f"x{i}" for i in range(31)), "sp", "pc", "pstate", "orig_x0", "syscallno",
)  # fmt: skip

AARCH64 = ArchInfo(
    id=C.SA_ARCH_AARCH64,
    name="aarch64",
    word_size=8,
    byteorder="little",
    regs=_AARCH64_PT_REGS,
    # the entry wrappers read the arguments from x0-x5 (x0 is also the result)
    arg_regs=("x0", "x1", "x2", "x3", "x4", "x5"),
    nr_reg="syscallno",
    ret_reg="x0",
    pc_reg="pc",
    sp_reg="sp",
    symbol_prefix="__arm64_sys_",
)

#: ARM ``struct pt_regs`` (``uregs[18]``): r0-r15, cpsr, orig_r0
_ARMHF_PT_REGS = (
    *(f"r{i}" for i in range(13)), "sp", "lr", "pc", "cpsr", "orig_r0",
)  # fmt: skip

ARMHF = ArchInfo(
    id=C.SA_ARCH_ARMHF,
    name="armhf",
    word_size=4,
    byteorder="little",
    regs=_ARMHF_PT_REGS,
    arg_regs=("r0", "r1", "r2", "r3", "r4", "r5"),
    # EABI: the number is in r7; the entry keeps no copy in pt_regs, the
    # module reports it in the event's nr (and r7 here)
    nr_reg="r7",
    ret_reg="r0",
    pc_reg="pc",
    sp_reg="sp",
    symbol_prefix="sys_",
    pair_align=True,
)

#: MIPS ``struct pt_regs``: the 32 GPRs by their o32 names, then lo, hi, epc,
#: badvaddr, status, cause; then the o32 stack arguments 5 and 6 (the entry
#: copies them from the user stack), 40 words in all
_MIPSEL_PT_REGS = (
    "zero", "at", "v0", "v1", "a0", "a1", "a2", "a3",
    "t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7",
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7",
    "t8", "t9", "k0", "k1", "gp", "sp", "fp", "ra",
    "lo", "hi", "epc", "badvaddr", "status", "cause", "arg4", "arg5",
)  # fmt: skip

MIPSEL = ArchInfo(
    id=C.SA_ARCH_MIPSEL,
    name="mipsel",
    word_size=4,
    byteorder="little",
    regs=_MIPSEL_PT_REGS,
    arg_regs=("a0", "a1", "a2", "a3", "arg4", "arg5"),
    nr_reg="v0",
    ret_reg="v0",
    pc_reg="epc",
    sp_reg="sp",
    symbol_prefix="sys_",
    pair_align=True,
    nr_base=4000,
)

#: every architecture this host knows, by ``SA_ARCH_*`` id
ARCHS: dict[int, ArchInfo] = {a.id: a for a in (X86_64, AARCH64, ARMHF, MIPSEL)}
#: the same by name (``--arch``), x86_64 first
ARCH_NAMES: dict[str, ArchInfo] = {a.name: a for a in ARCHS.values()}
#: the architecture of a machine that does not say
DEFAULT_ARCH = X86_64.name

#: the second syscall ABI a guest architecture also runs (its events carry
#: ``SA_EV_COMPAT``), by ``SA_ARCH_*`` id
COMPAT_ABIS: dict[int, ArchInfo] = {C.SA_ARCH_X86_64: IA32}


def compat_abi(arch: ArchInfo) -> ArchInfo | None:
    """The compat ABI of ``arch`` (x86_64: :data:`IA32`), or None."""
    return COMPAT_ABIS.get(arch.id)


def arch_by_id(arch_id: int) -> ArchInfo:
    """The architecture the guest names, or :class:`PortalVersionError`."""
    try:
        return ARCHS[arch_id]
    except KeyError:
        known = ", ".join(f"{a.name} ({a.id})" for a in ARCHS.values())
        raise PortalVersionError(
            f"the guest module runs on architecture id {arch_id}, which this host does not "
            f"know (it knows {known})"
        ) from None


def arch_by_name(name: str) -> ArchInfo:
    """The architecture called ``name`` (``--arch``), or :class:`InvalidValue`
    listing the names this host knows."""
    try:
        return ARCH_NAMES[name]
    except (KeyError, TypeError):
        raise InvalidValue(
            f"unknown architecture {name!r}: choose one of {', '.join(ARCH_NAMES)}"
        ) from None


def check_arch(found: ArchInfo, expected: ArchInfo | None) -> None:
    """Refuse a guest module of another architecture than the machine's."""
    if expected is not None and found is not expected:
        raise PortalVersionError(
            f"the guest module runs on {found.name} (id {found.id}), but this machine "
            f"was booted as {expected.name} (id {expected.id}): the region belongs to "
            "another guest"
        )
