"""Process monitoring: every execve with its filename and argv, logged to a file.

Run:  syscalls-async run examples/process_monitor.py -- sh -c '/bin/ls /etc; send_syscall getuid'

For each ``execve`` in the guest, prints ``New process: <filename>`` and
``Arguments: [...]`` (argv read with ``await plugins.mem.read_ptrlist``) and
appends ``<filename> <argv...>`` to a log file on the host:
``$PROCESS_LOG`` if set, else ``process_log.txt`` in the host's temp folder
(``/tmp/process_log.txt``), never the current directory.

Busybox's shell runs its own applets (``ls``, ``cat``, ...) without an
``execve`` when they are named without a path, and starts itself through
``/proc/self/exe``; ``/bin/ls`` and programs outside busybox (``send_syscall``)
are real execs.  The output starts with the shells that run the command.
"""

import os
import tempfile
from pathlib import Path

from syscalls_async import plugins

LOG = Path(os.environ.get("PROCESS_LOG") or Path(tempfile.gettempdir()) / "process_log.txt")


@plugins.syscalls.syscall("on_sys_execve_enter")
async def track_process_creation(regs, proto, syscall, filename, argv, envp):
    """Monitor process creation."""
    try:
        # read string arguments from guest memory
        filename_str = await plugins.mem.read_str(filename)
        args_list = await plugins.mem.read_ptrlist(argv)
    except Exception as e:
        print(f"Error reading process arguments: {e}", flush=True)
        return
    print(f"New process: {filename_str}", flush=True)
    print(f"Arguments: {args_list}", flush=True)
    log(f"{filename_str} {' '.join(args_list)}")


def log(line):
    """Append one line to the log (small and local: fine to do inline in a handler)."""
    with LOG.open("a") as f:
        f.write(line + "\n")
