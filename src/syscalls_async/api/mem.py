"""``plugins.mem``: the trapped task's memory, read and written in its own context.

Every call works inside a handler (it goes through the syscall that is being
handled) and is awaited::

    path = await plugins.mem.read_str(filename)
    argv = await plugins.mem.read_ptrlist(argv_ptr)
    await plugins.mem.write_bytes(buf, b"patched")

A failed access raises :class:`~syscalls_async.errors.GuestMemoryError`
with the faulting address.  Addresses outside the 64-bit address space and
values that do not fit the written width raise
:class:`~syscalls_async.errors.OutOfRange` (nothing is wrapped or truncated).
"""

from __future__ import annotations

import struct

from ..errors import HandlerContextError, InvalidType, OutOfRange, RequestTooLarge
from ..portal.trap import STR_MAX, check_address, word64
from ..portal.trap import TrapProtocol as Trap
from ..syscalls.dispatch import current_trap

#: larger single reads or writes are refused as absurd
MAX_TRANSFER = 64 * 1024 * 1024
MAX_PTRLIST = 65536


def trap() -> Trap:
    """The trap of the handler running in this context."""
    try:
        return current_trap.get()
    except LookupError:
        raise HandlerContextError(
            "guest memory and process information are only reachable from inside a "
            "syscall handler (they are served by the trapped task)"
        ) from None


def _check(size: int, what: str, limit: int = MAX_TRANSFER) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise RequestTooLarge(f"{what}: size must be a non-negative int, not {size!r}")
    if size > limit:
        raise RequestTooLarge(f"{what}: {size} bytes is more than the {limit} allowed at once")


class Mem:
    """The guest memory API (``plugins.mem``)."""

    async def read_bytes(self, addr: int, size: int) -> bytes:
        _check(size, "read_bytes")
        check_address(addr, size, "read_bytes")
        return await trap().read_bytes(addr, size)

    async def read_str(self, addr: int, max_len: int = STR_MAX) -> str:
        """The NUL-terminated string at ``addr`` (UTF-8, undecodable bytes escaped)."""
        _check(max_len, "read_str")
        check_address(addr, 1, "read_str")
        return await trap().read_str(addr, max_len)

    async def read_ptrlist(self, addr: int, max_entries: int = MAX_PTRLIST) -> list[str]:
        """The strings of a NULL-terminated ``char *[]`` (argv, envp)."""
        _check(max_entries, "read_ptrlist", MAX_PTRLIST)
        check_address(addr, 8, "read_ptrlist")
        return await trap().read_ptrlist(addr, max_entries)

    async def read_int(self, addr: int) -> int:
        """A signed 32-bit int."""
        return int(struct.unpack("<i", await self.read_bytes(addr, 4))[0])

    async def read_long(self, addr: int) -> int:
        """A signed 64-bit long."""
        return int(struct.unpack("<q", await self.read_bytes(addr, 8))[0])

    async def read_ptr(self, addr: int) -> int:
        """An unsigned 64-bit pointer."""
        return int(struct.unpack("<Q", await self.read_bytes(addr, 8))[0])

    async def write_bytes(self, addr: int, data: bytes) -> None:
        _check(len(data), "write_bytes")
        check_address(addr, len(data), "write_bytes")
        await trap().write_bytes(addr, bytes(data))

    async def write_str(self, addr: int, text: str) -> None:
        """``text`` as UTF-8 with its terminating NUL."""
        await self.write_bytes(addr, text.encode() + b"\0")

    async def write_int(self, addr: int, value: int) -> None:
        """A 32-bit int, written signed (-2**31 ..) or unsigned (.. 2**32-1)."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidType(f"write_int: value must be an int, not {type(value).__name__}")
        if not -(1 << 31) <= value < 1 << 32:
            raise OutOfRange(f"write_int: {value} does not fit in 32 bits (-2**31 .. 2**32-1)")
        await self.write_bytes(addr, struct.pack("<I", value & 0xFFFFFFFF))

    async def write_long(self, addr: int, value: int) -> None:
        """A 64-bit long, written signed (-2**63 ..) or unsigned (.. 2**64-1)."""
        await self.write_bytes(addr, struct.pack("<Q", word64(value, "write_long: value")))

    async def write_ptr(self, addr: int, value: int) -> None:
        await self.write_long(addr, value)
