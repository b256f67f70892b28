"""Dynamic control: a hook that turns itself off after N events and back on later.

Run:  syscalls-async run examples/dynamic_toggle.py -- sh -c 'ls / >/dev/null; ls /tmp >/dev/null'

Two all-syscall hooks watch every task named ``ls``:

- ``sample`` counts syscalls and, on its ``LIMIT``-th (5th), awaits
  ``plugins.syscalls.disable_syscall(self.sample)``: when that returns the
  hook is off in the guest, and the rest of the process's syscalls do not
  even leave it;
- ``count_all`` counts every syscall, as a reference.

When an ``ls`` calls ``exit_group``, ``report`` prints both counts
(``ls[PID] exiting: sample hook saw 5 syscalls, count_all saw 37``) and
re-enables ``sample`` by name with ``await
plugins.syscalls.enable_syscall("sample")``, so the second ``ls`` is sampled
again: the output shows 5 against the full count twice.
"""

from syscalls_async import Plugin, plugins

LIMIT = 5
TARGET = "ls"


class SyscallSampler(Plugin):
    def __init__(self):
        self.sampled = 0
        self.total = 0
        plugins.syscalls.syscall("on_all_sys_enter", comm_filter=TARGET)(self.sample)
        plugins.syscalls.syscall("on_all_sys_enter", comm_filter=TARGET)(self.count_all)
        plugins.syscalls.syscall("on_sys_exit_group_enter", comm_filter=TARGET)(self.report)

    async def sample(self, regs, proto, syscall):
        self.sampled += 1
        print(f"sample {self.sampled}/{LIMIT}: {proto.name}", flush=True)
        if self.sampled == LIMIT:
            await plugins.syscalls.disable_syscall(self.sample)
            print(f"sample hook disabled after {LIMIT} syscalls", flush=True)

    def count_all(self, regs, proto, syscall):
        self.total += 1

    async def report(self, regs, proto, syscall, status):
        print(
            f"{syscall.task.comm}[{syscall.pid}] exiting: sample hook saw {self.sampled} "
            f"syscalls, count_all saw {self.total}",
            flush=True,
        )
        self.sampled = self.total = 0
        await plugins.syscalls.enable_syscall("sample")
        print("sample hook enabled again", flush=True)
