"""A few hand-written x86_64 syscall prototypes for host-only tests (no guest).

Plus one syscall number without metadata, as a kernel reports unknown ones.
"""

from __future__ import annotations

from syscalls_async.syscalls import PrototypeTable, SyscallPrototype

OPENAT = SyscallPrototype(
    "sys_openat",
    257,
    4,
    ("int", "const char *", "int", "umode_t"),
    ("dfd", "filename", "flags", "mode"),
)
IOCTL = SyscallPrototype(
    "sys_ioctl",
    16,
    3,
    ("unsigned int", "unsigned int", "unsigned long"),
    ("fd", "cmd", "arg"),
)
GETPID = SyscallPrototype("sys_getpid", 39, 0, (), ())
READ = SyscallPrototype(
    "sys_read",
    0,
    3,
    ("unsigned int", "char *", "size_t"),
    ("fd", "buf", "count"),
)
LSEEK = SyscallPrototype(
    "sys_lseek",
    8,
    3,
    ("unsigned int", "off_t", "unsigned int"),
    ("fd", "offset", "whence"),
)
UNKNOWN_NR = 400
UNKNOWN = SyscallPrototype(f"sys_unknown_{UNKNOWN_NR}", UNKNOWN_NR, 0, (), (), known=False)

PROTOS = (OPENAT, IOCTL, GETPID, READ, LSEEK, UNKNOWN)


def make_table() -> PrototypeTable:
    return PrototypeTable(PROTOS)
