"""``plugins.portal`` and ``plugins.OSI``: the trapped task's process, as the guest sees it."""

from __future__ import annotations

import msgspec

from ..portal.types import FdInfo, Mapping, ProcEntry, ProcInfo
from .mem import trap


class OSIProc(msgspec.Struct, frozen=True):
    """A process as OS introspection describes it."""

    name: str
    pid: int
    ppid: int
    args: tuple[str, ...]
    exe: str


class _ProcessQueries:
    """What both views share: mappings, open files, the process list."""

    async def get_mappings(self) -> list[Mapping]:
        """The calling process's memory mappings in address order (like /proc/PID/maps)."""
        return await trap().mappings()

    async def get_fds(self) -> list[FdInfo]:
        """Its open file descriptors with their paths."""
        return await trap().fds()

    async def get_proc_list(self) -> list[ProcEntry]:
        """Every process in the guest."""
        return await trap().processes()


class PortalAPI(_ProcessQueries):
    """``plugins.portal``: raw portal requests for the task being handled."""

    async def get_proc(self) -> ProcInfo:
        """pid, tgid, ppid, uid, comm, exe, cwd and argv of the calling process."""
        return await trap().proc_info()


class OSI(_ProcessQueries):
    """``plugins.OSI``: the same facts in OS-introspection terms."""

    async def get_proc(self) -> OSIProc | None:
        info = await trap().proc_info()
        return OSIProc(name=info.comm, pid=info.tgid, ppid=info.ppid, args=info.argv, exe=info.exe)
