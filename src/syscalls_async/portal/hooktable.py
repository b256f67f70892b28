"""The hook table in the region: generations, publication, the guest's ack.

The host writes a table (encoded by :mod:`.hooks`) and bumps its generation;
the guest takes it and acks that generation.  Events name the generation they
matched in, so the last few tables are kept to map a matched index to its hook.
"""

from __future__ import annotations

import asyncio
import mmap
import struct
import time
from collections.abc import Callable, Sequence

from ..errors import PortalError
from .abi import HOOKS_ACK_OFF, HOST_HOOKS_GEN_OFF, C, store
from .hooks import HookSpec, encode_hooks
from .region import HOOK_COUNT_OFF, HOOKS_STATUS_OFF, U32

#: table generations kept: a task may have matched in an older table and not yet published
KEEP_TABLES = 8
_I32 = struct.Struct("<i")


class HookTable:
    """The hook tables this host put in the region, by generation."""

    def __init__(self) -> None:
        #: the table last put in force
        self.hooks: tuple[HookSpec, ...] = ()
        #: its generation number
        self.gen = 0
        #: recent tables by generation: events name the one they matched in
        self.tables: dict[int, tuple[HookSpec, ...]] = {}
        self.lock = asyncio.Lock()
        #: the guest's first syscall number (set on attach)
        self.nr_base = 0

    def attach(self, mm: mmap.mmap, nr_base: int = 0) -> None:
        """Continue from the generation an earlier host left in the region;
        ``nr_base``: the guest's first syscall number (``ArchInfo.nr_base``)."""
        self.gen = U32.unpack_from(mm, HOST_HOOKS_GEN_OFF)[0]
        self.nr_base = nr_base

    def table_size(self, gen: int) -> int | None:
        """How many hooks table ``gen`` has, ``None`` if it is not a recent one."""
        table = self.tables.get(gen)
        return None if table is None else len(table)

    def publish(self, mm: mmap.mmap, hooks: Sequence[HookSpec]) -> int:
        """Write ``hooks`` as the next generation; returns that generation."""
        table = encode_hooks(hooks, self.nr_base)
        gen = (self.gen + 1) & 0xFFFFFFFF
        self.tables = {g: t for g, t in self.tables.items() if gen - g < KEEP_TABLES}
        self.tables[gen] = tuple(hooks)
        mm[C.SA_HOOKS_OFF : C.SA_HOOKS_OFF + len(table)] = table
        store(U32, mm, HOOK_COUNT_OFF, len(hooks))
        store(U32, mm, HOST_HOOKS_GEN_OFF, gen)
        self.gen = gen
        return gen

    async def wait_ack(self, live: Callable[[], mmap.mmap], gen: int, timeout: float) -> mmap.mmap:
        """Wait until the guest acks ``gen`` (``live()`` is asked for the region
        on every look, so a lost portal raises); refuses a table the guest refused."""
        mm = live()
        deadline = time.monotonic() + timeout
        while U32.unpack_from(mm, HOOKS_ACK_OFF)[0] != gen:
            if time.monotonic() > deadline:
                raise PortalError(f"guest did not take hook table {gen} in {timeout:g} s")
            await asyncio.sleep(0.001)
            mm = live()
        return mm

    def commit(self, mm: mmap.mmap, gen: int, hooks: Sequence[HookSpec]) -> None:
        """Put the acked table ``gen`` in force, unless the guest refused it."""
        status = _I32.unpack_from(mm, HOOKS_STATUS_OFF)[0]
        if status:
            raise PortalError(f"guest refused hook table {gen}: errno {-status}")
        self.hooks = tuple(hooks)
