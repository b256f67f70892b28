"""The reference's skip-and-return-value test, ported to async.

Run:  syscalls-async run examples/skip_ioctl.py -- send_syscall ioctl 9 0xabcd
Prints "send_syscall: syscall returned 43": the ioctl never reaches the kernel.
"""

from syscalls_async import plugins


@plugins.syscalls.syscall(
    "on_sys_ioctl_enter", comm_filter="send_syscall", arg_filters=[None, 0xABCD]
)
def skip_ioctl(regs, proto, syscall, fd, op, arg):
    assert fd == 9, f"Expected fd 9, got {fd:#x}"
    assert op == 0xABCD, f"Expected op 0xabcd, got {op:#x}"
    syscall.skip_syscall = True  # the verdict first: a failing print cannot undo it
    syscall.retval = 43
    print(f"ioctl(fd={fd}, op={op:#x}) skipped, returning 43", flush=True)
