"""Return value analysis: every failed openat, with its path and errno, logged to a file.

Run:  syscalls-async run examples/failed_opens.py -- \\
          sh -c 'cat /no/such/file; wc -l /etc/passwd/x; cat /etc/group'

A return hook with ``retval_filter=ValueFilter.error()``: only calls that
returned a negative value reach the handler, so the successful open of
``/etc/group`` prints nothing.  The handler takes no unpacked arguments and
reads the path from ``syscall.args[1]`` (openat's ``pathname``; the return
event carries the arguments the call was made with).  Each failure prints
``Failed to open: <path> (error: <errno> <name>) in <comm>`` (here ENOENT
from ``cat``, ENOTDIR from ``wc``) and is appended to
``$FAILED_ACCESS_LOG`` if set, else ``failed_access.log`` in the host's temp
folder (``/tmp/failed_access.log``).

The reference hooks ``open``; busybox on x86_64 calls ``openat``.
"""

import errno
import os
import tempfile
from pathlib import Path

from syscalls_async import ValueFilter, plugins

LOG = Path(os.environ.get("FAILED_ACCESS_LOG") or Path(tempfile.gettempdir()) / "failed_access.log")


@plugins.syscalls.syscall("on_sys_openat_return", retval_filter=ValueFilter.error())
async def track_failed_opens(regs, proto, syscall):
    """Track failed file open attempts."""
    filename = syscall.args[1]  # openat(dirfd, pathname, flags, mode)
    try:
        path_str = await plugins.mem.read_str(filename)
    except Exception as e:
        print(f"Error processing failed open: {e}", flush=True)
        return
    error_code = -syscall.retval
    name = errno.errorcode.get(error_code, "?")
    print(
        f"Failed to open: {path_str} (error: {error_code} {name}) in {syscall.task.comm}",
        flush=True,
    )
    log(f"{path_str} {error_code}")


def log(line):
    """Append one line to the log (small and local: fine to do inline in a handler)."""
    with LOG.open("a") as f:
        f.write(line + "\n")
