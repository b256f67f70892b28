"""64-bit arguments on every guest architecture, read and rewritten (issue 10).

``guest/bigoff`` puts "low." at 5 GiB and "high" at 6 GiB of a sparse file and
reads 4 bytes at 5 GiB twice: with ``pread64`` and after an ``lseek``.  On a
32-bit guest ``pread64``'s offset is a register pair (ARM EABI: r4:r5, after
the padding r3), which the handler gets as one ``loff_t`` and rewrites as one;
``_llseek`` takes the offset as two explicit 32-bit halves.  On 64-bit guests
both are plain registers, so the same test shows nothing was lost there.
"""

from __future__ import annotations

from typing import Any

import pytest
from arch_support import Calls, selected

from syscalls_async import Session

#: the architectures this runs on (the matrix's)
ARCHS = ["x86_64", "aarch64", "armhf", "mipsel"]

pytestmark = pytest.mark.parametrize("arch", selected(ARCHS))

LOW = 0x1_4000_0000  # 5 GiB: "low."
HIGH = 0x1_8000_0000  # 6 GiB: "high"


async def test_pread64_offset_above_4gib_is_one_value_and_rewritten(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    def move(regs: Any, proto: Any, syscall: Any, fd: int, buf: int, count: int, pos: int) -> None:
        arch_calls.add((proto.types[3], pos, count))
        syscall.args[3] = HIGH

    await arch_session.plugins.syscalls.register(move, "pread64", comm_filter="bigoff")
    result = await arch_session.run("bigoff /tmp/bigoff.dat")
    assert await arch_calls.wait(1) == [("loff_t", LOW, 4)]
    assert result.stdout.splitlines()[0] == f"pread {LOW:#x} high".encode()


async def test_lseek_offset_above_4gib_is_read_and_rewritten(
    arch: str, arch_session: Session, arch_calls: Calls
) -> None:
    table = arch_session.plugins.syscalls.registry.prototypes
    assert table is not None
    # 32-bit guests seek past 4 GiB with _llseek (two explicit halves)
    split = table.by_name("llseek") is not None

    def seek_split(
        regs: Any, proto: Any, syscall: Any, fd: int, high: int, low: int, result: int, whence: int
    ) -> None:
        arch_calls.add(high << 32 | low)
        syscall.args[1] = HIGH >> 32
        syscall.args[2] = HIGH & 0xFFFFFFFF

    def seek(regs: Any, proto: Any, syscall: Any, fd: int, offset: int, whence: int) -> None:
        arch_calls.add(offset)
        syscall.args[1] = HIGH

    if split:
        await arch_session.plugins.syscalls.register(seek_split, "llseek", comm_filter="bigoff")
    else:
        await arch_session.plugins.syscalls.register(seek, "lseek", comm_filter="bigoff")
    result = await arch_session.run("bigoff /tmp/bigoff.dat")
    assert await arch_calls.wait(1) == [LOW]
    # the kernel seeked where the handler said, and read from there
    assert result.stdout.splitlines()[1] == f"lseek {HIGH:#x} high".encode()
