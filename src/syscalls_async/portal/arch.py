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
    #: 32-bit ABIs: a 64-bit argument takes an even/odd aligned register pair
    #: (ARM EABI, MIPS o32; see ``syscalls/abi32.py``); False on 64-bit ABIs
    pair_align: bool = False


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

#: every architecture this host knows, by ``SA_ARCH_*`` id
ARCHS: dict[int, ArchInfo] = {a.id: a for a in (X86_64,)}


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
