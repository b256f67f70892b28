"""A guest that changes its syscall metadata cannot change what later runs see."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from syscalls_async import Session
from syscalls_async.api import Plugins
from syscalls_async.machine import Image, Machine
from syscalls_async.portal.abi import C, ffi

NR_OPENAT = 257  # x86_64
NAME_LEN = 40


@contextlib.contextmanager
def renamed_in_the_region(shm: Path, nr: int, name: bytes) -> Iterator[None]:
    """What a guest that reloads the module with doctored metadata shows the host."""
    off = C.SA_META_OFF + nr * C.SA_META_SIZE + ffi.offsetof("struct sa_meta", "name")
    with shm.open("r+b", buffering=0) as f:
        f.seek(off)
        original = f.read(NAME_LEN)
        assert original.rstrip(b"\0") == b"sys_openat"
        f.seek(off)
        f.write(name.ljust(NAME_LEN, b"\0"))
        try:
            yield
        finally:
            f.seek(off)
            f.write(original)


async def test_a_guest_renaming_a_syscall_does_not_poison_later_runs(
    machine: Machine, cached_image: Image
) -> None:
    with renamed_in_the_region(machine.shm_path, NR_OPENAT, b"sys_openaz"):
        async with Session(Plugins(), machine=machine) as session:
            # this session believes its guest (it is the guest's own table) ...
            api = session.plugins.syscalls
            assert api.get_syscall_info_by_name("openaz") is not None
            assert api.get_syscall_info_by_name("openat") is None
    # ... but a later run, before it boots, sees the image's pristine table
    later = Plugins().syscalls
    proto = later.get_syscall_info_by_name("openat")
    assert proto is not None and proto.nr == NR_OPENAT
    assert later.get_syscall_info_by_name("openaz") is None
    later.syscall("openat")(lambda regs, proto, syscall: None)
