"""``trace`` on the 32-bit guests decodes the stat structs each arch's calls fill.

armhf (ARM EABI) and mipsel (MIPS o32) have ``stat64``/``lstat64``/``fstat64``/
``fstatat64`` filling a ``struct stat64`` and the old ``stat``/``fstat`` filling
a ``struct stat``; the four layouts all differ.  Busybox's own ``stat`` goes
through ``statx`` there (glibc's time64 path), so the calls are issued raw by
``send_syscall`` into a buffer that is one of its own arguments, and what the
tracer decodes is compared with what busybox ``stat`` reports in the guest.
"""

from __future__ import annotations

import pytest
from arch_support import selected

from syscalls_async import Session
from syscalls_async.api import strace_decode as sd
from syscalls_async.api.trace import Tracer, TraceRecord

pytestmark = pytest.mark.parametrize("arch", selected(["armhf", "mipsel"]))

#: a writable guest buffer: send_syscall passes a non-hex argument as a pointer
#: to its own string (longer than any of the structs, 104 and 144 bytes)
BUF = "z" * 160
#: the stat calls of the 32-bit archs (kernel names) and what each one stats
CALLS = [
    ("stat64", f"send_syscall stat64 /etc/passwd {BUF}", "/etc/passwd"),
    ("lstat64", f"send_syscall lstat64 /etc {BUF}", "/etc"),
    ("fstat64", f"send_syscall fstat64 0 {BUF} </etc/passwd", "/etc/passwd"),
    ("fstatat64", f"send_syscall fstatat64 -64 /etc/passwd {BUF} 0", "/etc/passwd"),
    ("newstat", f"send_syscall stat /etc/passwd {BUF}", "/etc/passwd"),
    ("newfstat", f"send_syscall fstat 0 {BUF} </etc", "/etc"),
]


async def test_trace_decodes_the_stat_structs_as_the_guest_reports_them(
    arch: str, arch_session: Session
) -> None:
    records: list[TraceRecord] = []
    tracer = Tracer(
        arch_session.plugins,
        comm="send_syscall",
        syscalls=[name for name, _, _ in CALLS],
        emit=records.append,
    )
    await tracer.start()
    script = "; ".join(command for _, command, _ in CALLS)
    r = await arch_session.run(f"{script}; stat -c '%n %s %f' /etc/passwd /etc")
    await tracer.stop()
    assert r.exit_status == 0, r
    *returned, passwd, etc = r.stdout.decode().splitlines()
    assert returned == ["send_syscall: syscall returned 0"] * len(CALLS)
    reported = {}
    for line in (passwd, etc):
        path, size, mode = line.split()
        reported[path] = f"{{st_mode={sd.file_mode(int(mode, 16))}, st_size={size}, ...}}"
    assert reported["/etc/passwd"].startswith("{st_mode=S_IFREG|0644, st_size=30,"), reported
    assert [r.name for r in records] == [f"sys_{name}" for name, _, _ in CALLS]
    for record, (_, _, path) in zip(records, CALLS, strict=True):
        assert record.retval == 0
        assert f", {reported[path]}" in record.format(), record.format()
