"""Complex filtering: a process name, an argument range, a bitmask and the return value.

Run:  syscalls-async run examples/ioctl_filter.py -- sh -c '
          send_syscall ioctl 1 0x5451 0x2;    # arg lacks bit 0      -> filtered out
          send_syscall ioctl 1 0x1234 0x1;    # cmd out of range     -> filtered out
          send_syscall ioctl 1 0x5413 0x1;    # TIOCGWINSZ fails     -> filtered out
          send_syscall ioctl 1 0x5451 0x1'    # FIOCLEX succeeds     -> printed

One return hook on ``ioctl`` that fires only when all of these hold:
the task is ``send_syscall`` (``comm_filter``), ``cmd`` is in
``0x5400..0x54ff`` (``ValueFilter.range``, inclusive), ``arg`` has bit 0 set
(``ValueFilter.bitmask_set``) and the call succeeded
(``retval_filter=ValueFilter.success()``; a return value filter makes the hook
a return hook).  Of the four calls above only the last prints
``Targeted ioctl: fd=1, cmd=0x5451, arg=0x1 -> 0``.

The reference filters ``0x1000..0x2000``; no ioctl in that range succeeds on
the guest's file descriptors, so this port uses the ``'T'`` block, where
``FIOCLEX`` (0x5451, set close-on-exec) succeeds on any descriptor and ignores
its argument.
"""

from syscalls_async import ValueFilter, plugins


@plugins.syscalls.syscall(
    "sys_ioctl",
    comm_filter="send_syscall",
    arg_filters=[
        None,  # fd: any
        ValueFilter.range(0x5400, 0x54FF),  # cmd: in range
        ValueFilter.bitmask_set(0x0001),  # arg: has bit 0 set
    ],
    retval_filter=ValueFilter.success(),
)
def monitor_specific_ioctls(regs, proto, syscall, fd, cmd, arg):
    """Monitor specific ioctl patterns."""
    print(f"Targeted ioctl: fd={fd}, cmd={cmd:#x}, arg={arg:#x} -> {syscall.retval}", flush=True)
