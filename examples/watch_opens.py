"""Watch every file a program opens, without ever making it wait: an observe-only hook.

Run:  syscalls-async run --stats examples/watch_opens.py -- sh -c 'cat /etc/passwd; cat /nope'

``read_only=True`` makes the hook observe-only: the guest writes each openat into a
per-CPU ring with what was captured at the call (the arguments, the path: the first
256 bytes of a ``const char *`` argument) and the task goes on at once.  The return
event carries its enter's arguments, so one handler on the return prints the path
and the result together: ``open /etc/passwd by cat[42] = 3`` (``-ENOENT`` and the
like for failures; ``...`` after a path longer than the capture).  ``--stats``
prints at the end what was delivered and what was dropped (``ring_drops``, per CPU;
``hook_drops``, per handler), which stays 0 unless the rings overflow.
"""

import errno

from syscalls_async import plugins


@plugins.syscalls.syscall("on_sys_openat_return", read_only=True)
async def watch_open(regs, proto, syscall, dfd, filename, flags, mode):
    path = syscall.strings[1]
    shown = "?" if path.fault else path.text + ("..." if path.truncated else "")
    ret = syscall.retval
    result = f"-{errno.errorcode.get(-ret, -ret)}" if ret < 0 else str(ret)
    print(f"open {shown} by {syscall.task.comm}[{syscall.pid}] = {result}", flush=True)
