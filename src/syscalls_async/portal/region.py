"""The shared region: the mapping, its named offsets, attach and liveness checks.

A :class:`Region` is the ivshmem file mapped into the host.  It knows where
every header field lives (offsets from ``portal_abi.h`` through cffi), checks
the magic, state and version on attach, and says whether the module that made
it is still there; it knows nothing of slots, rings or hooks.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import struct
import time
from pathlib import Path
from typing import Any

import msgspec

from ..errors import PortalError, PortalVersionError
from . import cscan, decode
from .abi import HOST_HEARTBEAT_OFF, SLOT_SEQ_OFF, C, ffi, slot_offset, store
from .arch import arch_by_id
from .types import GuestCounters, SyscallMeta

U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
_G = "struct sa_guest_header"
_H = "struct sa_host_header"
MAGIC_OFF = C.SA_GUEST_OFF + ffi.offsetof(_G, "magic")
BOOT_OFF = C.SA_GUEST_OFF + ffi.offsetof(_G, "boot_id")
STATE_OFF = C.SA_GUEST_OFF + ffi.offsetof(_G, "state")
HOOKS_STATUS_OFF = C.SA_GUEST_OFF + ffi.offsetof(_G, "hooks_status")
HOOKED_ENTRIES_OFF = C.SA_GUEST_OFF + ffi.offsetof(_G, "hooked_entries")
HOOK_COUNT_OFF = C.SA_HOST_OFF + ffi.offsetof(_H, "hook_count")
DEADLINE_OFF = C.SA_HOST_OFF + ffi.offsetof(_H, "deadline_ms")
ATTACHED_OFF = C.SA_HOST_OFF + ffi.offsetof(_H, "attached")
_OWNER_OFF = ffi.offsetof("struct sa_slot_guest", "owner")
#: the longest a poller sleeping on the doorbell goes without a heartbeat
MAX_BEAT_GAP = 0.25
#: how long a host's heartbeat must stand still to count it as gone (its
#: poller beats at least every MAX_BEAT_GAP)
LIVENESS_WINDOW = 2.5 * MAX_BEAT_GAP


class Region:
    """The mapped region of ``path`` once a ready module's header was checked.

    ``mm`` is the mapping itself, for the parts that read and write it."""

    def __init__(self, path: Path, mm: mmap.mmap, header: Any) -> None:
        self.path = path
        self.mm = mm
        self.boot_id = int(header.boot_id)
        self.nr_syscalls = int(header.nr_syscalls)
        #: entries of the compat ABI's table (0: the guest has none)
        self.nr_syscalls32 = int(header.nr_syscalls32)
        self.arch = arch_by_id(int(header.arch))
        #: the mapping as a C pointer for the C scan (made on first use)
        self._cptr: Any = None

    def cpointer(self) -> Any:
        """The mapping as a cffi ``uint8_t[]`` of :mod:`.cscan`'s ffi (kept
        until :meth:`close`, which releases it before unmapping)."""
        if self._cptr is None:
            self._cptr = cscan.ffi.from_buffer("uint8_t[]", self.mm, require_writable=True)
        return self._cptr

    @classmethod
    async def attach(
        cls, path: Path, timeout: float, offset: int = 0, size: int | None = None
    ) -> Region:
        """Map ``path`` and wait up to ``timeout`` s for a ready module whose
        magic, version and layout this host knows (:class:`PortalVersionError`).

        The region is the whole file, or ``size`` bytes from ``offset`` (a
        guest whose region is a range of its own RAM, mapped from the file
        that backs that RAM)."""
        fd = os.open(path, os.O_RDWR)
        try:
            if size is None:
                size = os.fstat(fd).st_size - offset
            if size < C.SA_REGION_MIN_SIZE:
                raise PortalVersionError(f"{path}: {size} bytes is too small")
            mm = mmap.mmap(fd, size, mmap.MAP_SHARED, offset=offset)
        finally:
            os.close(fd)
        try:
            deadline = time.monotonic() + timeout
            while True:
                magic = U64.unpack_from(mm, MAGIC_OFF)[0]
                state = U32.unpack_from(mm, STATE_OFF)[0]
                if magic == C.SA_MAGIC and state == C.SA_STATE_READY:
                    break
                if magic not in (0, C.SA_MAGIC) or time.monotonic() > deadline:
                    raise PortalVersionError(
                        f"no ready portal in {path} (magic {magic:#x}, state {state})"
                    )
                await asyncio.sleep(0.05)
            header = decode.check_header(mm[: C.SA_GUEST_SIZE])
        except BaseException:
            mm.close()
            raise
        return cls(path, mm, header)

    async def refuse_second_host(self) -> None:
        """Two hosts polling one region would steal each other's traps.  A
        host that died leaves ``attached`` set but its heartbeat still."""
        mm = self.mm
        if not U32.unpack_from(mm, ATTACHED_OFF)[0]:
            return
        beat = U64.unpack_from(mm, HOST_HEARTBEAT_OFF)[0]
        await asyncio.sleep(LIVENESS_WINDOW)
        if U64.unpack_from(mm, HOST_HEARTBEAT_OFF)[0] != beat:
            raise PortalError(f"another host is attached to {self.path}")

    def gone(self) -> str:
        """Why the region no longer holds the module attached to, or ``""``."""
        mm = self.mm
        if U64.unpack_from(mm, MAGIC_OFF)[0] != C.SA_MAGIC:
            return "the guest module was unloaded (or the portal's magic overwritten)"
        if U32.unpack_from(mm, BOOT_OFF)[0] != self.boot_id:
            return "the guest module was reloaded"
        if U32.unpack_from(mm, STATE_OFF)[0] != C.SA_STATE_READY:
            return "the guest module is unloading (or its state was overwritten)"
        return ""

    def beat(self) -> None:
        """Move the host's heartbeat, which the guest watches."""
        hb = U64.unpack_from(self.mm, HOST_HEARTBEAT_OFF)[0]
        store(U64, self.mm, HOST_HEARTBEAT_OFF, (hb + 1) & (2**64 - 1))

    def set_attached(self, deadline_ms: int) -> None:
        """Tell the guest a host answers, and how long its tasks wait for it."""
        store(U32, self.mm, DEADLINE_OFF, deadline_ms)
        store(U32, self.mm, ATTACHED_OFF, 1)

    def counters(self) -> GuestCounters:
        """The module's counters, read now (:class:`PortalError` if garbled)."""
        return decode.counters(self.mm[: C.SA_GUEST_SIZE])

    def syscalls(self) -> list[SyscallMeta]:
        """The guest's syscall metadata table, checked."""
        n = self.nr_syscalls
        table = decode.meta_table(self.mm[C.SA_META_OFF : C.SA_META_OFF + n * C.SA_META_SIZE], n)
        base = self.arch.nr_base
        if not base:
            return table
        # the numbers user space passes (the guest names entries by index)
        return [msgspec.structs.replace(m, nr=m.nr + base) for m in table]

    def syscalls32(self) -> list[SyscallMeta]:
        """The compat ABI's metadata table (x86_64: ia32), checked; empty if none."""
        n = self.nr_syscalls32
        off = C.SA_META32_OFF
        return decode.meta_table(self.mm[off : off + n * C.SA_META_SIZE], n)

    def hooked_entries(self) -> int:
        """How many distinct syscall entries the guest has hooked now."""
        return int(U32.unpack_from(self.mm, HOOKED_ENTRIES_OFF)[0])

    def busy_slots(self) -> int:
        """Slots a guest task holds right now."""
        mm = self.mm
        return sum(
            1 for i in range(C.SA_SLOT_COUNT) if U32.unpack_from(mm, slot_offset(i) + _OWNER_OFF)[0]
        )

    def slot_seqs(self) -> list[int]:
        """Every slot's guest seq word, in one strided read."""
        view = memoryview(self.mm).cast("I")
        try:
            first = (C.SA_SLOTS_OFF + SLOT_SEQ_OFF) // 4
            step = C.SA_SLOT_SIZE // 4
            return view[first : first + step * C.SA_SLOT_COUNT : step].tolist()
        finally:
            view.release()

    def close(self, *, detach: bool) -> None:
        """Unmap; with ``detach``, first tell the guest no host answers any more."""
        if detach:
            store(U32, self.mm, ATTACHED_OFF, 0)
        if self._cptr is not None:
            cscan.ffi.release(self._cptr)
            self._cptr = None
        self.mm.close()
