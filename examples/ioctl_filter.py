"""Complex filtering: a process name, an argument range, a bitmask and the return value.

Run (x86_64, aarch64, armhf):
      syscalls-async run examples/ioctl_filter.py -- sh -c '
          send_syscall ioctl 1 0x5451 0x2;    # arg lacks bit 0      -> filtered out
          send_syscall ioctl 1 0x1234 0x1;    # cmd out of range     -> filtered out
          send_syscall ioctl 1 0x5401 0x1;    # TCGETS fails         -> filtered out
          send_syscall ioctl 1 0x5451 0x1'    # FIOCLEX succeeds     -> printed
Run (mipsel): the same with ``--arch mipsel`` before the file, FIOCLEX 0x6601
and TCGETS 0x540d.

One return hook on ``ioctl`` that fires only when all of these hold:
the task is ``send_syscall`` (``comm_filter``), ``cmd`` is in the guest's
range (``ValueFilter.range``, inclusive), ``arg`` has bit 0 set
(``ValueFilter.bitmask_set``) and the call succeeded
(``retval_filter=ValueFilter.success()``; a return value filter makes the hook
a return hook).  Of the four calls above only the last prints
``Targeted ioctl: fd=1, cmd=0x5451, arg=0x1 -> 0`` (``cmd=0x6601`` on MIPS).

The reference filters ``0x1000..0x2000``; no ioctl in that range succeeds on
the guest's file descriptors, so this port uses a range holding ``FIOCLEX``
(set close-on-exec: succeeds on any descriptor and ignores its argument) and
``TCGETS`` (read terminal settings: fails with ENOTTY on a pipe).

Request numbers differ between architectures, so the hook takes those of the
guest it runs on, ``plugins.arch`` (``syscalls-async run --arch`` sets it
before this file is imported).  The numbers come from each kernel's uapi
``<asm/ioctls.h>``: x86, arm and arm64 use the generic ``'T'`` block, MIPS
has its own numbering, with FIOCLEX in the ``'f'`` block.
"""

from typing import NamedTuple

from syscalls_async import ValueFilter, plugins


class Requests(NamedTuple):
    """One architecture's ioctl request numbers, and the range the hook accepts."""

    fioclex: int
    tcgets: int
    cmd_range: tuple[int, int]


GENERIC = Requests(fioclex=0x5451, tcgets=0x5401, cmd_range=(0x5400, 0x54FF))
#: by ``--arch`` name
REQUESTS = {
    "x86_64": GENERIC,
    "aarch64": GENERIC,
    "armhf": GENERIC,
    "mipsel": Requests(fioclex=0x6601, tcgets=0x540D, cmd_range=(0x5400, 0x66FF)),
}
ioctls = REQUESTS[plugins.arch]


@plugins.syscalls.syscall(
    "sys_ioctl",
    comm_filter="send_syscall",
    arg_filters=[
        None,  # fd: any
        ValueFilter.range(*ioctls.cmd_range),  # cmd: in range
        ValueFilter.bitmask_set(0x0001),  # arg: has bit 0 set
    ],
    retval_filter=ValueFilter.success(),
)
def monitor_specific_ioctls(regs, proto, syscall, fd, cmd, arg):
    """Monitor specific ioctl patterns."""
    print(f"Targeted ioctl: fd={fd}, cmd={cmd:#x}, arg={arg:#x} -> {syscall.retval}", flush=True)
