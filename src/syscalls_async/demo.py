"""``syscalls-async demo``: one boot of the bundled guest, the framework at work.

Five effects, each under its heading, then the counts: an exec monitor, a
blocked ``/etc/shadow``, failed opens seen by a return hook, a skipped ioctl
answered by the host, and a hook that turns itself off and on again.  The
hooks live on a :class:`~syscalls_async.api.Plugins` of the demo's own, so
running it leaves the global ``plugins`` as it found them::

    import asyncio
    from syscalls_async import demo

    asyncio.run(demo.main(smp=2))
"""

from __future__ import annotations

import errno
import time
from collections.abc import Sequence

from ._text import printable
from .api import Session
from .api.plugins import Plugins
from .errors import GuestMemoryError
from .machine import AddSpec, CommandResult
from .syscalls import ValueFilter
from .syscalls.event import SyscallEvent
from .syscalls.prototypes import SyscallPrototype


class DemoHooks:
    """The demo's hooks: what a plugin file would hold, with counters for the summary.

    They register on ``plugins``, the demo's own :class:`Plugins` (never the global one).
    """

    EACCES = 13
    SAMPLE_LIMIT = 5

    def __init__(self, plugins: Plugins) -> None:
        self.plugins = plugins
        self.execs = 0
        self.blocked = 0
        self.failed_opens = 0
        self.skipped_ioctls = 0
        self.sampled = 0
        self.sampled_total = 0
        sc = plugins.syscalls
        sc.syscall("on_sys_execve_enter")(self.exec_monitor)
        sc.syscall(
            "on_sys_openat_enter", arg_filters=[None, ValueFilter.string_contains("/etc/shadow")]
        )(self.shadow_blocker)
        sc.syscall("on_sys_openat_return", retval_filter=ValueFilter.error())(self.failed_open)
        sc.syscall("on_sys_ioctl_enter", comm_filter="send_syscall", arg_filters=[None, 0xABCD])(
            self.skip_ioctl
        )

    @staticmethod
    def say(text: str) -> None:
        print(f"  hook> {printable(text)}", flush=True)  # paths and comms are the guest's

    async def exec_monitor(
        self,
        regs: object,
        proto: SyscallPrototype,
        syscall: SyscallEvent,
        filename: int,
        argv: int,
        envp: int,
    ) -> None:
        self.execs += 1
        try:
            path = await self.plugins.mem.read_str(filename)
            args = await self.plugins.mem.read_ptrlist(argv)
        except GuestMemoryError as exc:
            self.say(f"[exec] unreadable arguments: {exc}")
            return
        self.say(f"[exec] pid {syscall.pid}: {path} argv={args}")

    async def shadow_blocker(
        self,
        regs: object,
        proto: SyscallPrototype,
        syscall: SyscallEvent,
        dirfd: int,
        pathname: int,
        flags: int,
        mode: int,
    ) -> None:
        # the string filter already matched (checked in the guest and again on the host)
        path = await self.plugins.mem.read_str(pathname)
        syscall.skip_syscall = True
        syscall.retval = -self.EACCES
        self.blocked += 1
        self.say(f"[block] {syscall.task.comm}: openat({path!r}) skipped, returns -EACCES")

    async def failed_open(
        self, regs: object, proto: SyscallPrototype, syscall: SyscallEvent
    ) -> None:
        self.failed_opens += 1
        try:
            path = await self.plugins.mem.read_str(syscall.args[1])
        except GuestMemoryError:
            path = f"<unreadable {syscall.args[1]:#x}>"
        err = -syscall.retval
        self.say(
            f"[failed open] {syscall.task.comm}: {path} -> -{err} ({errno.errorcode.get(err, '?')})"
        )

    def skip_ioctl(
        self,
        regs: object,
        proto: SyscallPrototype,
        syscall: SyscallEvent,
        fd: int,
        op: int,
        arg: int,
    ) -> None:
        self.skipped_ioctls += 1
        syscall.skip_syscall = True
        syscall.retval = 43
        self.say(f"[skip] ioctl(fd={fd}, op={op:#x}) never reaches the kernel; returns 43")

    async def sample(self, regs: object, proto: SyscallPrototype, syscall: SyscallEvent) -> None:
        """All syscalls of `ls`, until SAMPLE_LIMIT: then the hook disables itself."""
        self.sampled += 1
        self.sampled_total += 1
        self.say(f"[sample {self.sampled}/{self.SAMPLE_LIMIT}] {proto.name} by {syscall.task.comm}")
        if self.sampled >= self.SAMPLE_LIMIT:
            await self.plugins.syscalls.disable_syscall(self.sample)
            self.say("[sample] limit reached: hook disabled (off in the guest too)")


