"""The reference system's own syscall test plugin, ported to async, on the real guest.

Plus what its current registration API adds (issue 11): ``read_only``,
``enabled=False``, plain-str filters, unregistering one registration by its
handle, all registrations of a function or of a name.  Every count is final
when ``session.run`` returns: hooks block the task until their handlers ran.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from syscalls_async import ReadOnlyHookError, Session, ValueFilter, plugins
from syscalls_async.api import Plugin
from syscalls_async.api.syscalls import SyscallsAPI

RET = "send_syscall: syscall returned"
COMM = "send_syscall"
CLONE_ARGS = (
    0x1111111111111111,
    0x2222222222222222,
    0x3333333333333333,
    0x4444444444444444,
    0x5555555555555555,
)


class ReferenceTest(Plugin):
    """What the reference's test plugin registers, with ``await`` for ``yield from``."""

    def __init__(self, sc: SyscallsAPI) -> None:
        self.sc = sc
        self.counts: Counter[str] = Counter()
        self.double_seen: list[int] = []
        sc.syscall("on_sys_ioctl_enter", comm_filter=COMM, arg_filters=[None, 0xABCD])(
            self.skip_retval
        )
        sc.syscall("on_sys_ioctl_return", comm_filter=COMM, arg_filters=[0x13], read_only=True)(
            self.ioctl_fd
        )
        sc.syscall("on_sys_ioctl_return", comm_filter=COMM, arg_filters=[0x13, 0x1234])(
            self.ioctl_fd_cmd
        )
        sc.syscall(
            "on_sys_ioctl_return",
            comm_filter=COMM,
            arg_filters=[0x13, ValueFilter.range(0x1234, 0x1235), 0xABCD],
        )(self.ioctl_all_three)
        sc.syscall(
            "on_sys_ioctl_return",
            comm_filter="never_runs",
            arg_filters=[None, ValueFilter.bitmask_set(0x1)],
        )(self.never)
        # one bound method twice, with the same filters: two registrations
        self.first = sc.syscall("on_sys_getpid_return", comm_filter=COMM)(self.double)
        sc.syscall("on_sys_getpid_return", comm_filter=COMM)(self.double)
        sc.syscall("on_sys_clone_enter", comm_filter=COMM, arg_filters=[CLONE_ARGS[0]])(
            self.fake_clone
        )
        sc.syscall("on_sys_openat_enter", comm_filter=COMM, arg_filters=[None, "/etc/"])(
            self.etc_open
        )

    def skip_retval(self, regs: Any, proto: Any, syscall: Any, fd: int, op: int, arg: int) -> None:
        assert (fd, op) == (9, 0xABCD)
        syscall.skip_syscall = True
        syscall.retval = 43

    def ioctl_fd(self, regs: Any, proto: Any, syscall: Any, fd: int) -> None:
        self.counts["fd"] += 1

    def ioctl_fd_cmd(self, regs: Any, proto: Any, syscall: Any, fd: int, cmd: int) -> None:
        self.counts["fd_cmd"] += 1

    def ioctl_all_three(self, regs: Any, proto: Any, syscall: Any, *args: int) -> None:
        assert args == (0x13, 0x1234, 0xABCD)
        self.counts["all_three"] += 1

    def never(self, regs: Any, proto: Any, syscall: Any) -> None:
        self.counts["never"] += 1

    async def double(self, regs: Any, proto: Any, syscall: Any) -> None:
        self.double_seen.append(len(self.double_seen) + 1)
        if len(self.double_seen) == 1:
            await self.sc.unregister(self.first)  # this registration only

    def fake_clone(self, regs: Any, proto: Any, syscall: Any, *args: int) -> None:
        assert args == CLONE_ARGS
        syscall.skip_syscall = True
        syscall.retval = 42

    async def etc_open(self, regs: Any, proto: Any, syscall: Any, dfd: int, path: int) -> None:
        self.counts[f"open {await plugins.mem.read_str(path)}"] += 1


