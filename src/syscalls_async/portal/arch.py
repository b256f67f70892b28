"""The guest architectures this host knows: the one place it knows x86_64.

The guest module writes its ``SA_ARCH_*`` id into the portal header (from
``kernel/arch_<name>.c``); the host looks it up here on attach and refuses a
region whose architecture it does not know.  A new guest architecture is one
:class:`ArchInfo` here and one C file in ``kernel/``::

    arch = arch_by_id(C.SA_ARCH_X86_64)
    arch.arg_regs[0]  # 'rdi'
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ..errors import PortalVersionError
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
#: ``int 0x80``/``sysenter`` (``ia32_sys_call_table``, its own numbering)
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

#: every architecture this host knows, by ``SA_ARCH_*`` id
ARCHS: dict[int, ArchInfo] = {a.id: a for a in (X86_64,)}

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
