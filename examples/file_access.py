"""File access monitoring: alert on sensitive files, block /etc/shadow.

Run:  syscalls-async run examples/file_access.py -- \\
          sh -c 'echo root:x:0 > /etc/sh.tmp; mv /etc/sh.tmp /etc/shadow; ls /etc;
                 cat /etc/passwd; cat /etc/shadow'

Every ``openat`` is checked: a path naming ``/etc/passwd``, ``/etc/shadow`` or
``/etc/ssh/`` prints ``ALERT: Access to sensitive file: <path>``, and an open
of ``/etc/shadow`` is skipped with the return value ``-13`` (EACCES), so
``cat /etc/shadow`` fails with ``Permission denied`` (exit status 1) although
the file exists and the guest runs as root.

The workload creates /etc/shadow with ``mv`` inside /etc (a rename, not an
open): ``echo > /etc/shadow`` would itself be blocked, and so would a ``mv``
from /tmp, which is another file system (mv copies then).  Busybox on x86_64 opens
files with ``openat``; there is no ``open`` call to hook.

This is a path check on the string the program passed: ``cd /etc; cat shadow``
is not caught.  It shows the mechanism, it is not a sandbox.

The handler decides its verdict before it prints: with the output piped into
``head -1``, a later ``print`` raises ``BrokenPipeError``, and a verdict set
after it would never be given (register with ``on_error="fail_closed"`` to
refuse the call whenever the handler fails).
"""

from syscalls_async import plugins

SENSITIVE = ("/etc/passwd", "/etc/shadow", "/etc/ssh/")
EACCES = 13


@plugins.syscalls.syscall("on_sys_openat_enter")
async def monitor_file_access(regs, proto, syscall, dirfd, pathname, flags, mode):
    """Monitor file access attempts."""
    try:
        path_str = await plugins.mem.read_str(pathname)
    except Exception as e:
        print(f"Error reading pathname: {e}", flush=True)
        return
    blocked = "/etc/shadow" in path_str
    if blocked:
        # the verdict before any print: a print that fails (say, into a closed pipe)
        # raises, and what the handler had not decided yet would not happen
        syscall.skip_syscall = True
        syscall.retval = -EACCES
    if any(s in path_str for s in SENSITIVE):
        print(f"ALERT: Access to sensitive file: {path_str} by {syscall.task.comm}", flush=True)
        if blocked:
            print(f"BLOCKED: {path_str} (returning -{EACCES}, EACCES)", flush=True)