async def main(
    *,
    smp: int = 2,
    memory_mib: int = 1024,
    console_log: str | None = None,
    timeout: float = 600,
    add: Sequence[AddSpec] = (),
    arch: str = "x86_64",
) -> int:
    """The framework at work on one boot: monitor, block, track, skip, count, toggle."""
    start = time.monotonic()
    plugins = Plugins()
    hooks = DemoHooks(plugins)

    def heading(text: str) -> None:
        print(f"\n== {text} ==", flush=True)

    async def show(command: str) -> CommandResult:
        print(f"$ {command}", flush=True)
        result = await session.run(command, timeout=timeout)
        for stream, mark in ((result.stdout, "|"), (result.stderr, "!")):
            for line in stream.decode(errors="replace").splitlines():
                print(f"  {mark} {printable(line)}")
        print(f"  (exit status {result.exit_status})", flush=True)
        return result

    print(
        f"syscalls-async demo: booting the bundled {arch} guest with 4 hooks registered ...",
        flush=True,
    )
    async with Session(
        plugins, smp=smp, memory_mib=memory_mib, console_log=console_log, add=add, arch=arch
    ) as session:
        assert session.machine is not None
        print(
            f"guest ready in {time.monotonic() - start:.1f} s "
            f"(kernel {session.machine.kernel_release}); hooks are live",
            flush=True,
        )

        heading("1. exec monitor: every execve in the guest, with its argv")
        await show("/bin/ls /etc")

        heading("2. /etc/shadow blocked: openat with that path returns -EACCES, even for root")
        await show(
            "echo 'root:*:20000:0:99999:7:::' > /etc/sh.tmp && mv /etc/sh.tmp /etc/shadow"
            " && ls -l /etc/shadow && cat /etc/shadow"
        )

        heading("3. failed opens: a return hook with retval_filter=ValueFilter.error()")
        await show("cat /no/such/file; wc -l /etc/passwd/x; cat /etc/group")

        heading("4. skip and return value: ioctl(9, 0xabcd) answered by the host with 43")
        await show("send_syscall ioctl 9 0xabcd")
        await show("send_syscall ioctl 9 0x1234")  # not matched: the kernel says EBADF

        heading(
            f"5. dynamic control: count every syscall of `ls`, off after "
            f"{DemoHooks.SAMPLE_LIMIT}, then on again"
        )
        await plugins.syscalls.register(hooks.sample, "on_all_sys_enter", comm_filter="ls")
        print("  (registered with `await plugins.syscalls.register(...)`: live now)")
        await show("ls / > /dev/null")
        print(f"  sampled so far: {hooks.sampled}", flush=True)
        await show("ls / > /dev/null")
        print(
            f"  sampled so far: {hooks.sampled} (the hook is off: this ls went unseen)",
            flush=True,
        )
        hooks.sampled = 0
        await plugins.syscalls.enable_syscall(hooks.sample)
        print("  (budget reset, `await plugins.syscalls.enable_syscall(...)`)", flush=True)
        await show("ls / > /dev/null")
        print(f"  sampled so far: {hooks.sampled}", flush=True)
        stats = session.stats

    heading("counts")
    print(f"  execve calls seen          {hooks.execs}")
    print(f"  opens of /etc/shadow       {hooks.blocked} blocked")
    print(f"  failed opens               {hooks.failed_opens}")
    print(f"  ioctls skipped             {hooks.skipped_ioctls}")
    print(f"  ls syscalls sampled        {hooks.sampled_total} (the hook was off in between)")
    print(
        f"  dispatcher                 {stats.events} events, {stats.handler_calls} handler "
        f"calls, {stats.handler_errors} errors, {stats.handler_timeouts} timeouts"
    )
    print(f"\nguest stopped after {time.monotonic() - start:.1f} s; nothing left behind.")
    return 0
