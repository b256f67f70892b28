"""A host that hooks getppid of send_syscall and never answers (killed by a test).

Usage: python hanging_host.py SHM_PATH DEADLINE_MS
"""

from __future__ import annotations

import asyncio
import sys

from syscalls_async.portal import HookSpec, Portal, Trap
from syscalls_async.syscalls import syscall_nr


async def main(shm: str, deadline_ms: int) -> None:
    async def hang(trap: Trap) -> None:
        print("trapped", trap.event.tgid, flush=True)
        await asyncio.Event().wait()

    async with Portal(shm, hang, deadline_ms=deadline_ms) as portal:
        await portal.set_hooks(
            [HookSpec(id=1, nr=syscall_nr(portal.syscalls, "getppid"), comm="send_syscall")]
        )
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
