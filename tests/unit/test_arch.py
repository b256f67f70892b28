"""The guest architecture descriptor: what the host knows of x86_64, and the check on attach."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import msgspec
import pytest
from test_portal_hostile import FakeGuest, G

from syscalls_async.errors import PortalVersionError
from syscalls_async.portal import Portal
from syscalls_async.portal.abi import C, ffi
from syscalls_async.portal.arch import ARCHS, X86_64, arch_by_id
from syscalls_async.syscalls.event import Args, Regs, SyscallEvent, Task


def test_every_known_arch_fits_the_abi() -> None:
    for arch in ARCHS.values():
        assert len(arch.regs) <= C.SA_MAX_REGS
        assert len(set(arch.regs)) == len(arch.regs)
        assert len(arch.arg_regs) == C.SA_MAX_ARGS
        named = {*arch.arg_regs, arch.nr_reg, arch.ret_reg, arch.pc_reg, arch.sp_reg}
        assert named <= set(arch.regs)
        assert arch.word_size in (4, 8)
        assert arch_by_id(arch.id) is arch


def test_x86_64_is_the_default_guests() -> None:
    assert arch_by_id(C.SA_ARCH_X86_64) is X86_64
    assert X86_64.arg_regs == ("rdi", "rsi", "rdx", "r10", "r8", "r9")
    assert X86_64.nr_reg == "orig_rax" and X86_64.word_size == 8


def test_an_unknown_arch_id_is_refused_clearly() -> None:
    with pytest.raises(PortalVersionError, match=r"architecture id 77.*x86_64"):
        arch_by_id(77)


async def test_a_region_of_an_unknown_arch_is_refused(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path / "shm")
    g.write(ffi.offsetof(G, "arch"), struct.pack("<I", 77))
    with pytest.raises(PortalVersionError, match="architecture id 77"):
        async with Portal(g.path, attach_timeout=1.0):
            pass
    g.f.close()


async def test_the_portal_says_its_guests_arch(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path / "shm")
    acks = asyncio.create_task(g.ack_hooks())
    try:
        async with Portal(g.path, attach_timeout=1.0) as portal:
            assert portal.arch is X86_64
    finally:
        acks.cancel()
        g.f.close()


def test_regs_name_the_given_arch() -> None:
    other = msgspec.structs.replace(
        X86_64,
        id=999,
        name="toy",
        regs=("a0", "a1", "a2", "a3", "a4", "a5", "nr", "ret", "pc_", "sp_"),
        arg_regs=("a0", "a1", "a2", "a3", "a4", "a5"),
        nr_reg="nr",
        ret_reg="ret",
        pc_reg="pc_",
        sp_reg="sp_",
    )
    event = SyscallEvent(
        name="sys_openat", nr=257, pc=0, sp=0, argc=4, args=Args((1, 2, 3, 4, 0, 0)),
        task=Task("cat", 1, 1), phase="return", retval=5,
    )  # fmt: skip
    regs = Regs(tuple(range(10)), event, other)
    assert regs.a1 == 2 and regs.ret == 5 and regs.pc == 8 and regs.sp == 9
    regs.a0 = 42
    assert event.args[0] == 42
    with pytest.raises(AttributeError, match="rdi"):
        _ = regs.rdi
    with pytest.raises(AttributeError, match=r"\(a0, a1, a2, a3, a4, a5\) on entry or ret"):
        regs.nr = 1
