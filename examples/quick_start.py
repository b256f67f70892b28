"""Quick start: an exec monitor and an all-syscall monitor for one process name.

Run:  syscalls-async run examples/quick_start.py -- cat /etc/passwd

Shows a ``Plugin`` subclass registering two hooks in ``__init__`` with bound
methods:

- every ``execve`` in the guest prints ``Process executing: <filename>`` (the
  filename is read from guest memory with ``await plugins.mem.read_str``);
- every syscall entered by a task whose comm is ``cat`` prints
  ``Syscall: sys_<name> by cat`` (``comm_filter`` keeps the other processes
  out, all-syscall handlers get no unpacked arguments).

Change ``TARGET`` to watch another program.
"""

from syscalls_async import Plugin, plugins

TARGET = "cat"


class MySyscallMonitor(Plugin):
    def __init__(self):
        plugins.syscalls.syscall("on_sys_execve_enter")(self.monitor_execve)
        plugins.syscalls.syscall("on_all_sys_enter", comm_filter=TARGET)(self.monitor_all)

    async def monitor_execve(self, regs, proto, syscall, filename, argv, envp):
        """Monitor process execution."""
        filename_str = await plugins.mem.read_str(filename)
        print(f"Process executing: {filename_str}", flush=True)

    def monitor_all(self, regs, proto, syscall):
        """Monitor all syscalls of one process name (a plain ``def`` handler works too)."""
        print(f"Syscall: {proto.name} by {syscall.task.comm}", flush=True)