async def test_the_reference_test_plugin(session: Session) -> None:
    test = ReferenceTest(session.plugins.syscalls)
    await session.plugins.syscalls.synced()

    result = await session.run(f"{COMM} ioctl 9 0xabcd")
    assert (result.stdout, result.exit_status) == (f"{RET} 43\n".encode(), 43)

    await session.run(
        f"{COMM} ioctl 0x13 0 1; {COMM} ioctl 0x13 0x1234 0xabce; {COMM} ioctl 0x13 0x1234 0xabcd"
    )
    assert (test.counts["fd"], test.counts["fd_cmd"], test.counts["all_three"]) == (3, 2, 1)
    assert test.counts["never"] == 0

    await session.run(f"{COMM} getpid")
    assert test.double_seen == [1, 2]  # both registrations fired; the first is gone now
    await session.run(f"{COMM} getpid")
    assert test.double_seen == [1, 2, 3]

    result = await session.run(f"{COMM} clone " + " ".join(f"{a:#x}" for a in CLONE_ARGS))
    assert result.stdout == f"{RET} 42\n".encode()

    await session.run(
        f"{COMM} openat 0xffffffffffffff9c /etc/passwd 0; {COMM} openat 0xffffffffffffff9c /tmp 0"
    )
    assert +test.counts == Counter(
        {"fd": 3, "fd_cmd": 2, "all_three": 1, "open /etc/passwd": 1}
    )  # the plain str "/etc/" is a starts-with filter: /tmp did not match
    assert session.stats.read_only_refused == 0 and session.stats.handler_errors == 0


async def test_unregister_by_handle_function_and_name(session: Session) -> None:
    sc = session.plugins.syscalls
    counts: Counter[str] = Counter()

    class Watch:
        def a(self, regs: Any, proto: Any, syscall: Any) -> None:
            counts["a"] += 1

        def b(self, regs: Any, proto: Any, syscall: Any) -> None:
            counts["b"] += 1

    def c(regs: Any, proto: Any, syscall: Any) -> None:
        counts["c"] += 1

    w = Watch()
    first_a = await sc.register(w.a, "getppid", comm_filter=COMM)
    await sc.register(w.a, "getppid", comm_filter=COMM)
    await sc.register(w.b, "getppid", comm_filter=COMM)
    await sc.register(c, "on_sys_getppid_return", comm_filter=COMM)
    await sc.register(c, "getppid", comm_filter=COMM)

    async def step() -> dict[str, int]:
        before = counts.copy()
        await session.run(f"{COMM} getppid")
        return {k: counts[k] - before[k] for k in "abc"}

    assert await step() == {"a": 2, "b": 1, "c": 2}
    await sc.unregister(first_a)  # a handle: that one registration
    assert await step() == {"a": 1, "b": 1, "c": 2}
    await sc.unregister(w.b)  # a bound method: every registration of it
    assert await step() == {"a": 1, "b": 0, "c": 2}
    await sc.unregister("c")  # a name: every registration of a handler so named
    assert await step() == {"a": 1, "b": 0, "c": 0}


async def test_enabled_false_is_silent_until_enabled(session: Session) -> None:
    sc = session.plugins.syscalls
    seen: list[int] = []

    @sc.syscall("getppid", comm_filter=COMM, enabled=False)
    def later(regs: Any, proto: Any, syscall: Any) -> None:
        seen.append(syscall.nr)

    await sc.synced()
    await session.run(f"{COMM} getppid")
    assert seen == []
    await sc.enable_syscall(later)
    await session.run(f"{COMM} getppid")
    assert seen == [110]


async def test_a_read_only_handler_that_changes_the_call_is_refused(session: Session) -> None:
    errors: list[str] = []

    async def meddler(regs: Any, proto: Any, syscall: Any) -> None:
        try:
            syscall.retval = 4242
        except ReadOnlyHookError as exc:
            errors.append(str(exc))
        regs.rax = 4242  # not caught: a handler error as well

    await session.plugins.syscalls.register(
        meddler, "on_sys_getppid_return", comm_filter=COMM, read_only=True
    )
    result = await session.run(f"{COMM} getppid")
    assert result.stdout.startswith(f"{RET} ".encode())
    assert result.stdout != f"{RET} 4242\n".encode()  # neither change was applied
    assert len(errors) == 1 and "read_only=True: it cannot set syscall.retval" in errors[0]
    assert session.stats.read_only_refused == 2
    assert session.stats.handler_errors == 1
